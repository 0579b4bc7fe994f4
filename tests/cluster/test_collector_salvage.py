"""Records a collector cannot handle the normal way are published raw, never lost and never a
crash (a real collector in this process, a real file source, the real RabbitMQ)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from stackwatch.cluster.collector import Collector
from stackwatch.config.loader import load_config
from tests.cluster.clustertools import Consumer, collector_config, markers, unique_cluster, wait_until

pytestmark = pytest.mark.integration


async def _until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _collector(tmp_path: Path, cluster: str, log: Path) -> Collector:
    config = collector_config(tmp_path / "c", cluster,
                              f"  - {{type: file, name: app, paths: ['{log}'], start_at: beginning, "
                              f"host: node1, service: app, poll_interval: 50ms}}\n")
    return Collector(load_config(config))


def test_records_a_decoder_fails_on_are_published_raw_before_the_offset_moves(tmp_path: Path) -> None:
    cluster = unique_cluster()
    log = tmp_path / "app.log"
    log.write_text("".join(f"app: ok marker-{n}\n" for n in range(5)))
    with Consumer(cluster) as consumer:
        homes = consumer.received.homes

        async def main() -> Collector:
            collector = _collector(tmp_path, cluster, log)
            source = collector.sources[0]
            decode = source.decode
            raised: list[int] = []

            def buggy(records: list[Any]) -> list[Any]:
                events = decode(records)  # the source takes the records (its offset moves), then fails
                if any("BOOM" in r.text for r in records):
                    raised.append(len(records))
                    raise RuntimeError("a decoder bug")
                return events

            source.decode = buggy  # type: ignore[method-assign]
            await collector.start()
            try:
                await _until(lambda: len(markers(homes(), "marker")) >= 5, 20, "the first lines")
                with log.open("a") as out:
                    out.write("app: BOOM marker-boom\n")
                await _until(lambda: raised, 10, "the decoder's failure")
                with log.open("a") as out:
                    out.write("app: ok marker-5\n")
                await _until(lambda: "marker-5" in markers(homes(), "marker"), 20, "the line after")
            finally:
                await collector.stop()
            return collector

        collector = asyncio.run(main())
        wait_until(lambda: "marker-boom" in " ".join(e.raw for e in homes()), 10, "the failed record")
    failed = [e for e in homes() if "marker-boom" in e.raw]
    assert len(failed) == 1, failed
    assert failed[0].kind == "unparsed" and failed[0].attrs["malformed"] is True
    assert "a decoder bug" in failed[0].attrs["reason"]
    assert collector.stats.malformed == 1
    assert collector.metrics()["stackwatch_collector_malformed_records_total"] == 1
    assert sorted(markers(homes(), "marker")) == sorted([*(f"marker-{n}" for n in range(6)), "marker-boom"])
    assert not consumer.errors


def test_a_batch_the_wire_refuses_is_split_and_an_event_refused_alone_goes_raw(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from stackwatch.core.event import Event

    cluster = unique_cluster()
    log = tmp_path / "app.log"
    log.touch()
    now = datetime.now(UTC)
    blob = "x" * (1 << 20)  # parsed fields far larger than the record: the size estimate misses them

    def event(marker: str, size: int) -> Event:
        return Event(time=now, received=now, host="node1", service="app", kind="app", message=marker,
                     attrs={"blob": blob * size}, raw=f"app: {marker}", origin="test", ref=marker)

    events = [event(f"marker-big-{n}", 1) for n in range(20)]  # 20 MiB together: over the wire's 16
    events.append(event("marker-huge", 17))  # over it alone
    events.append(Event(time=now, received=now, host="node1", service="app", message="marker-small",
                        raw="app: marker-small", origin="test", ref="marker-small"))
    with Consumer(cluster) as consumer:
        homes = consumer.received.homes

        async def main() -> Collector:
            collector = _collector(tmp_path, cluster, log)
            await collector.start()
            try:
                collector._route(None, events)
                await _until(lambda: collector.stats.confirmed_events >= len(events), 60, "the confirms")
            finally:
                await collector.stop()
            return collector

        collector = asyncio.run(main())
        wait_until(lambda: len(set(markers(homes(), "marker"))) >= len(events), 30, "every event")
    found = markers(homes(), "marker")
    assert sorted(found) == sorted(e.message for e in events)  # each exactly once
    huge = [e for e in homes() if "marker-huge" in e.raw]
    assert huge[0].kind == "unparsed" and huge[0].attrs["wire_refused"] is True
    assert "blob" not in huge[0].attrs and huge[0].raw == "app: marker-huge"
    big = [e for e in homes() if "marker-big" in e.raw]
    assert all(e.kind == "app" and len(e.attrs["blob"]) == len(blob) for e in big)  # split, not cut
    assert collector.stats.refused >= 2 and collector.stats.salvaged == 1 and collector.stats.lost == 0
    assert collector.metrics()["stackwatch_collector_salvaged_events_total"] == 1
    assert not consumer.errors


def test_an_acknowledging_source_acknowledges_every_record_of_a_failed_decode(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """AMQP notifications: the decoder fails on the last record, after taking those before it;
    the records it did not reach are published raw and acknowledged with them, not left
    unacknowledged (redelivered after every restart; a RELP sender's window stalls on them)."""
    import uuid

    import aio_pika
    import orjson

    monkeypatch.setenv("SW_TEST_AMQP_PW", "guest")
    cluster = unique_cluster()
    tag = uuid.uuid4().hex[:8]
    exchange, topic, queue = f"sws-{tag}-keystone", f"sws-{tag}-notifications", f"sws-{tag}-stackwatch"
    config = collector_config(tmp_path / "c", cluster,
                              f"  - {{type: amqp, name: bus, url: 'amqp://guest@127.0.0.1:5672/', "
                              f"password: $env:SW_TEST_AMQP_PW, "
                              f"exchanges: [{exchange}], topics: [{topic}], queue: {queue}, prefetch: 50}}\n")

    def note(n: int, marker: str) -> bytes:
        message = {"message_id": f"m-{tag}-{n}", "publisher_id": "identity.ctl1",
                   "event_type": "identity.project.created", "priority": "INFO",
                   "payload": {"resource_info": marker}, "timestamp": "2026-01-01 00:00:00.000000"}
        return orjson.dumps({"oslo.version": "2.0", "oslo.message": orjson.dumps(message).decode()})

    with Consumer(cluster) as consumer:
        homes = consumer.received.homes

        async def main() -> tuple[Collector, int]:
            collector = Collector(load_config(config))
            source = collector.sources[0]
            decode = source.decode
            raised: list[int] = []

            def buggy(records: list[Any]) -> list[Any]:
                for position, record in enumerate(records):
                    if "marker-boom" in record.text:
                        decode(records[:position])  # the records before it are taken, then it fails
                        raised.append(len(records) - position)
                        raise RuntimeError("a decoder bug")
                return decode(records)

            source.decode = buggy  # type: ignore[method-assign]
            await collector.start()
            connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
            try:
                channel = await connection.channel()
                target = await channel.get_exchange(exchange, ensure=False)
                bodies = [note(n, f"marker-{n}") for n in range(3)] + [note(3, "marker-boom")]
                for body in bodies:
                    await target.publish(aio_pika.Message(body), routing_key=f"{topic}.info")
                await _until(lambda: raised, 20, "the decoder's failure")
                await _until(lambda: collector.stats.confirmed_events >= 4, 20, "the records confirmed")
                await asyncio.sleep(0.5)
            finally:
                await collector.stop()
            declared = await channel.declare_queue(queue, passive=True)
            left = int(declared.declaration_result.message_count or 0)
            await channel.queue_delete(queue)
            for name in (exchange,):
                await channel.exchange_delete(name)
            await connection.close()
            return collector, left

        collector, left = asyncio.run(main())
    assert left == 0  # every record acknowledged: none redelivered
    assert collector.stats.malformed >= 1
    raws = " ".join(e.raw for e in homes())
    assert "marker-boom" in raws and "marker-2" in raws
