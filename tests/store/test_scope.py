"""Tenant scopes through the Store interface (runs against every backend in conftest.BACKENDS):
a scoped read returns only rows about the scope's project, through every read a page makes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stackwatch.core.alert import Alert
from stackwatch.core.event import Event
from stackwatch.search.query import parse
from stackwatch.store.base import AlertQuery, EventQuery, QueryError, Store
from stackwatch.store.scope import MAX_SCOPE_ITEMS, Scope, ScopeError
from stackwatch.testing import make_event

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
ALPHA = Scope("p-alpha", users=frozenset({"u-alice"}), resources=frozenset({"vm-a1", "vol-a1"}),
              addresses=frozenset({"203.0.113.10"}),
              named_users=frozenset({("alice", "d-default")}))
BETA = Scope("p-beta", users=frozenset({"u-bob"}), resources=frozenset({"vm-b1"}),
             addresses=frozenset({"203.0.113.20"}))

# (label, event, which scope sees it: "alpha", "beta" or None for infrastructure only)
EVENTS: list[tuple[str, Event, str | None]] = [
    ("alpha initiator project", make_event(message="alpha created a server",
                                           initiator={"project": "p-alpha", "id": "u-x"}), "alpha"),
    ("alpha instance target", make_event(message="instance vm-a1 deleted", target={"id": "vm-a1"}), "alpha"),
    ("alpha project target", make_event(message="project updated",
                                        target={"type": "project", "id": "p-alpha"}), "alpha"),
    ("failure against alpha user", make_event(message="bad password for alice", action="authenticate",
                                              outcome="failure", service="keystone",
                                              initiator={"id": "u-alice", "name": "alice"}), "alpha"),
    # keystone names a user it could not resolve by name and domain only: alpha's alice is
    # "alice" of d-default; "alice" of another domain, or of no stated domain, is not hers
    ("name-only failure against alpha user", make_event(
        message="unknown user alice in d-default", action="authenticate", outcome="failure",
        service="keystone", initiator={"name": "alice", "domain": "d-default"}), "alpha"),
    ("same name in another domain", make_event(
        message="unknown user alice in d-other", action="authenticate", outcome="failure",
        service="keystone", initiator={"name": "alice", "domain": "d-other"}), None),
    ("same name with no domain", make_event(
        message="Could not find user: alice", action="user.not_found", outcome="failure",
        service="keystone", initiator={"name": "alice"}), None),
    ("from alpha floating ip", make_event(message="ssh from floating",
                                          initiator={"source_ip": "203.0.113.10"}), "alpha"),
    ("beta initiator project", make_event(message="beta created a server",
                                          initiator={"project": "p-beta"}), "beta"),
    ("beta volume target", make_event(message="instance vm-b1 rebooted", target={"id": "vm-b1"}), "beta"),
    ("node log", make_event(message="kernel oops on compute node", host="cmp-1", service="kernel"), None),
    ("sshd on controller", make_event(message="Failed password for root", host="ctl-1", service="sshd",
                                      initiator={"name": "root", "source_ip": "198.51.100.7"}), None),
]


def _seeded(store: Store) -> list[int]:
    events = [e for _, e, _ in EVENTS]
    seqs = store.append_events([
        Event(**{**{f: getattr(e, f) for f in e.__struct_fields__}, "time": T0 + timedelta(minutes=i),
                 "received": T0 + timedelta(minutes=i)})
        for i, e in enumerate(events)])
    store.flush()
    return seqs


def _messages(found) -> set[str]:  # type: ignore[no-untyped-def]
    return {s.event.message for s in found}


def _expected(which: str) -> set[str]:
    return {e.message for _, e, owner in EVENTS if owner == which}


@pytest.mark.parametrize(("scope", "which"), [(ALPHA, "alpha"), (BETA, "beta")])
def test_a_scoped_search_returns_only_the_projects_events(store: Store, scope: Scope, which: str) -> None:
    _seeded(store)
    assert _messages(store.search_events(EventQuery(scope=scope, limit=100))) == _expected(which)


def test_an_unscoped_search_returns_every_event(store: Store) -> None:
    _seeded(store)
    assert len(store.search_events(EventQuery(limit=100))) == len(EVENTS)


@pytest.mark.parametrize("query", [
    EventQuery(text="server", limit=100),
    EventQuery(match=parse("server OR host:cmp-1 OR service:sshd OR project:p-beta"), limit=100),
    EventQuery(host="cmp-1", limit=100),
    EventQuery(user="root", limit=100),
    EventQuery(project="p-beta", limit=100),
    EventQuery(source_ip="203.0.113.20", limit=100),
])
def test_filters_and_the_query_language_cannot_widen_a_scope(store: Store, query: EventQuery) -> None:
    _seeded(store)
    from dataclasses import replace

    found = store.search_events(replace(query, scope=ALPHA))
    assert _messages(found) <= _expected("alpha")


def test_every_aggregate_read_is_scoped(store: Store) -> None:
    _seeded(store)
    query = EventQuery(scope=ALPHA, limit=100)
    assert store.count_events(query) == len(_expected("alpha"))
    first, last = store.event_time_bounds(query)  # type: ignore[misc]
    last_alpha = max(i for i, (_, _, owner) in enumerate(EVENTS) if owner == "alpha")
    assert first == T0 and last == T0 + timedelta(minutes=last_alpha)
    assert sum(store.hit_histogram(query, T0, timedelta(minutes=1), 20)) == len(_expected("alpha"))
    tops = store.top_values(query, ["host", "service", "user", "source_ip", "project"])
    assert "cmp-1" not in dict(tops["host"]) and "root" not in dict(tops["user"])
    assert "p-beta" not in dict(tops["project"])
    with store.holding_search(query):
        assert store.count_events(query) == len(_expected("alpha"))
        assert _messages(store.search_events(query)) == _expected("alpha")


def test_get_events_with_a_scope_leaves_out_other_projects_events(store: Store) -> None:
    seqs = _seeded(store)
    assert _messages(store.get_events(seqs, scope=BETA)) == _expected("beta")
    assert len(store.get_events(seqs)) == len(EVENTS)


def _alert(rule: str, key: str, **fields: object) -> Alert:
    return Alert(rule=rule, title=f"title {rule}", category="test", severity="high", time=T0, last_seen=T0,
                 key=key, **fields)  # type: ignore[arg-type]


ALERTS = [
    (_alert("r-proj", "k1", project="p-alpha"), "alpha"),
    (_alert("r-user", "k2", user="u-alice"), "alpha"),
    (_alert("r-ip", "k3", source_ip="203.0.113.10"), "alpha"),
    (_alert("r-key", "vm-a1"), "alpha"),
    (_alert("r-named", "n1", user="alice", details={"user_domain": "d-default"}), "alpha"),
    (_alert("r-named", "n2", user="alice", details={"user_domain": "d-other"}), None),
    (_alert("r-named", "n3", user="alice"), None),
    (_alert("r-proj", "k4", project="p-beta"), "beta"),
    (_alert("r-node", "cmp-1", host="cmp-1"), None),
]


@pytest.mark.parametrize(("scope", "which"), [(ALPHA, "alpha"), (BETA, "beta")])
def test_alert_lists_and_counts_are_scoped(store: Store, scope: Scope, which: str) -> None:
    store.upsert_alerts([a for a, _ in ALERTS])
    wanted = {(a.rule, a.key) for a, owner in ALERTS if owner == which}
    found = store.alerts(AlertQuery(scope=scope))
    assert {(s.alert.rule, s.alert.key) for s in found} == wanted
    assert store.count_alerts(AlertQuery(scope=scope)) == len(wanted)
    assert store.count_alerts(AlertQuery(scope=scope, host="cmp-1")) == 0


def test_get_alert_outside_the_scope_is_not_found(store: Store) -> None:
    ids = store.upsert_alerts([a for a, _ in ALERTS])
    by_owner = dict(zip(ids, [owner for _, owner in ALERTS], strict=True))
    for alert_id, owner in by_owner.items():
        assert (store.get_alert(alert_id, scope=ALPHA) is not None) == (owner == "alpha")
        assert store.get_alert(alert_id) is not None


def test_a_scope_without_a_project_is_refused() -> None:
    with pytest.raises(ScopeError):
        Scope("")


def test_a_scope_listing_too_many_ids_is_refused() -> None:
    with pytest.raises(ScopeError):
        Scope("p", resources=frozenset(str(n) for n in range(MAX_SCOPE_ITEMS + 1)))


@pytest.mark.parametrize("pairs", [{("alice",)}, {("alice", "")}, {"alice"}, {("alice", "d" * 256)}])
def test_a_scope_with_malformed_named_users_is_refused(pairs: set[object]) -> None:
    with pytest.raises(ScopeError):
        Scope("p", named_users=frozenset(pairs))  # type: ignore[arg-type]


def test_a_query_refuses_a_scope_of_another_type() -> None:
    with pytest.raises(QueryError):
        EventQuery(scope="p-alpha")  # type: ignore[arg-type]
    with pytest.raises(QueryError):
        AlertQuery(scope={"project": "p"})  # type: ignore[arg-type]


def test_alerts_raised_on_tenants_instances_can_be_left_out(store: Store) -> None:
    store.upsert_alerts([_alert("r-vm", "k", host="tenant/p-alpha/vm-a1", project="p-alpha"),
                         _alert("r-node", "cmp-1", host="cmp-1"), _alert("r-none", "x")])
    query = AlertQuery(without_host_prefix="tenant/")
    assert {a.alert.rule for a in store.alerts(query)} == {"r-node", "r-none"}
    assert store.count_alerts(query) == 2
    assert {a.alert.rule for a in store.alerts(AlertQuery(scope=ALPHA))} == {"r-vm"}
