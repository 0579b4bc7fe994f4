"""A search page over more hits than can be found fast: the count, histogram and field values
come from a sample of the events spread over the range (estimates, said so), the page of
hits stays exact. The real embedded store; the step budget is lowered so a small store is
"too big"."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stackwatch.search.run import run_search
from stackwatch.store import sqlite_search
from stackwatch.store.sqlite import SQLiteStore
from stackwatch.testing import make_event

T0 = datetime(2026, 12, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=1)
EVENTS = 40_000
QUERY = "NOT outcome:success AND service:keystone"


def _event(i: int):  # type: ignore[no-untyped-def]
    # a third keystone, of which every fourth a failure (3,333 hits); the rest nova
    keystone = i % 3 == 0
    return make_event(time=T0 + timedelta(seconds=2 * i), host=f"ctl{i % 2}",
                      service="keystone" if keystone else "nova-compute", kind="oslo_log",
                      action="authenticate" if keystone else "", message=f"event {i}",
                      outcome=("failure" if i % 4 == 0 else "success") if keystone else "",
                      initiator={"source_ip": f"10.0.{i % 7}.1"})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLiteStore]:
    store = SQLiteStore(Path(tmp_path_factory.mktemp("estimate")) / "data", background_index=False)
    for start in range(0, EVENTS, 5000):
        store.append_events([_event(i) for i in range(start, start + 5000)])
    store.flush()
    yield store
    store.close()


@pytest.fixture()
def small_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_search, "EXACT_STEPS", 20_000)  # far below finding every hit
    monkeypatch.setattr(sqlite_search, "SAMPLE_ROWS", 20_000)  # half the store, in 1000 runs of 20


def test_a_search_within_the_budget_is_exact(store: SQLiteStore) -> None:
    found = run_search(store, QUERY, now=NOW, count=True, histogram=True, fields=True, estimate=True)
    assert not found.estimated
    assert found.total == sum(1 for i in range(EVENTS) if i % 3 == 0 and i % 4 == 0)


def test_too_many_hits_are_counted_from_a_sample_and_said_to_be(store: SQLiteStore,
                                                                small_budget: None) -> None:
    exact = run_search(store, QUERY, now=NOW, count=True, histogram=True, fields=True)
    found = run_search(store, QUERY, now=NOW, count=True, histogram=True, fields=True, estimate=True)
    assert found.estimated and not exact.estimated
    assert exact.total is not None and found.total is not None
    assert abs(found.total - exact.total) <= 0.05 * exact.total
    assert found.histogram is not None and exact.histogram is not None
    assert abs(sum(found.histogram.counts) - exact.total) <= 0.05 * exact.total
    assert found.fields["service"][0][0] == "keystone"
    assert {value for value, _ in found.fields["outcome"]} == {"failure"}


def test_the_page_of_hits_stays_exact_when_the_counts_are_estimated(store: SQLiteStore,
                                                                    small_budget: None) -> None:
    exact = run_search(store, QUERY, now=NOW, limit=20, count=True, histogram=True)
    found = run_search(store, QUERY, now=NOW, limit=20, count=True, histogram=True, estimate=True)
    assert found.estimated
    assert [e.seq for e in found.events] == [e.seq for e in exact.events]
    oldest = run_search(store, QUERY, now=NOW, limit=20, newest_first=False, count=True, estimate=True)
    assert [e.event.message for e in oldest.events][:2] == ["event 0", "event 12"]


def test_a_key_lookup_is_sampled_by_seq_range_too(store: SQLiteStore, small_budget: None) -> None:
    exact = run_search(store, "source_ip:10.0.3.1", now=NOW, count=True)
    found = run_search(store, "source_ip:10.0.3.1", now=NOW, count=True, histogram=True, estimate=True)
    assert found.estimated
    assert exact.total is not None and found.total is not None
    assert abs(found.total - exact.total) <= 0.05 * exact.total


def test_without_estimate_the_counts_are_exact_however_long(store: SQLiteStore, small_budget: None) -> None:
    found = run_search(store, QUERY, now=NOW, count=True, histogram=True)
    assert not found.estimated
    assert found.total == sum(1 for i in range(EVENTS) if i % 3 == 0 and i % 4 == 0)


def test_the_page_is_read_the_usual_way_when_walking_the_time_index_runs_over_budget(
        store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    exact = run_search(store, QUERY, now=NOW, limit=20, count=True)
    monkeypatch.setattr(sqlite_search, "EXACT_STEPS", 1000)  # less than walking to 20 hits takes
    found = run_search(store, QUERY, now=NOW, limit=20, count=True, estimate=True)
    assert found.estimated
    assert [e.seq for e in found.events] == [e.seq for e in exact.events]


def test_a_read_over_its_step_budget_gives_none(store: SQLiteStore) -> None:
    conn = store._reader
    count_all = "SELECT count(*) FROM events WHERE outcome != 'x'"
    assert sqlite_search.within_steps(conn, 10_000, lambda: conn.execute(count_all).fetchone()) is None
    read = lambda: conn.execute(count_all).fetchone()  # noqa: E731
    assert sqlite_search.within_steps(conn, 10_000_000, read) == (EVENTS,)
