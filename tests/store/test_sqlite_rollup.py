"""The per-minute rollup behind the dashboard's charts: it counts what the events table holds,
across batches and after retention; and searches over the indexed subsets use their index."""

from __future__ import annotations

import random
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stackwatch.store.base import EventQuery
from stackwatch.store.retention import expire
from stackwatch.store.rows import from_micros
from stackwatch.store.sqlite import SQLiteStore, open_store
from stackwatch.testing import make_event
from tests.store.conftest import LedgerStore, copy_store

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _events(n: int, start: datetime = T0, step: float = 7.0) -> list:  # type: ignore[type-arg]
    return [make_event(time=start + timedelta(seconds=i * step), host=f"h{i % 2}", service="sshd",
                       message=f"m {i}") for i in range(n)]


def _by_bucket(rows: list) -> dict:  # type: ignore[type-arg]
    return {(host, service, bucket): n for host, service, bucket, n in rows}


def _counted(store: SQLiteStore, since: datetime, until: datetime, step: int) -> dict:  # type: ignore[type-arg]
    """The same histogram counted from the events themselves."""
    counts: dict[tuple[str, str, int], int] = {}
    for stored in store.search_events(EventQuery(since=since, until=until, limit=10_000)):
        e = stored.event
        key = (e.host, e.service, int((e.time - since).total_seconds() // step))
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_the_rollup_counts_what_the_events_hold_across_batches(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path, background_index=False, batch_size=100) as store:
        store.append_events(_events(1000))  # ten batches, minutes split across them
        store.flush()
        until = T0 + timedelta(hours=3)
        for step in (60, 300, 3600):
            assert _by_bucket(store.event_histogram(T0, until, step)) == _counted(store, T0, until, step)


def test_a_histogram_window_in_the_middle_counts_only_its_minutes(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path, background_index=False) as store:
        store.append_events(_events(1000))
        store.flush()
        since, until = T0 + timedelta(minutes=30), T0 + timedelta(minutes=90)
        assert _by_bucket(store.event_histogram(since, until, 300)) == _counted(store, since, until, 300)


def test_retention_subtracts_what_it_expires(ledger_template: LedgerStore, tmp_path: Path) -> None:
    store = copy_store(ledger_template, tmp_path / "d")
    with SQLiteStore(store.data, background_index=False) as opened:
        assert expire(opened, max_size=1, actor="ops").pruned_to > 0  # expire as much as possible
        since, until = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
        rows = opened.event_histogram(since, until, 86400)
        assert sum(n for *_, n in rows) == opened.counts().events


def test_a_login_search_uses_the_logins_index(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path, background_index=False) as store:
        store.append_events([make_event(service="keystone", action="authenticate", outcome="failure",
                                        time=T0 + timedelta(seconds=i)) for i in range(5)])
        store.append_events(_events(20))
        found = store.search_events(EventQuery(service="keystone", action="authenticate", limit=3))
        assert [s.event.time for s in found] == [T0 + timedelta(seconds=i) for i in (4, 3, 2)]
        plan = " ".join(str(r) for r in store._reader.execute(
            "EXPLAIN QUERY PLAN SELECT seq FROM events INDEXED BY events_logins "
            "WHERE action = 'authenticate' AND action IN ('authenticate', 'user.not_found')"))
        assert "events_logins" in plan


_RECOUNT = """SELECT s.host, s.service, min(e.time), max(e.time), count(*), max(e.received)
              FROM events AS e JOIN sources AS s ON s.id = e.source GROUP BY e.source ORDER BY 1, 2"""


@pytest.mark.parametrize("store_format", [1, 2])
def test_source_statistics_are_what_the_events_hold_across_batches(tmp_path: Path, store_format: int) -> None:
    # times out of order within and across batches, received times unrelated to them: each
    # source's first/last seen, count and last received must still be the rows' min/max/count
    order = random.Random(7)
    events = [make_event(time=T0 + timedelta(seconds=order.randrange(100_000)), host=f"h{i % 5}",
                         service=("sshd", "nova")[i % 2], message=f"m {i}",
                         received=T0 + timedelta(seconds=order.randrange(100_000)))
              for i in range(1000)]
    with open_store(tmp_path, format=store_format, background_index=False, batch_size=97) as store:
        for i in range(0, len(events), 250):
            store.append_events(events[i:i + 250])
        store.flush()
        stats = {(s.host, s.service): (s.first_seen, s.last_seen, s.count, s.last_received)
                 for s in store.source_stats()}
    with closing(sqlite3.connect(tmp_path / "stackwatch.db")) as conn:
        recount = conn.execute(_RECOUNT).fetchall()
    assert len(recount) == 10
    assert stats == {(h, s): (from_micros(f), from_micros(last), n, from_micros(r))
                     for h, s, f, last, n, r in recount}
