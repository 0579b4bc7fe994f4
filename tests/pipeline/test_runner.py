"""The live runner: fair scheduling, wall-clock detection, heartbeats, self-monitoring alerts,
graceful stop, and commits that are retried before anything is acknowledged."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from stackwatch.config import parse_config
from stackwatch.core.errors import StoreError
from stackwatch.core.event import Event
from stackwatch.parsers.base import ParseContext, unparsed_event
from stackwatch.pipeline.engine import engine_for
from stackwatch.pipeline.runner import Runner
from stackwatch.pipeline.selfmon import RULE_DROPPED, RULE_INPUT_SILENCE, RULE_STALLED
from stackwatch.sources.base import Record, Source, SourceContext, SourceSettings
from stackwatch.store import AlertQuery, EventQuery, open_store
from tests.servetools import run

ABSENCE_RULE = """\
id: 0f7e2a61-8d3b-4c5e-9f1a-6b2c3d4e5f60
title: keystone went quiet (runner test)
category: logging.silence
severity: high
kind: absence
window: 1s
expected: [{host: ctl1, service: keystone}]
"""


class ListSource(Source):
    """A source fed directly by the test (records in, events out, commits recorded)."""

    def __init__(self, name: str, context: SourceContext) -> None:
        super().__init__(SourceSettings(type="test", name=name), context)
        self.committed: list[Any] = []
        self.decoded = 0

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def feed(self, count: int, start: int = 0) -> None:
        for i in range(start, start + count):
            assert self.queue.offer(Record(f"{self.name} {i}", time.time(), "peer", i))
            self.counters.received += 1

    def decode(self, records: list[Record]) -> list[Event]:
        self.decoded += len(records)
        self.last = records[-1].meta
        ctx = ParseContext(host="h", origin=f"test:{self.name}", service=self.name)
        return [unparsed_event([r.text], ctx, "test") for r in records]

    def checkpoint(self) -> Any:
        return getattr(self, "last", None)

    async def commit(self, token: Any) -> None:
        self.committed.append(token)


def _runner(tmp_path: Path, yaml: str = "", names: tuple[str, ...] = (), store: Any = None) -> Runner:
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "absence.yaml").write_text(ABSENCE_RULE)
    settings = parse_config(
        f"hostname: mon\nstate_dir: '{tmp_path / 'state'}'\n"
        f"rules: {{builtin: false, paths: ['{rules}']}}\n"
        f"sinks:\n  - {{type: file, name: out, path: '{tmp_path / 'alerts.jsonl'}'}}\n{yaml}"
    )
    context = SourceContext(queue_size=100_000, wake=asyncio.Event(), state_dir=str(tmp_path), hostname="mon")
    sources = [ListSource(name, context) for name in names]
    return Runner(
        settings,
        store=store or open_store(tmp_path / "data"),
        engine=engine_for(settings, live=True),
        sources=sources,
    )


def _alerts_file(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "alerts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_flood_on_one_source_does_not_starve_another(tmp_path: Path) -> None:
    async def scenario() -> list[tuple[str, int]]:
        runner = _runner(tmp_path, "limits: {fair_quantum: 100}\n", ("flood", "quiet"))
        flood, quiet = runner.sources
        flood.feed(50_000)
        quiet.feed(150)
        taken = runner._take_fair(2048)
        await asyncio.to_thread(runner.store.close)
        return [(source.name, len(records)) for source, records in taken]

    taken = run(scenario())
    assert sum(n for name, n in taken if name == "quiet") == 150  # all of it within the first batch
    assert sum(n for name, n in taken if name == "flood") == 2048 - 150


def test_absence_fires_on_the_wall_clock_with_no_input_at_all(tmp_path: Path) -> None:
    async def scenario() -> list[dict[str, Any]]:
        runner = _runner(tmp_path, "limits: {tick_interval: 200ms, heartbeat_interval: 0}\n")
        await runner.start()
        for _ in range(100):
            if _alerts_file(tmp_path):
                break
            await asyncio.sleep(0.05)
        await runner.stop()
        return _alerts_file(tmp_path)

    documents = run(scenario())
    assert documents and documents[0]["alert"]["category"] == "logging.silence"
    assert documents[0]["alert"]["host"] == "ctl1"


def test_heartbeats_are_stored_and_everything_is_committed_on_stop(tmp_path: Path) -> None:
    async def scenario() -> tuple[ListSource, Runner]:
        runner = _runner(tmp_path, "limits: {heartbeat_interval: 100ms, commit_interval: 5s}\n", ("a",))
        await runner.start()
        source = runner.sources[0]
        source.feed(500)
        await asyncio.sleep(0.35)
        await runner.stop()  # commit_interval is long: only the graceful stop commits these
        return source, runner

    source, _ = run(scenario())
    assert source.committed[-1] == 499 and source.counters.committed == 500
    with open_store(tmp_path / "data") as store:
        assert len(store.search_events(EventQuery(service="a", limit=1000))) == 500
        beats = store.search_events(EventQuery(action="monitor.heartbeat", limit=100))
    assert len(beats) >= 3 and beats[0].event.service == "stackwatch" and beats[0].event.kind == "heartbeat"


def test_drops_and_a_silent_input_raise_alerts_for_stackwatch_itself(tmp_path: Path) -> None:
    async def scenario() -> list[dict[str, Any]]:
        runner = _runner(
            tmp_path,
            "limits: {tick_interval: 100ms, input_silence: 300ms, drop_check_interval: 100ms}\n",
            ("udpish",),
        )
        await runner.start()
        source = runner.sources[0]
        source.counters.dropped_queue_full += 7  # what the UDP source does when its queue is full
        await asyncio.sleep(0.8)
        source.feed(1)  # input again: the silence alert resolves
        await asyncio.sleep(0.5)
        await runner.stop()
        return _alerts_file(tmp_path)

    documents = run(scenario())
    by_rule: dict[str, list[str]] = {}
    for document in documents:
        by_rule.setdefault(document["alert"]["rule"], []).append(document["change"])
    assert by_rule[RULE_DROPPED] == ["new"]
    assert by_rule[RULE_INPUT_SILENCE][:2] == ["new", "resolved"]  # and again once silent anew
    dropped = next(d for d in documents if d["alert"]["rule"] == RULE_DROPPED)["alert"]
    assert dropped["service"] == "stackwatch" and dropped["category"] == "logging.silence"
    assert "7 records" in dropped["summary"]


def test_a_stalled_pipeline_is_reported_at_once(tmp_path: Path) -> None:
    async def scenario() -> list[dict[str, Any]]:
        runner = _runner(tmp_path, "limits: {stall_after: 300ms, heartbeat_interval: 0}\n", ("a",))
        await runner.start()
        source = runner.sources[0]
        decode = source.decode

        def stuck(records: list[Record]) -> list[Event]:
            time.sleep(0.8)  # a pathological record holds the worker (and the loop)
            return decode(records)

        source.decode = stuck  # type: ignore[method-assign]
        source.feed(1)
        await asyncio.sleep(1.5)
        await runner.stop()
        return _alerts_file(tmp_path)

    documents = run(scenario())
    stalls = [d for d in documents if d["alert"]["rule"] == RULE_STALLED]
    assert [d["change"] for d in stalls][:2] == ["new", "resolved"]
    assert stalls[0]["alert"]["severity"] == "critical" and stalls[0]["alert"]["service"] == "stackwatch"


def test_a_failing_store_is_retried_and_nothing_is_acknowledged_meanwhile(tmp_path: Path) -> None:
    store = open_store(tmp_path / "data")
    real_flush = store.flush
    failures = {"left": 2}
    seen_commits: list[int] = []

    def flaky_flush() -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise StoreError("disk full (injected)")
        real_flush()

    store.flush = flaky_flush  # type: ignore[method-assign]

    async def scenario() -> tuple[ListSource, Runner]:
        runner = _runner(
            tmp_path, "limits: {heartbeat_interval: 0, commit_interval: 50ms}\n", ("a",), store=store
        )
        await runner.start()
        source = runner.sources[0]
        source.feed(10)
        for _ in range(100):
            seen_commits.append(len(source.committed))
            if source.committed:
                break
            await asyncio.sleep(0.05)
        await runner.stop()
        return source, runner

    source, runner = run(scenario())
    assert runner.store_errors == 2 and source.committed[0] == 9
    assert seen_commits[:3] == [0, 0, 0]  # no acknowledgement while the store was failing
    with open_store(tmp_path / "data") as reopened:
        assert len(reopened.search_events(EventQuery(service="a", limit=100))) == 10
        assert reopened.alerts(AlertQuery()) is not None


def test_audit_events_spooled_by_the_web_process_are_taken_in_once(tmp_path: Path) -> None:
    from stackwatch.api.audit import audit_event
    from stackwatch.core.event import to_json
    from stackwatch.store.admin import AUDIT_SPOOL

    (tmp_path / "data").mkdir(exist_ok=True)
    spool = tmp_path / "data" / AUDIT_SPOOL
    failed = audit_event("authenticate", actor="mallory", source_ip="192.0.2.9", outcome="failure")
    spool.write_bytes(to_json(failed) + b"\n" + b"not json \xff\n")

    async def scenario() -> None:
        runner = _runner(tmp_path, "limits: {tick_interval: 100ms}\n", ("a",))
        await runner.start()
        await asyncio.sleep(0.5)
        await runner.stop()

    run(scenario())
    assert not spool.exists() and not spool.with_suffix(".draining").exists()
    with open_store(tmp_path / "data") as store:
        taken = store.search_events(EventQuery(service="stackwatch", action="authenticate", limit=10))
        junk = store.search_events(EventQuery(kind="unparsed", service="stackwatch", limit=10))
    assert [s.event.initiator.name for s in taken] == ["mallory"]
    assert [s.event.raw_bytes() for s in junk] == [b"not json \xff"]


def test_serve_sweeps_the_cloud_for_owners_deleted_without_a_notification(
    tmp_path: Path, monkeypatch: Any
) -> None:
    import yaml

    from tests.respond.conftest import build_world
    from tests.respond.fake_openstack import FakeOpenStack

    api = FakeOpenStack().start()
    try:
        world = build_world(api)
        del api.projects[world.project]  # deleted while stackwatch saw no notification
        auth = api.auth()
        region = auth.pop("region_name")
        clouds = tmp_path / "clouds.yaml"
        clouds.write_text(yaml.safe_dump({"clouds": {"testcloud": {"auth": auth, "region_name": region}}}))
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))

        async def scenario() -> None:
            runner = _runner(tmp_path, "limits: {tick_interval: 100ms}\n"
                                       "respond: {cloud: testcloud, sweep_interval: 1h}\n", ("a",))
            await runner.start()
            for _ in range(100):  # bounded: at most 10 s
                await asyncio.sleep(0.1)
                if runner._sweep_task is not None and runner._sweep_task.done():
                    await asyncio.sleep(0.3)  # one more tick takes in what the sweep wrote
                    break
            await runner.stop()

        run(scenario())
        assert ("DELETE", f"/compute/v2.1/servers/{world.servers[0]}") not in api.mutations()  # report only
        with open_store(tmp_path / "data") as store:
            (stored,) = store.alerts(AlertQuery(category="identity.orphaned_resources"))
        assert stored.alert.key == f"project:{world.project}"
        assert stored.alert.details.get("found_by") == "sweep"
    finally:
        api.stop()


def test_records_a_decoder_fails_on_are_stored_raw_not_lost_with_the_offset(tmp_path: Path) -> None:
    """A real file source takes the records (its offset moves), then its decoder raises: the
    records are stored as unparsed events flagged malformed with the reason, and the lines after
    them too (before, the next cut's checkpoint moved past them and they were lost)."""
    log = tmp_path / "app.log"
    log.write_text("".join(f"app: ok marker-{n}\n" for n in range(3)))

    async def scenario() -> Runner:
        settings = parse_config(
            f"hostname: mon\nstate_dir: '{tmp_path / 'state'}'\nrules: {{builtin: true}}\n"
            "limits: {heartbeat_interval: 0, commit_interval: 100ms}\n"
            f"sources:\n  - {{type: file, name: app, paths: ['{log}'], start_at: beginning, "
            "host: node1, service: app, poll_interval: 50ms}\n")
        runner = Runner(settings, store=open_store(tmp_path / "data"), engine=engine_for(settings, live=True))
        source = runner.sources[0]
        decode = source.decode
        raised: list[int] = []

        def buggy(records: list[Any]) -> list[Any]:
            events = decode(records)
            if any("BOOM" in r.text for r in records):
                raised.append(len(records))
                raise RuntimeError("a decoder bug")
            return events

        source.decode = buggy  # type: ignore[method-assign]
        await runner.start()
        for _ in range(100):
            if runner.stored_events >= 3:
                break
            await asyncio.sleep(0.05)
        with log.open("a") as out:
            out.write("app: BOOM marker-boom\n")
        for _ in range(100):
            if raised:
                break
            await asyncio.sleep(0.05)
        with log.open("a") as out:
            out.write("app: ok marker-3\n")
        for _ in range(100):
            if runner.stored_events >= 5:
                break
            await asyncio.sleep(0.05)
        await runner.stop()
        return runner

    runner = run(scenario())
    with open_store(tmp_path / "data") as store:
        stored = [s.event for s in store.search_events(EventQuery(limit=100))]
    raws = [e.raw for e in stored]
    assert sum("marker-boom" in r for r in raws) == 1, raws
    failed = next(e for e in stored if "marker-boom" in e.raw)
    assert failed.kind == "unparsed" and failed.attrs["malformed"] is True
    assert "a decoder bug" in failed.attrs["reason"]
    assert {f"marker-{n}" for n in range(4)} <= {r.rsplit(" ", 1)[-1] for r in raws}
    assert runner.malformed == 1 and runner.sources[0].counters.errors == 1
