"""match: one event, one firing; entities from the event."""

from __future__ import annotations

from detect_helpers import ev, rule_from_yaml, run

RULE = """
kind: match
category: network.bridge_down
severity: high
condition: {action: bridge.down}
group_by: [host, target.name]
entities: {bridge: target.name}
summary: "bridge {target.name} down on {host}"
"""


def test_match_fires_with_entities() -> None:
    event = ev(0, host="net1", service="kernel", action="bridge.down",
               target={"type": "bridge", "name": "br-ex"})
    [alert] = run(rule_from_yaml(RULE), [event]).alerts()
    assert (alert.bridge, alert.host, alert.service, alert.summary) == ("br-ex", "net1", "kernel",
                                                                      "bridge br-ex down on net1")
    assert alert.evidence[0].raw == event.raw


def test_match_ignores_other_events() -> None:
    assert run(rule_from_yaml(RULE), [ev(0, action="link.down")]).alerts() == []


def test_escalate_raises_severity_for_matching_events() -> None:
    rule = rule_from_yaml(RULE + "escalate:\n  - condition: {target.name: br-int}\n    severity: critical\n")
    alerts = run(rule, [ev(0, action="bridge.down", target={"name": "br-int"}),
                        ev(1, action="bridge.down", target={"name": "qbr1"})]).alerts()
    assert [a.severity for a in alerts] == ["critical", "high"]
