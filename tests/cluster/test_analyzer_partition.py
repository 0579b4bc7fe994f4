"""A partition's analyzer without the broker: batches of the demo's routed copies through
``Partition`` (cluster/analyzer.py) into a real embedded store give the alerts of one engine
over the same events, also when the partition changes hands between two commits (a new
``Partition`` on the same store loads the checkpoint) and when batches are redelivered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stackwatch.cluster.analyzer import Partition
from stackwatch.cluster.routing import Planner, bucket_of
from stackwatch.cluster.topology import partition_of_bucket
from stackwatch.cluster.wire import Batch, BatchBuilder, decode_batch, encode_batch
from stackwatch.config.settings import ExpectedSource, Settings, StoreSettings
from stackwatch.core.event import Event
from stackwatch.pipeline.engine import engine_for
from stackwatch.pipeline.reader import discover, read_event_batches
from stackwatch.respond.orphans import RULE_ID as ORPHANS
from stackwatch.scenario import demo_dataset
from stackwatch.store import open_store
from stackwatch.store.fencing import PartitionFenced

RECEIVED = datetime(2030, 1, 1, tzinfo=UTC)
BATCH = 100


@pytest.fixture(scope="module")
def demo_events(tmp_path_factory: pytest.TempPathFactory) -> list[Event]:
    logs = demo_dataset(tmp_path_factory.mktemp("demo"), seed=7)
    return [e for batch in read_event_batches(discover([str(logs)]), received=RECEIVED) for e in batch]


def _settings(folder: Path) -> Settings:
    return Settings(store=StoreSettings(url=str(folder)), state_dir=str(folder / "state"))


def _batches(events: list[Event], rules: tuple[str, ...], bucket: int = -1) -> list[Batch]:
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


def _run(partition: Partition, batches: list[Batch], checkpoint_every: int = 1) -> None:
    for turn, start in enumerate(range(0, len(batches), 4), 1):  # a turn takes the prefetch window
        home, _ = partition.run_batches(batches[start:start + 4])
        partition.commit(home, turn % checkpoint_every == 0)


@pytest.mark.parametrize(("cut", "checkpoint_every"), [(0.3, 1), (0.7, 1), (0.5, 3), (0.7, 4)])
def test_a_partition_handed_over_between_commits_raises_the_alerts_of_one_engine(
        tmp_path: Path, demo_events: list[Event], cut: float, checkpoint_every: int) -> None:
    """Batches since the last checkpoint of the state were committed (events, alerts) but not
    acknowledged: the broker gives them all to the next owner, which detects on them again from
    the checkpoint and stores none twice."""
    settings = _settings(tmp_path / "data")
    rules = (*(r.id for r in engine_for(settings, live=False).rules), ORPHANS)
    batches = _batches(demo_events, rules)
    at = int(len(batches) * cut)
    first = Partition(0, settings, "a")
    first.open()
    _run(first, batches[:at], checkpoint_every)
    first.close()  # a kill: what was not checkpointed was not acknowledged either
    second = Partition(0, settings, "b")
    second.open()
    _run(second, batches)  # every batch again: those in the checkpoint are skipped by position
    second.finish()
    second.commit([], True)
    second.close()
    with open_store(tmp_path / "data" / "p000", read_only=True) as store:
        assert store.counts().events == len(demo_events)
        stored = [s.alert for s in store.alerts()]
    assert _summary(stored) == _expected(settings, demo_events)


def test_a_declared_source_is_watched_by_the_partition_its_bucket_lands_in_only(
        tmp_path: Path, demo_events: list[Event]) -> None:
    """The partition a source's host+service bucket belongs to (``partition_map``) watches
    it from its first batch, whatever that batch holds; the other partitions never do."""
    settings = replace(_settings(tmp_path / "data"), expected_sources=[ExpectedSource("ctl9", "keystone")])
    rules = (*(r.id for r in engine_for(settings, live=False).rules), ORPHANS)
    home = bucket_of(("ctl9", "keystone"), settings.cluster.buckets)
    owner = partition_of_bucket(home, settings.cluster.partitions, settings.cluster.buckets)
    other = (owner + 1) % settings.cluster.partitions
    assert owner != other
    silent: dict[int, list[str]] = {}
    for number in (owner, other):
        partition = Partition(number, settings, "a")
        partition.open()
        _run(partition, _batches(demo_events, rules))
        partition.finish()
        partition.commit([], True)
        partition.close()
        with open_store(tmp_path / "data" / partition.name, read_only=True) as store:
            silent[number] = [s.alert.key for s in store.alerts() if s.alert.category == "logging.silence"]
    assert any("ctl9" in key for key in silent[owner]), silent[owner]
    assert not any("ctl9" in key for key in silent[other]), silent[other]


def test_a_partition_reopened_watches_the_sources_of_its_map_not_of_its_checkpoint(
        tmp_path: Path, demo_events: list[Event]) -> None:
    """A checkpoint written when the partition received another bucket (an older collector's
    consistent-hash routing, or fewer partitions) does not keep the partition watching that
    bucket's declared sources once it reopens: their records go to the map's partition now."""
    settings = replace(_settings(tmp_path / "data"), expected_sources=[ExpectedSource("ctl9", "keystone")])
    rules = (*(r.id for r in engine_for(settings, live=False).rules), ORPHANS)
    home = bucket_of(("ctl9", "keystone"), settings.cluster.buckets)
    other = (partition_of_bucket(home, settings.cluster.partitions, settings.cluster.buckets) + 1) \
        % settings.cluster.partitions
    before = Partition(other, settings, "a")
    before.open()
    _run(before, _batches(demo_events[:BATCH], rules, bucket=home))  # an older collector's batch
    assert home in before.buckets  # watched while such batches arrive
    before.close()
    after = Partition(other, settings, "b")
    after.open()
    try:
        assert home not in after.buckets
        assert not any(d.get("host") == "ctl9" for d in after.engine.ctx.expected_sources)
    finally:
        after.close()


@pytest.mark.parametrize("partitions", [1, 2, 3])
def test_copies_of_one_record_routed_to_one_partition_through_several_buckets_count_once(
        demo_events: list[Event], partitions: int) -> None:
    """A login copied to two buckets that land in one partition meets the correlation stage
    once (its rules joined), not as two copies of one attempt of which one is a duplicate."""
    settings = Settings()
    single = engine_for(settings, live=False)
    planner = Planner(single.rules, 64)
    engines = [engine_for(settings, live=False) for _ in range(partitions)]
    for engine in engines:  # learning periods (new_value) count from the stream's start, not from
        engine.ctx.started = demo_events[0].time.timestamp()  # each partition's first record
    for event in demo_events:
        single.process(event)
        for bucket, rules, _ in planner.route(event):
            engines[bucket % partitions].process_only(event, frozenset(rules))
    single.finish()
    routed = []
    for engine in engines:
        engine.finish()
        routed += engine.alerts()
    # last_seen aside: a time-driven rule (level_drop, absence) fires on its engine's clock, and a
    # partition's clock advances with the records routed to it only
    assert [a[:5] + a[6:] for a in _summary(routed)] == [a[:5] + a[6:] for a in _summary(single.alerts())]


@pytest.fixture(params=["embedded", "postgresql"])
def shared_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings whose store the partition's analyzers share: an embedded data folder (one per
    partition) or a PostgreSQL database (each analyzer a writer of its own)."""
    if request.param == "embedded":
        yield _settings(tmp_path / "data")
        return
    from tests.pgdb import fresh_database

    with fresh_database() as url:
        yield Settings(store=StoreSettings(url=url), state_dir=str(tmp_path / "state"))


