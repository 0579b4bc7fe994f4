"""The search language compiled to SQL, run against a real embedded store and a real
PostgreSQL store (the same expectations): every field, its aliases' targets, prefixes, "any
value", NOT/OR/AND, free text (words, phrases, prefixes), time ranges absolute and relative;
then the aggregates the search page shows, and how the embedded store shares its text lookups."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stackwatch.search.query import parse
from stackwatch.search.run import SIDEBAR_FIELDS, SIDEBAR_SAMPLE, run_search
from stackwatch.store import sqlite_search
from stackwatch.store.base import EventQuery, QueryError, Store
from stackwatch.store.sqlite import SQLiteStore
from stackwatch.testing import make_event

T0 = datetime(2026, 12, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=2, minutes=30)
EVENTS = {
    "e1": make_event(time=T0 + timedelta(hours=1), host="ctl1", service="keystone", kind="oslo_log",
                     severity="warning", action="authenticate", outcome="failure", request_id="req-a",
                     initiator={"name": "admin", "source_ip": "203.0.113.45", "project": "p1"},
                     message="Authorization failed for admin from 203.0.113.45"),
    "e2": make_event(time=T0 + timedelta(hours=2), host="ctl2", service="keystone", kind="cadf",
                     action="authenticate", outcome="success", request_id="req-a",
                     initiator={"name": "alice", "id": "u-alice", "source_ip": "10.0.0.5"},
                     target={"type": "user", "name": "alice"}, message="authenticate success by alice"),
    "e3": make_event(time=T0 + timedelta(days=1, hours=1), host="cmp1", service="nova-compute",
                     kind="oslo_log", request_id="req-b", message="Terminating instance"),
    "e4": make_event(time=T0 + timedelta(days=2), host="ctl1", service="sshd", kind="syslog",
                     severity="notice", action="session.open",
                     initiator={"name": "administrator", "source_ip": "198.51.100.7"},
                     message="Accepted password for administrator from 198.51.100.7"),
    "e5": make_event(time=T0 - timedelta(days=1), host="net1", service="neutron-server", kind="oslo_log",
                     severity="error", message="connection refused by rabbit"),
}
NAMES = {event.message: name for name, event in EVENTS.items()}


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLiteStore]:
    store = SQLiteStore(Path(tmp_path_factory.mktemp("search")) / "data", background_index=False)
    store.append_events(list(EVENTS.values()))
    store.flush()
    yield store
    store.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """Each backend holding EVENTS (the search language means the same on both)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_store")
        return
    from stackwatch.store.postgres import open_store

    with open_store(request.getfixturevalue("pg_database"), schema="search", writer="search") as pg:
        pg.append_events(list(EVENTS.values()))
        pg.flush()
        yield pg


def found(store: Store, text: str, **filters: object) -> set[str]:
    query = EventQuery(match=parse(text), now=NOW, **filters)  # type: ignore[arg-type]
    return {NAMES[s.event.message] for s in store.search_events(query)}


