"""Idle batches redelivered from the past (a dead collector's, or an older run's of a collector
that restarted) must not count their collector as live again: pushed into the reorder buffer
they held every other collector's records back for ``reorder.QUIET``. A real ``Partition`` on a
real embedded store, handed over through its checkpoint as a standby takes it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from stackwatch.cluster.analyzer import Partition
from stackwatch.cluster.reorder import QUIET
from stackwatch.cluster.wire import Batch, BatchBuilder, decode_batch, encode_batch
from stackwatch.config.settings import Settings, StoreSettings
from stackwatch.core.event import Event

T = 1_900_000_000.0


def _settings(folder: Path) -> Settings:
    return Settings(store=StoreSettings(url=str(folder)), state_dir=str(folder / "state"))


def _event(second: float, n: int) -> Event:
    stamp = datetime.fromtimestamp(second, UTC)
    return Event(time=stamp, received=stamp, host="node1", service="cron", severity="info", kind="log",
                 action="cron.job", outcome="success", message=f"job {n}", origin="syslog:tcp/t",
                 ref=f"syslog:{n}")


def _batch(collector: str, epoch: str, seq: int, sent: float, seconds: list[float],
           watermark: float) -> Batch:
    builder = BatchBuilder()
    for n, second in enumerate(seconds):
        builder.add(_event(second, seq * 100 + n), ("r",), True)
    built = builder.build(collector=collector, seq=seq, epoch=epoch, partition=0, sent=sent,
                          watermark=watermark)
    return decode_batch(encode_batch(built))


def _opened(settings: Settings) -> Partition:
    partition = Partition(0, settings, "ana")
    partition.open()
    return partition


def test_an_idle_batch_at_or_before_the_checkpointed_position_holds_nothing_back(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "data")
    first = _opened(settings)
    # one turn: records, an idle tick, records; committed with a checkpoint, and the analyzer dies
    # before its acknowledgements reach the broker, which hands all three to the standby
    turn = [_batch("dead", "e1", 1, T, [T - 10], T - 10), _batch("dead", "e1", 2, T + 0.2, [], T - 9.8),
            _batch("dead", "e1", 3, T + 0.4, [T - 9.7], T - 9.7)]
    home, _ = first.run_batches(turn)
    first.commit(home, True)
    first.close()
    standby = _opened(settings)
    live = _batch("live", "x", 1, T + 5, [T], T)
    home, skipped = standby.run_batches([*turn, live])
    assert skipped == 2 and [e.time.timestamp() for e in home] == [T]
    assert not standby.reorder.held, "a redelivered idle batch counted its dead collector as live"
    standby.close()


def test_an_idle_batch_of_an_older_run_of_a_collector_holds_nothing_back(tmp_path: Path) -> None:
    partition = _opened(_settings(tmp_path / "data"))
    # the collector restarted (run e2); an idle batch of its previous run e1 comes back afterwards
    partition.run_batches([_batch("c1", "e2", 1, T + 3, [T - 1], T - 1)])
    time.sleep(QUIET + 0.1)  # the new run fell quiet: it holds nothing back any more
    partition.run_batches([_batch("c1", "e1", 40, T + 1, [], T - 5)])
    partition.run_batches([_batch("c2", "x", 1, T + 3, [T], T)])
    assert not partition.reorder.held, "the older run's watermark held the other collector back"
    # the newer run's own idle batch still counts (its collector is live again, at T - 0.5)
    partition.run_batches([_batch("c1", "e2", 2, T + 4, [], T - 0.5)])
    partition.run_batches([_batch("c2", "x", 2, T + 4, [T + 0.2], T + 0.2)])
    assert [c.event.time.timestamp() for c in partition.reorder.held] == [T + 0.2]
    partition.close()


def test_the_newest_run_of_each_collector_survives_a_handover(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "data")
    first = _opened(settings)
    home, _ = first.run_batches([_batch("c1", "e2", 1, T + 3, [T - 1], T - 1)])
    first.commit(home, True)
    first.close()
    standby = _opened(settings)
    standby.run_batches([_batch("c1", "e1", 40, T + 1, [], T - 5), _batch("c2", "x", 1, T + 3, [T], T)])
    assert not standby.reorder.held
    standby.close()