def test_an_analyzer_cut_off_after_a_standby_took_over_commits_nothing_more(
        shared_settings: Settings, demo_events: list[Event]) -> None:
    """Fencing: the broker handed the partition to ``b`` while ``a``, cut off but not yet aware,
    still had a turn to commit. ``b`` claimed a newer epoch when it became active, so ``a``'s
    commit is refused whole (no event, alert or checkpoint of it stored); ``b`` replays what
    ``a`` never acknowledged from the checkpoint and the partition ends with every event once
    and the alerts of one engine."""
    settings = shared_settings
    rules = (*(r.id for r in engine_for(settings, live=False).rules), ORPHANS)
    batches = _batches(demo_events, rules)
    at = len(batches) // 2
    old = Partition(0, settings, "a")
    old.open()
    _run(old, batches[:at])
    new = Partition(0, settings, "b")
    new.open()
    assert (old.epoch, new.epoch) == (1, 2)
    home, _ = old.run_batches(batches[at:at + 4])
    assert home
    with pytest.raises(PartitionFenced):
        old.commit(home, True)
    old.close()
    _run(new, batches)  # everything a did not acknowledge comes again; checkpointed batches are skipped
    new.finish()
    new.commit([], True)
    new.close()
    url = settings.store.open_url()
    folder = settings.store.embedded_folder()
    with open_store(str(Path(folder) / "p000") if folder is not None else url, read_only=True) as store:
        assert store.counts().events == len(demo_events)
        stored = [s.alert for s in store.alerts()]
    assert _summary(stored) == _expected(settings, demo_events)