@pytest.mark.parametrize(("text", "expected"), [
    ("", {"e1", "e2", "e3", "e4", "e5"}),
    ("*", {"e1", "e2", "e3", "e4", "e5"}),
    ("host:ctl1", {"e1", "e4"}),
    ("host:ctl*", {"e1", "e2", "e4"}),
    ("host:ctl", set()),  # exact, not a substring
    ("service:keystone", {"e1", "e2"}),
    ("svc:nova*", {"e3"}),
    ("user:admin", {"e1"}),
    ("user:adm*", {"e1", "e4"}),
    ("user:u-alice", {"e2"}),  # the initiator's id matches too
    ("user:*", {"e1", "e2", "e4"}),
    ("source_ip:203.0.113.45", {"e1"}),
    ("ip:10.0.0.5", {"e2"}),
    ("ip:198.51.*", {"e4"}),
    ("request_id:req-a", {"e1", "e2"}),
    ("req:req-*", {"e1", "e2", "e3"}),
    ("NOT request_id:*", {"e4", "e5"}),
    ("project:p1", {"e1"}),
    ("severity:error", {"e5"}),
    ("action:authenticate", {"e1", "e2"}),
    ("action:session.*", {"e4"}),
    ("outcome:failure", {"e1"}),
    ("kind:cadf", {"e2"}),
    ("category:syslog", {"e4"}),
    ("target:alice", {"e2"}),
    ('"authorization failed"', {"e1"}),
    ("failed", {"e1"}),
    ("FAILED", {"e1"}),  # free text ignores case
    ("fail*", {"e1"}),
    ('"connection ref"*', {"e5"}),
    ('"failed authorization"', set()),  # a phrase keeps its order
    ("203.0.113.45", {"e1"}),
    ("authenticate OR terminating", {"e2", "e3"}),
    ("action:authenticate NOT outcome:success", {"e1"}),
    ("(host:ctl1 OR host:net1) AND NOT user:*", {"e5"}),
    ("NOT (host:ctl1 OR host:ctl2)", {"e3", "e5"}),
    ("time:[2026-12-01 TO 2026-12-01]", {"e1", "e2"}),
    ("time:[2026-12-01 TO 2026-12-02]", {"e1", "e2", "e3"}),
    ("time:[2026-12-01T01:00 TO 2026-12-01T02:00]", {"e1", "e2"}),  # a moment as the end is inclusive
    ("time:<2026-12-01T02:00", {"e1", "e5"}),
    ("time:<2026-12-02", {"e1", "e2", "e5"}),
    ("time:>=2026-12-03", {"e4"}),
    ("time:2026-12-01T01:00", {"e1"}),
    ("time:-1h", {"e4"}),
    ("time:[now-2d TO now-1d]", {"e1", "e2"}),  # now is 2026-12-03 00:30
    ("host:ctl1 time:>=2026-12-02", {"e4"}),
    ("time:-1h OR severity:error", {"e4", "e5"}),
    ("user:\"'; DROP TABLE events; --\"", set()),
    ("\"'; DROP TABLE events; --\"", set()),
])
def test_query(store: Store, text: str, expected: set[str]) -> None:
    assert found(store, text) == expected


def test_values_are_parameters_so_sql_in_them_is_just_text(store: Store) -> None:
    found(store, "host:\"x' OR '1'='1\" OR user:\"a'); DROP TABLE events; --\"")
    assert len(found(store, "")) == 5


def test_the_plain_filters_and_the_window_and_with_the_query(store: Store) -> None:
    assert found(store, "action:authenticate", host="ctl2") == {"e2"}
    assert found(store, "user:*", since=T0 + timedelta(hours=2)) == {"e2", "e4"}
    assert found(store, "user:*", until=T0 + timedelta(hours=2)) == {"e1"}


def test_after_seq_keeps_only_later_events(store: Store, request: pytest.FixtureRequest) -> None:
    everything = store.search_events(EventQuery(match=parse("")))
    assert len(everything) == 5
    # a live tail polls after the cursor the store gives for what it has: nothing new, nothing
    cursor = store.tail_cursor(everything, None)
    assert store.search_events(EventQuery(match=parse(""), after_seq=cursor)) == []
    if request.node.callspec.params["store"] == "sqlite":
        # the embedded store's cursor is the seq itself (commit order); the shared store's is a
        # commit tick (store/postgres/ticks.py, tested across writers in test_postgres_tail.py)
        first = min(s.seq for s in everything)
        later = store.search_events(EventQuery(match=parse(""), after_seq=first))
        assert first not in {s.seq for s in later} and len(later) == 4


def test_count_ignores_the_page(store: Store) -> None:
    assert store.count_events(EventQuery(match=parse("user:*"), limit=1, now=NOW)) == 3
    assert store.count_events(EventQuery(match=parse("nothing-matches-this"))) == 0


