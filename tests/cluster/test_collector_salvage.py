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
