"""The store contract: every backend (see conftest.BACKENDS) must pass all of this."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from stackwatch.core.alert import Alert, Evidence
from stackwatch.core.errors import StoreError
from stackwatch.core.event import Event, Initiator, Target
from stackwatch.store.base import AlertQuery, EventQuery, NotFoundError, QueryError, Store
from stackwatch.testing import make_event

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

FULL = Event(
    time=datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
    received=datetime(2026, 3, 1, 12, 0, 1, 654321, tzinfo=UTC),
    host="ctl-1", service="keystone", severity="warning",
    message="Authorization failed for admin from 10.1.2.3",
    kind="oslo_log", action="authenticate", outcome="failure",
    initiator=Initiator(name="admin", id="u-1", project="p-1", domain="default", source_ip="10.1.2.3",
                        user_agent="curl/8.0"),
    target=Target(type="user", id="u-1", name="admin"),
    observer="keystone", request_id="req-0a1b2c3d-0000-1111-2222-333344445555",
    attrs={"pid": 4242, "logger": "keystone.server.flask.application", "nested": {"list": [1, "two", None]}},
    raw="2026-03-01 12:00:00.123 4242 WARNING keystone \udcff\udcfe\x00 tail",
    origin="file:/var/log/keystone/keystone.log", ref="keystone.log:17",
)


def _event(n: int, **fields: object) -> Event:
    fields.setdefault("message", f"event number {n}")
    return make_event(time=T0 + timedelta(seconds=n), **fields)


# -- events -------------------------------------------------------------------------------

def test_every_field_round_trips_exactly(store: Store) -> None:
    [seq] = store.append_events([FULL])
    store.flush()
    [stored] = store.get_events([seq])
    assert stored.seq == seq
    assert stored.event == FULL
    assert stored.event.raw_bytes() == FULL.raw_bytes()
    assert b"\xff\xfe\x00" in stored.event.raw_bytes()


def test_seqs_are_dense_and_continue_after_reopen(store_factory) -> None:
    store = store_factory()
    first = store.append_events([_event(n) for n in range(3)])
    second = store.append_events([_event(n) for n in range(3, 13)])
    assert first + second == list(range(1, 14))
    store.close()
    assert store_factory().append_events([_event(99)]) == [14]


def test_buffered_events_become_visible_to_another_connection_on_flush(store_factory) -> None:
    writer = store_factory(batch_size=1000)
    reader = store_factory()
    writer.append_events([_event(1), _event(2)])
    assert reader.get_events([1, 2]) == []
    writer.flush()
    assert [s.seq for s in reader.get_events([1, 2])] == [1, 2]


def test_leaving_the_context_flushes_and_closes(store_factory) -> None:
    with store_factory(batch_size=1000) as store:
        store.append_events([_event(1)])
    with pytest.raises(StoreError):
        store.get_events([1])
    store.close()  # closing twice is harmless
    assert len(store_factory().get_events([1])) == 1


def test_get_events_skips_unknown_seqs_and_returns_seq_order(store: Store) -> None:
    store.append_events([_event(n) for n in range(5)])
    assert [s.seq for s in store.get_events([5, 99, 2, 0, -1])] == [2, 5]


def test_append_of_100k_events_is_all_stored_and_searchable(store_factory) -> None:
    store = store_factory(batch_size=20_000)
    events = [_event(n % 1000, host=f"cmp-{n % 7}", message=f"line {n} ok",
                     initiator={"source_ip": f"10.0.{n // 10 % 250}.1"} if n % 10 == 0 else {})
              for n in range(100_000)]
    seqs = store.append_events(events)
    store.flush()
    assert seqs == list(range(1, 100_001))
    assert store.counts().events == 100_000
    assert [s.seq for s in store.search_events(EventQuery(text="line 77777"))] == [77778]
    assert len(store.search_events(EventQuery(source_ip="10.0.3.1", limit=10_000))) == 40


# -- search -------------------------------------------------------------------------------

@pytest.fixture
def sample(store: Store) -> Store:
    """Eight events, each filter picking a known subset (seqs 1..8)."""
    store.append_events([
        _event(1, host="ctl-1", service="keystone", kind="oslo_log", action="authenticate", outcome="failure",
               severity="warning", initiator={"name": "admin", "source_ip": "10.0.0.1", "project": "p-1"},
               request_id="req-aaa", message="Authorization failed for admin from 10.0.0.1"),
        _event(2, host="ctl-1", service="keystone", kind="oslo_log", action="authenticate", outcome="success",
               initiator={"name": "alice", "id": "u-alice", "source_ip": "10.0.0.2"}, request_id="req-bbb",
               message="token issued for alice"),
        _event(3, host="ctl-2", service="sshd", kind="syslog", action="authenticate", outcome="failure",
               initiator={"name": "root", "source_ip": "10.0.0.1"}, message="Failed password for root"),
        _event(4, host="ctl-2", service="sudo", kind="syslog", action="privilege.escalate",
               initiator={"name": "alice"}, message="alice : COMMAND=/bin/bash"),
        _event(5, host="cmp-1", service="nova-compute", kind="oslo_log", request_id="req-aaa",
               message="Instance spawned successfully"),
        _event(6, host="cmp-1", service="kernel", kind="syslog", action="link.down", severity="error",
               message="eth0: Link is Down"),
        _event(7, host="net-1", service="ovs-vswitchd", kind="syslog", action="bridge.down",
               message="br-ex: port down"),
        _event(8, host="net-1", service="keystone", kind="unparsed", message="garbage \x01 line"),
    ])
    store.flush()
    return store


def _seqs(store: Store, **filters: object) -> list[int]:
    return [s.seq for s in store.search_events(EventQuery(newest_first=False, **filters))]  # type: ignore[arg-type]


@pytest.mark.parametrize(("filters", "expected"), [
    ({}, [1, 2, 3, 4, 5, 6, 7, 8]),
    ({"host": "ctl-1"}, [1, 2]),
    ({"service": "keystone"}, [1, 2, 8]),
    ({"host": "net-1", "service": "keystone"}, [8]),
    ({"kind": "syslog"}, [3, 4, 6, 7]),
    ({"action": "authenticate"}, [1, 2, 3]),
    ({"action": "authenticate", "outcome": "failure"}, [1, 3]),
    ({"severity": "error"}, [6]),
    ({"source_ip": "10.0.0.1"}, [1, 3]),
    ({"user": "alice"}, [2, 4]),
    ({"user": "u-alice"}, [2]),
    ({"project": "p-1"}, [1]),
    ({"request_id": "req-aaa"}, [1, 5]),
    ({"text": "failed"}, [1, 3]),
    ({"text": "FAILED root"}, [3]),
    ({"text": "10.0.0.1"}, [1]),
    ({"text": "link down", "host": "cmp-1"}, [6]),
    ({"since": T0 + timedelta(seconds=3), "until": T0 + timedelta(seconds=5)}, [3, 4]),
    ({"host": "nowhere"}, []),
    ({"host": "x' OR '1'='1"}, []),
    ({"user": "nobody"}, []),
])
def test_search_filters(sample: Store, filters: dict[str, object], expected: list[int]) -> None:
    assert _seqs(sample, **filters) == expected


def test_search_orders_newest_first_and_pages(sample: Store) -> None:
    assert [s.seq for s in sample.search_events(EventQuery(limit=3))] == [8, 7, 6]
    assert [s.seq for s in sample.search_events(EventQuery(limit=3, offset=3))] == [5, 4, 3]
    assert _seqs(sample, limit=2, offset=7) == [8]


def test_text_search_is_complete_right_after_append_and_flush(store: Store) -> None:
    for n in range(20):
        store.append_events([_event(n, message=f"needle{n} in a haystack")])
        store.flush()
        assert _seqs(store, text=f"needle{n}") == [n + 1]


# A word is a run of letters/digits; every word of every whitespace-separated chunk must occur,
# the words of one chunk next to each other. Nothing in the text is query syntax.
HOSTILE = [
    '"', "'", '""', 'admin" OR "1"="1', "OR", "admin OR root", "NOT admin", "NEAR(admin login)", "*",
    "adm*", ";--", "'; DROP TABLE events;--", "message:admin", "^admin", "a\x00b", ")(", "{admin}",
    "+admin -root", "admin AND", "AND", '"admin', "admin\"", "\\", "%", "_", "admin%",
]
HOSTILE_MESSAGES = [
    "admin login ok", "root login failed", 'weird "admin" OR 1=1 NEAR(x) *;-- stuff',
    "DROP TABLE events", "nothing to see", "a b c", "adm is not admin", "%_\\ only",
]


def _reference(text: str, messages: list[str]) -> list[int]:
    def words(s: str) -> list[str]:
        return re.findall(r"[^\W_]+", s.lower())

    chunks = [words(c) for c in text.replace("\x00", " ").split()]
    chunks = [c for c in chunks if c]
    if not chunks:
        return []
    hits = []
    for seq, message in enumerate(messages, 1):
        tokens = words(message)
        if all(any(tokens[i:i + len(c)] == c for i in range(len(tokens))) for c in chunks):
            hits.append(seq)
    return hits


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_search_text_matches_only_literally(store: Store, text: str) -> None:
    store.append_events([_event(n, message=m) for n, m in enumerate(HOSTILE_MESSAGES)])
    assert _seqs(store, text=text) == _reference(text, HOSTILE_MESSAGES)
    assert store.counts().events == len(HOSTILE_MESSAGES)  # and nothing was dropped


def test_query_bounds_are_enforced() -> None:
    with pytest.raises(QueryError):
        EventQuery(limit=10_001)
    with pytest.raises(QueryError):
        EventQuery(limit=0)
    with pytest.raises(QueryError):
        EventQuery(offset=-1)
    with pytest.raises(QueryError):
        EventQuery(text="x" * 513)
    with pytest.raises(QueryError):
        EventQuery(text=" ".join(["w"] * 17))
    with pytest.raises(QueryError):
        EventQuery(host="h" * 2000)
    with pytest.raises(QueryError):
        EventQuery(since=datetime(2026, 1, 1))  # naive
    with pytest.raises(QueryError):
        AlertQuery(status="bogus")


# -- sources and counts ------------------------------------------------------------------

def test_source_stats_per_host_and_service(sample: Store) -> None:
    stats = {(s.host, s.service): s for s in sample.source_stats()}
    assert len(stats) == 7
    keystone = stats[("ctl-1", "keystone")]
    assert (keystone.count, keystone.first_seen, keystone.last_seen) == (
        2, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2))
    sample.append_events([_event(n, host="ctl-1", service="keystone") for n in (0, 30)])
    keystone = {(s.host, s.service): s for s in sample.source_stats()}[("ctl-1", "keystone")]
    assert (keystone.count, keystone.first_seen, keystone.last_seen) == (4, T0, T0 + timedelta(seconds=30))


def test_counts(sample: Store) -> None:
    sample.upsert_alerts([_alert("k1"), _alert("k2")])
    counts = sample.counts()
    assert (counts.events, counts.alerts, counts.alerts_by_status) == (8, 2, {"open": 2})


# -- alerts -------------------------------------------------------------------------------

def _alert(key: str, *, count: int = 1, first: int = 0, last: int = 0, evidence: tuple[str, ...] = (),
           **fields: object) -> Alert:
    fields.setdefault("rule", "3f8e7c1a-0000-4000-8000-000000000001")
    fields.setdefault("category", "auth.bruteforce")
    return Alert(title="Brute force", severity="high", key=key, count=count,
                 time=T0 + timedelta(seconds=first), last_seen=T0 + timedelta(seconds=last or first),
                 evidence=[Evidence(ref=r, raw=f"raw {r} \udcff", time=T0) for r in evidence],
                 **fields)  # type: ignore[arg-type]


def test_alert_round_trips(store: Store) -> None:
    alert = _alert("10.0.0.1", count=5, first=1, last=9, evidence=("a.log:1", "a.log:2"), host="ctl-1",
                   summary="5 failures", source_ip="10.0.0.1", user="admin", project="p", service="keystone",
                   bridge="br-ex", path="/etc/passwd", details={"n": 5, "ips": ["10.0.0.1"]})
    [alert_id] = store.upsert_alerts([alert])
    [stored] = store.alerts()
    assert stored.id == alert_id
    assert stored.alert == alert


def test_upsert_folds_repeats_of_the_same_rule_and_key(store: Store) -> None:
    [first_id] = store.upsert_alerts([_alert("ip1", count=3, first=10, last=20, evidence=("l:1", "l:2"))])
    [again_id] = store.upsert_alerts([_alert("ip1", count=7, first=15, last=40, evidence=("l:2", "l:3"),
                                             summary="now 7")])
    [other_id] = store.upsert_alerts([_alert("ip2")])
    assert first_id == again_id != other_id
    folded = store.get_alert(first_id)
    assert folded is not None
    a = folded.alert
    assert (a.count, a.time, a.last_seen, a.summary) == (7, T0 + timedelta(seconds=10),
                                                         T0 + timedelta(seconds=40), "now 7")
    assert [e.ref for e in a.evidence] == ["l:1", "l:2", "l:3"]
    # Upserting the same state again changes nothing (analyze run twice).
    store.upsert_alerts([_alert("ip1", count=7, first=15, last=40, evidence=("l:2", "l:3"), summary="now 7")])
    assert store.get_alert(first_id).alert == a  # type: ignore[union-attr]


def test_status_survives_further_firing_and_changes_are_recorded(store: Store) -> None:
    [alert_id] = store.upsert_alerts([_alert("ip1", first=1)])
    changed = store.set_alert_status(alert_id, "acknowledged", actor="ops-jane", comment="looking")
    assert changed.alert.status == "acknowledged"
    store.upsert_alerts([_alert("ip1", count=2, first=1, last=5)])
    stored = store.get_alert(alert_id)
    assert stored is not None
    assert (stored.alert.status, stored.alert.count) == ("acknowledged", 2)
    assert [(h.actor, h.status, h.comment) for h in stored.history] == [
        ("stackwatch", "open", "raised"), ("ops-jane", "acknowledged", "looking")]


def test_a_resolved_alert_firing_again_later_is_reopened(store: Store) -> None:
    [alert_id] = store.upsert_alerts([_alert("ip1", first=1, last=5)])
    store.set_alert_status(alert_id, "resolved", actor="ops")
    store.upsert_alerts([_alert("ip1", first=1, last=5)])  # the same firing again: stays resolved
    assert store.get_alert(alert_id).alert.status == "resolved"  # type: ignore[union-attr]
    store.upsert_alerts([_alert("ip1", first=1, last=50)])
    stored = store.get_alert(alert_id)
    assert stored is not None
    assert stored.alert.status == "open"
    assert stored.history[-1].actor == "stackwatch"


def test_the_engine_can_resolve_an_alert(store: Store) -> None:
    [alert_id] = store.upsert_alerts([_alert("silent-source", category="logging.silence")])
    store.upsert_alerts([_alert("silent-source", category="logging.silence", status="resolved")])
    assert store.get_alert(alert_id).alert.status == "resolved"  # type: ignore[union-attr]


def test_set_alert_status_refuses_unknown_alerts_and_statuses(store: Store) -> None:
    [alert_id] = store.upsert_alerts([_alert("ip1")])
    with pytest.raises(NotFoundError):
        store.set_alert_status(alert_id + 100, "resolved", actor="ops")
    with pytest.raises(QueryError):
        store.set_alert_status(alert_id, "closed", actor="ops")
    assert store.get_alert(alert_id + 100) is None


def test_alert_queries(store: Store) -> None:
    ids = store.upsert_alerts([
        _alert("a", first=1, host="ctl-1", source_ip="10.0.0.1", user="admin"),
        _alert("b", first=2, host="ctl-2", category="os.login", user="root"),
        _alert("c", first=3, host="ctl-1", category="os.login", source_ip="10.0.0.9"),
    ])
    store.set_alert_status(ids[1], "acknowledged", actor="ops")

    def found(**filters: object) -> list[int]:
        return [a.id for a in store.alerts(AlertQuery(**filters))]  # type: ignore[arg-type]

    assert found() == [ids[2], ids[1], ids[0]]
    assert found(status="open") == [ids[2], ids[0]]
    assert found(category="os.login") == [ids[2], ids[1]]
    assert found(host="ctl-1", source_ip="10.0.0.1") == [ids[0]]
    assert found(user="root") == [ids[1]]
    assert found(since=T0 + timedelta(seconds=2)) == [ids[2], ids[1]]
    assert found(limit=1, offset=1) == [ids[1]]
    assert store.alerts(AlertQuery(with_evidence=False))[0].alert.evidence == []


def test_a_closed_store_refuses_work(store: Store) -> None:
    store.close()
    with pytest.raises(StoreError):
        store.append_events([_event(1)])
    with pytest.raises(StoreError):
        store.search_events(EventQuery())


# -- cluster partition checkpoints ----------------------------------------------------------

def test_a_partition_checkpoint_commits_with_the_events_and_passes_to_the_next_writer(
        store_factory, request: pytest.FixtureRequest) -> None:
    store = store_factory(batch_size=1000)
    assert store.partition_state("p000") is None
    store.append_events([_event(n) for n in range(3)])
    store.stage_partition_state("p000", {"collectors": {"c1": ["run", 4]}}, b"state-1")
    assert store.partition_state("p000") is None or store.counts().events == 3  # read commits the buffer
    store.flush()
    assert store.partition_state("p000") == ({"collectors": {"c1": ["run", 4]}}, b"state-1")
    # a commit that carries no state moves the position and keeps the last state
    store.stage_partition_state("p000", {"collectors": {"c1": ["run", 5]}}, None)
    store.flush()  # no events: the checkpoint alone is committed
    assert store.partition_state("p000") == ({"collectors": {"c1": ["run", 5]}}, b"state-1")
    store.append_events([_event(9)])
    store.stage_partition_state("p001", {"collectors": {}}, b"other")
    store.close()  # leaving flushes: events and checkpoint together
    # the partition's next analyzer (another writer on a shared store) continues the same row
    shared = "postgresql" in request.node.name  # embedded: the folder moves with the partition
    nxt = store_factory(batch_size=1000, **({"writer": "standby-writer"} if shared else {}))
    assert nxt.counts().events == 4
    assert nxt.partition_state("p001") == ({"collectors": {}}, b"other")
    nxt.append_events([_event(10)])
    nxt.stage_partition_state("p000", {"collectors": {"c1": ["run", 6]}}, b"state-2")
    nxt.flush()
    assert nxt.partition_state("p000") == ({"collectors": {"c1": ["run", 6]}}, b"state-2")


def test_a_read_only_store_refuses_a_partition_checkpoint_and_keeps_the_last(store_factory) -> None:
    store = store_factory(batch_size=1000)
    store.append_events([_event(1)])
    store.stage_partition_state("p000", {"collectors": {"c1": ["run", 1]}}, b"s1")
    store.flush()
    store.close()
    reader = store_factory(read_only=True)
    with pytest.raises(StoreError):
        reader.stage_partition_state("p000", {"collectors": {"c1": ["run", 2]}}, b"s2")
    assert reader.partition_state("p000") == ({"collectors": {"c1": ["run", 1]}}, b"s1")


def test_a_partition_claimed_by_another_writer_refuses_the_old_writers_commits(
        store_factory, request: pytest.FixtureRequest) -> None:
    """Fencing (store/fencing.py): an analyzer cut off from the broker after a standby took its
    partition over commits nothing more of it: events, alerts and checkpoint are refused."""
    from stackwatch.store.fencing import PartitionFenced

    shared = "postgresql" in request.node.name
    old = store_factory(batch_size=1000)
    assert old.claim_partition("p000") == 1
    old.append_events([_event(n) for n in range(3)])
    old.upsert_alerts([_alert("10.0.0.1", count=1)])
    old.stage_partition_state("p000", {"collectors": {"c1": ["run", 3]}}, b"old-1")
    old.flush()
    new = store_factory(batch_size=1000, **({"writer": "standby-writer"} if shared else {}))
    assert new.claim_partition("p000") == 2
    assert new.partition_state("p000") == ({"collectors": {"c1": ["run", 3]}}, b"old-1")
    # the old analyzer, not yet aware, commits its next turn: refused whole, each part
    with pytest.raises(PartitionFenced):
        old.upsert_alerts([_alert("10.0.0.1", count=7), _alert("10.0.0.2")])
    old.append_events([_event(n) for n in range(3, 6)])
    old.stage_partition_state("p000", {"collectors": {"c1": ["run", 6]}}, b"old-2")
    with pytest.raises(PartitionFenced):
        old.flush()
    with pytest.raises(PartitionFenced):  # and stays refused
        old.upsert_alerts([_alert("10.0.0.3")])
    old.close()  # writes nothing of the partition either
    assert new.partition_state("p000") == ({"collectors": {"c1": ["run", 3]}}, b"old-1")
    assert new.counts().events == 3
    assert sorted((s.alert.key, s.alert.count) for s in new.alerts()) == [("10.0.0.1", 1)]
    # the new owner commits as usual, and a third claim fences it in turn
    new.append_events([_event(9)])
    new.stage_partition_state("p000", {"collectors": {"c1": ["run", 4]}}, b"new-1")
    new.flush()
    assert new.counts().events == 4
    assert new.partition_state("p000") == ({"collectors": {"c1": ["run", 4]}}, b"new-1")
    third = store_factory(batch_size=1000, **({"writer": "third-writer"} if shared else {}))
    assert third.claim_partition("p000") == 3
    new.stage_partition_state("p000", {"collectors": {"c1": ["run", 5]}}, b"new-2")
    with pytest.raises(PartitionFenced):
        new.flush()
    assert third.partition_state("p000") == ({"collectors": {"c1": ["run", 4]}}, b"new-1")
