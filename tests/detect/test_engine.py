"""The engine: dedup, realert, rule indexing, determinism, maintenance, bounds."""

from __future__ import annotations

import uuid

import msgspec
from detect_helpers import ev, failure, rule_from_yaml, run

from stackwatch.core.alert import alert_to_dict
from stackwatch.core.event import Event
from stackwatch.detect.engine import Engine
from stackwatch.detect.model import Rule

MATCH = """
condition: {action: privilege.escalate, target.name: root}
category: os.privilege
group_by: [host, initiator.name]
realert: 10m
"""


def sudo(at: float, user: str = "alice", host: str = "cmp-1"):
    return ev(at, host=host, service="sudo", action="privilege.escalate", initiator={"name": user},
              target={"name": "root"})


def test_repeats_within_realert_update_one_alert() -> None:
    engine = Engine([rule_from_yaml(MATCH)])
    first = engine.process(sudo(0))
    second = engine.process(sudo(60))
    assert first[0] is second[0]
    [alert] = engine.alerts()
    assert alert.count == 2
    assert len(alert.evidence) == 2
    assert (alert.last_seen - alert.time).total_seconds() == 60


def test_repeat_after_realert_gap_is_a_new_alert() -> None:
    assert len(run(rule_from_yaml(MATCH), [sudo(0), sudo(601 + 60)]).alerts()) == 2


def test_continuous_repeats_keep_folding_while_the_gap_stays_short() -> None:
    [alert] = run(rule_from_yaml(MATCH), [sudo(t) for t in range(0, 3600, 300)]).alerts()
    assert alert.count == 12


def test_different_keys_are_different_alerts() -> None:
    assert len(run(rule_from_yaml(MATCH), [sudo(0, "alice"), sudo(1, "bob")]).alerts()) == 2


def test_evidence_is_capped_per_alert() -> None:
    [alert] = run(rule_from_yaml(MATCH), [sudo(t) for t in range(50)]).alerts()
    assert alert.count == 50
    assert len(alert.evidence) == 10
    assert alert.evidence[-1].ref == "t+49"


def test_events_only_meet_rules_indexed_for_them() -> None:
    rules = [rule_from_yaml(f"condition: {{action: act.{i}}}\nid: {uuid.uuid4()}") for i in range(500)]
    engine = run(rules, [ev(i, action="act.7") for i in range(10)] + [ev(20, action="other")])
    assert engine.stats.evaluations == 10
    assert len(engine.alerts()) == 1


def test_rules_without_hints_meet_every_event() -> None:
    rule = rule_from_yaml("condition: {message: {contains: oops}}")
    engine = run(rule, [ev(0, message="oops"), ev(1, message="fine")])
    assert engine.stats.evaluations == 2
    assert len(engine.alerts()) == 1


def test_external_predicate_rules_run() -> None:
    rule = Rule(id=str(uuid.uuid4()), title="sigma-like", category="os.login", severity="low",
                condition=lambda e: e.message.startswith("x"), index={"service": frozenset({"sshd"})})
    engine = run(rule, [ev(0, service="sshd", message="xy"), ev(1, service="cron", message="xy")])
    assert engine.stats.evaluations == 1
    assert len(engine.alerts()) == 1


def test_disabled_rules_do_not_run() -> None:
    assert run(rule_from_yaml(MATCH + "enabled: false\n"), [sudo(0)]).alerts() == []


def test_same_input_gives_same_alerts() -> None:
    rules = [rule_from_yaml(MATCH), rule_from_yaml("""
kind: threshold
condition: {action: authenticate, outcome: failure}
group_by: [initiator.source_ip]
threshold: 3
window: 1m
""")]
    events = [failure(i * 3, ip=f"10.0.0.{i % 4}") for i in range(60)]
    events += [sudo(i, f"u{i % 3}") for i in range(30)]
    events.sort(key=lambda e: e.time)

    def encoded() -> bytes:
        return msgspec.json.encode([alert_to_dict(a) for a in run(rules, events).alerts()])

    assert encoded() == encoded()


def test_outside_maintenance_rules_are_suppressed_inside_a_window() -> None:
    rule = rule_from_yaml("""
category: service.unscheduled_stop
condition: {action: service.stop}
group_by: [host, target.name]
outside_maintenance: true
""")
    windows = [{"name": "patching", "start": "2026-03-01T11:00:00Z", "end": "2026-03-01T13:00:00Z",
                "hosts": ["cmp-*"], "services": ["nova-compute"]}]
    stop = {"service": "systemd", "action": "service.stop", "target": {"name": "nova-compute.service"}}
    events = [ev(0, host="cmp-1", **stop), ev(1, host="ctl-1", **stop), ev(7200, host="cmp-1", **stop)]
    engine = run(rule, events, maintenance=windows)
    assert [a.host for a in engine.alerts()] == ["ctl-1", "cmp-1"]
    assert engine.stats.suppressed == 1


def test_without_windows_every_stop_fires() -> None:
    rule = rule_from_yaml("category: service.unscheduled_stop\ncondition: {action: service.stop}\n"
                          "outside_maintenance: true\ngroup_by: [host]\n")
    assert len(run(rule, [ev(0, host="a", action="service.stop"), ev(1, host="b", action="service.stop")])
               .alerts()) == 2


def test_state_for_many_distinct_keys_stays_bounded() -> None:
    rule = rule_from_yaml("""
kind: threshold
condition: {action: authenticate}
group_by: [initiator.source_ip]
threshold: 3
window: 1h
max_keys: 1000
""")
    engine = Engine([rule], correlate=False)
    for i in range(20_000):
        ip = f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}"
        engine.process(ev(i * 0.01, action="authenticate", initiator={"source_ip": ip}))
    stats = engine.state_stats()[rule.id]
    assert stats["keys"] == 1000
    assert stats["evicted"] == 19_000


def _named_failure(at: float, domain: str) -> Event:
    return ev(at, service="keystone", action="authenticate", outcome="failure",
              initiator={"name": "alice", "domain": domain, "source_ip": "203.0.113.9"})


def test_an_alert_about_one_named_user_keeps_the_users_domain() -> None:
    # a tenant's scope matches an alert's user by name only with this domain (store/scope.py)
    rule = rule_from_yaml("condition: {action: authenticate, outcome: failure}\n"
                          "group_by: [initiator.name, initiator.domain]")
    alerts = run(rule, [_named_failure(0, "default"), _named_failure(1, "d2")]).alerts()
    found = sorted((a.user, a.details["user_domain"]) for a in alerts)
    assert found == [("alice", "d2"), ("alice", "default")]


def test_an_aggregate_grouped_by_name_alone_names_no_domain() -> None:
    # same-named users of two domains may share its window: the alert is neither's alone
    rule = rule_from_yaml("kind: threshold\nthreshold: 2\nwindow: 5m\n"
                          "condition: {action: authenticate, outcome: failure}\ngroup_by: [initiator.name]")
    [alert] = run(rule, [_named_failure(0, "default"), _named_failure(1, "d2")]).alerts()
    assert alert.user == "alice" and "user_domain" not in alert.details
    by_domain = rule_from_yaml("kind: threshold\nthreshold: 2\nwindow: 5m\n"
                               "condition: {action: authenticate, outcome: failure}\n"
                               "group_by: [initiator.name, initiator.domain]")
    [alert] = run(by_domain, [_named_failure(0, "d2"), _named_failure(1, "d2")]).alerts()
    assert alert.details["user_domain"] == "d2"
