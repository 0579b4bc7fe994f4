"""sequence: step A (N times) then step B within the window, for the same key."""

from __future__ import annotations

from detect_helpers import ev, failure, rule_from_yaml, run

RULE = """
kind: sequence
category: auth.success_after_failures
group_by: [initiator.source_ip]
window: 2m
steps:
  - name: failures
    condition: {action: authenticate, outcome: failure}
    count: 3
  - name: success
    condition: {action: authenticate, outcome: success}
summary: "success after {count} attempts from {initiator.source_ip}"
"""


def success(at: float, ip: str = "203.0.113.7"):
    return ev(at, service="keystone", action="authenticate", outcome="success", initiator={"source_ip": ip})


def test_fires_on_failures_then_success() -> None:
    [alert] = run(rule_from_yaml(RULE), [failure(0), failure(5), failure(10), success(15)]).alerts()
    assert alert.summary == "success after 4 attempts from 203.0.113.7"


def test_quiet_when_too_few_failures_precede() -> None:
    assert run(rule_from_yaml(RULE), [failure(0), failure(5), success(15)]).alerts() == []


def test_quiet_when_success_comes_first() -> None:
    assert run(rule_from_yaml(RULE), [success(0), failure(5), failure(6), failure(7)]).alerts() == []


def test_quiet_when_the_success_is_outside_the_window() -> None:
    assert run(rule_from_yaml(RULE), [failure(0), failure(1), failure(2), success(300)]).alerts() == []


def test_a_long_run_of_failures_slides_the_window() -> None:
    events = [failure(i * 30) for i in range(20)] + [success(20 * 30)]
    assert len(run(rule_from_yaml(RULE), events).alerts()) == 1


def test_success_from_another_key_does_not_complete() -> None:
    events = [failure(0), failure(1), failure(2), success(3, ip="198.51.100.1")]
    assert run(rule_from_yaml(RULE), events).alerts() == []
