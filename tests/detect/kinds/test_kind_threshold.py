"""threshold: count >= N within the window, per group."""

from __future__ import annotations

from detect_helpers import failure, rule_from_yaml, run

RULE = """
kind: threshold
condition: {action: authenticate, outcome: failure}
group_by: [initiator.source_ip]
threshold: 5
window: 60s
summary: "{count} failures from {initiator.source_ip}"
"""


def test_fires_when_n_events_fall_in_the_window() -> None:
    engine = run(rule_from_yaml(RULE), [failure(i * 10) for i in range(5)])
    [alert] = engine.alerts()
    assert alert.summary == "5 failures from 203.0.113.7"
    assert alert.source_ip == "203.0.113.7"


def test_quiet_below_the_threshold() -> None:
    assert run(rule_from_yaml(RULE), [failure(i * 10) for i in range(4)]).alerts() == []


def test_quiet_when_events_are_spread_wider_than_the_window() -> None:
    assert run(rule_from_yaml(RULE), [failure(i * 20) for i in range(5)]).alerts() == []


def test_groups_are_counted_separately() -> None:
    events = [failure(i * 5, ip=f"198.51.100.{i % 2}") for i in range(8)]
    assert run(rule_from_yaml(RULE), events).alerts() == []


def test_aggregate_alert_does_not_claim_the_last_user() -> None:
    events = [failure(i, name=f"user{i}") for i in range(5)]
    [alert] = run(rule_from_yaml(RULE), events).alerts()
    assert alert.user is None
