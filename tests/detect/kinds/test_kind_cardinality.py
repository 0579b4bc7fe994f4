"""cardinality: distinct values of a field >= N within the window, per group."""

from __future__ import annotations

from detect_helpers import failure, rule_from_yaml, run

RULE = """
kind: cardinality
category: auth.spraying
condition: {action: authenticate, outcome: failure}
group_by: [initiator.source_ip]
field: initiator.name
threshold: 4
window: 5m
summary: "{initiator.source_ip} tried {distinct} accounts"
"""


def test_fires_on_n_distinct_values() -> None:
    [alert] = run(rule_from_yaml(RULE), [failure(i, name=f"u{i}") for i in range(4)]).alerts()
    assert alert.summary == "203.0.113.7 tried 4 accounts"
    assert alert.details["values"] == ["u0", "u1", "u2", "u3"]


def test_repeats_of_one_value_do_not_count() -> None:
    assert run(rule_from_yaml(RULE), [failure(i, name="admin") for i in range(20)]).alerts() == []


def test_values_older_than_the_window_do_not_count() -> None:
    events = [failure(i * 120, name=f"u{i}") for i in range(4)]
    assert run(rule_from_yaml(RULE), events).alerts() == []


def test_events_without_the_field_are_ignored() -> None:
    events = [failure(i) for i in range(10)]
    assert run(rule_from_yaml(RULE), events).alerts() == []
