"""A partition's analyzer without the broker: batches of the demo's routed copies through
``Partition`` (cluster/analyzer.py) into a real embedded store give the alerts of one engine
over the same events, also when the partition changes hands between two commits (a new
``Partition`` on the same store loads the checkpoint) and when batches are redelivered."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stackwatch.cluster.analyzer import Partition
from stackwatch.cluster.routing import bucket_of
from stackwatch.cluster.wire import Batch, BatchBuilder, decode_batch, encode_batch
from stackwatch.config.settings import ExpectedSource, Settings, StoreSettings
from stackwatch.core.event import Event
from stackwatch.pipeline.engine import engine_for
from stackwatch.pipeline.reader import discover, read_event_batches
from stackwatch.respond.orphans import RULE_ID as ORPHANS
from stackwatch.scenario import demo_dataset
from stackwatch.store import open_store

RECEIVED = datetime(2030, 1, 1, tzinfo=UTC)
BATCH = 100


@pytest.fixture(scope="module")
def demo_events(tmp_path_factory: pytest.TempPathFactory) -> list[Event]:
    logs = demo_dataset(tmp_path_factory.mktemp("demo"), seed=7)
    return [e for batch in read_event_batches(discover([str(logs)]), received=RECEIVED) for e in batch]


def _settings(folder: Path) -> Settings:
    return Settings(store=StoreSettings(url=str(folder)), state_dir=str(folder / "state"))


def _batches(events: list[Event], rules: tuple[str, ...], bucket: int = 0) -> list[Batch]:
    out = []
    for seq, start in enumerate(range(0, len(events), BATCH), 1):
        builder = BatchBuilder()
        for event in events[start:start + BATCH]:
            builder.add(event, rules, True)
        built = builder.build(collector="c1", seq=seq, epoch="e1", bucket=bucket, sent=time.time())
        out.append(decode_batch(encode_batch(built)))
    return out


def _summary(alerts: list) -> list[tuple[object, ...]]:
    return sorted((a.rule, a.key, a.count, a.severity, a.time, a.last_seen, a.details.get("events"))
                  for a in alerts)


def _expected(settings: Settings, events: list[Event]) -> list[tuple[object, ...]]:
    engine = engine_for(settings, live=False)
    for event in events:
        engine.process(event)
    engine.finish()
    return _summary(engine.alerts())


def _run(partition: Partition, batches: list[Batch]) -> None:
    for start in range(0, len(batches), 4):  # a turn takes what the prefetch window holds
        home, _ = partition.run_batches(batches[start:start + 4])
        partition.commit(home)


@pytest.mark.parametrize("cut", [0.3, 0.7])
def test_a_partition_handed_over_between_commits_raises_the_alerts_of_one_engine(
        tmp_path: Path, demo_events: list[Event], cut: float) -> None:
    settings = _settings(tmp_path / "data")
    rules = (*(r.id for r in engine_for(settings, live=False).rules), ORPHANS)
    batches = _batches(demo_events, rules)
    at = int(len(batches) * cut)
    first = Partition(0, settings, "a")
    first.open()
    _run(first, batches[:at])
    first.close()  # a kill after a commit: what it did not commit, it did not acknowledge
    second = Partition(0, settings, "b")
    second.open()
    _run(second, batches[at - 3:])  # the last three were committed but their acks lost: redelivered
    second.finish()
    second.commit([])
    second.close()
    with open_store(tmp_path / "data" / "p000", read_only=True) as store:
        assert store.counts().events == len(demo_events)
        stored = [s.alert for s in store.alerts()]
    assert _summary(stored) == _expected(settings, demo_events)


def test_a_declared_source_is_watched_by_the_partition_its_bucket_lands_in_only(
        tmp_path: Path, demo_events: list[Event]) -> None:
    settings = replace(_settings(tmp_path / "data"), expected_sources=[ExpectedSource("ctl9", "keystone")])
    rules = (*(r.id for r in engine_for(settings, live=False).rules), ORPHANS)
    home = bucket_of(("ctl9", "keystone"), settings.cluster.buckets)
    silent: dict[int, list[str]] = {}
    for number, bucket in ((0, home), (1, (home + 1) % settings.cluster.buckets)):
        partition = Partition(number, settings, "a")
        partition.open()
        _run(partition, _batches(demo_events, rules, bucket))
        partition.finish()
        partition.commit([])
        partition.close()
        with open_store(tmp_path / "data" / partition.name, read_only=True) as store:
            silent[number] = [s.alert.key for s in store.alerts() if s.alert.category == "logging.silence"]
    assert any("ctl9" in key for key in silent[0]), silent[0]
    assert not any("ctl9" in key for key in silent[1]), silent[1]