def test_time_bounds_of_the_hits(store: Store) -> None:
    assert store.event_time_bounds(EventQuery(match=parse("service:keystone"))) == (
        T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    assert store.event_time_bounds(EventQuery(match=parse("host:nowhere"))) is None


def test_histogram_counts_hits_per_bucket(store: Store) -> None:
    counts = store.hit_histogram(EventQuery(match=parse("NOT host:net1")), T0, timedelta(days=1), 3)
    assert counts == [2, 1, 1]
    assert store.hit_histogram(EventQuery(), T0, timedelta(hours=1), 3) == [0, 1, 1]


@pytest.mark.parametrize(("step", "size"), [(timedelta(0), 3), (timedelta(hours=1), 0),
                                            (timedelta(hours=1), 10_001)])
def test_histogram_bounds_are_checked(store: Store, step: timedelta, size: int) -> None:
    with pytest.raises(QueryError):
        store.hit_histogram(EventQuery(), T0, step, size)


def test_top_values_count_the_commonest_first(store: Store) -> None:
    top = store.top_values(EventQuery(match=parse("NOT host:net1")), ["host", "user", "request_id"], limit=2)
    assert top == {"host": [("ctl1", 2), ("cmp1", 1)], "user": [("admin", 1), ("administrator", 1)],
                   "request_id": [("req-a", 2), ("req-b", 1)]}


def test_top_values_look_at_the_newest_sample_only(store: Store) -> None:
    assert store.top_values(EventQuery(), ["host"], sample=1) == {"host": [("ctl1", 1)]}  # e4 is the newest


def test_top_values_refuse_unknown_fields(store: Store) -> None:
    with pytest.raises(QueryError, match="unknown"):
        store.top_values(EventQuery(), ["raw"])


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(QueryError, match="timezone-aware"):
        EventQuery(now=datetime(2026, 12, 1))  # naive: the point of the test


# -- a whole search (hits, count, bounds, histogram, field values) matches its text once ------

@contextmanager
def text_matches(store: SQLiteStore) -> Iterator[list[str]]:
    """The full-text MATCHes in the statements ``store`` runs inside the block, one item each."""
    statements: list[str] = []
    store._reader.set_trace_callback(lambda sql: statements.extend([sql] * sql.count(" MATCH ")))
    try:
        yield statements
    finally:
        store._reader.set_trace_callback(None)


@pytest.mark.parametrize(("text", "terms"), [
    ("password", 1),
    ("Accepted password", 1),  # words ANDed: one lookup of both
    ("password AND administrator AND NOT host:ctl2", 1),
    ("authenticate AND NOT host:ctl2", 1),
    ("Terminating OR user:admin", 1),
    ('"connection refused" OR password*', 2),
    ("nothing-matches-this", 1),
    ("NOT outcome:success AND service:keystone", 0),
    ("host:ctl* AND NOT user:admin", 0),
    ("service:keystone", 0),  # the (source, time) index counts it: nothing held
])
@pytest.mark.parametrize("most_held", [sqlite_search.HIT_SET_MAX, 1])  # 1: too many hits to hold
@pytest.mark.parametrize("since", [None, T0 + timedelta(minutes=90)])
def test_a_full_search_matches_each_text_once_and_counts_as_the_separate_reads(
        sqlite_store: SQLiteStore, monkeypatch: pytest.MonkeyPatch, text: str, terms: int, most_held: int,
        since: datetime | None) -> None:
    store = sqlite_store
    monkeypatch.setattr(sqlite_search, "HIT_SET_MAX", most_held)
    with text_matches(store) as together:
        result = run_search(store, text, since=since, now=NOW, limit=2, offset=1, count=True,
                            histogram=True, fields=True)
    assert len(together) == terms
    query = EventQuery(match=parse(text), since=since, now=NOW, limit=2, offset=1)
    with text_matches(store) as apart:
        assert result.events == store.search_events(query)
        assert result.total == store.count_events(query)
        assert result.fields == store.top_values(query, SIDEBAR_FIELDS, sample=SIDEBAR_SAMPLE)
        bounds = store.event_time_bounds(query)
        if result.histogram is None:
            assert bounds is None
        else:
            bars = result.histogram
            assert bounds is not None and bars.start <= (since or bounds[0]) and bounds[1] < bars.end
            assert list(bars.counts) == store.hit_histogram(query, bars.start, bars.step, len(bars.counts))
            assert sum(bars.counts) == result.total
    assert len(apart) == terms * (5 if result.histogram else 4)  # apart, every read matches again


def test_what_a_search_held_is_dropped_after_it(sqlite_store: SQLiteStore) -> None:
    store = sqlite_store
    run_search(store, "password OR refused OR host:ctl1", now=NOW, count=True, histogram=True, fields=True)
    temp = store._reader.execute("SELECT name FROM temp.sqlite_master WHERE type = 'table'").fetchall()
    assert temp == []
