"""sequence: step A (N times) then step B within the window, for the same key."""

from __future__ import annotations

import dataclasses

import pytest
from detect_helpers import ev, failure, rule_from_yaml, run

from stackwatch.core.errors import RuleError
from stackwatch.detect.engine import Engine
from stackwatch.detect.loader import load_text

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


# Step keys: keystone's created.user names the new user in target.id (the admin who made it
# in initiator.id); the user's own login and launches name it in initiator.id.
USER_RULE = """
id: 5f0c1f38-93c4-4a4c-9d0e-2f4f3f0b8a11
title: new user used at once
category: usage.anomaly
severity: high
kind: sequence
group_by: [initiator.id]
window: 30m
steps:
  - name: user created
    group_by: [target.id]
    condition: {action: created.user}
  - name: login
    condition: {action: authenticate, outcome: success}
  - name: launches
    count: 2
    condition: {action: http.request}
summary: "{key} created, logged in, launched"
"""


def created(at: float, user: str = "u-new", admin: str = "u-admin"):
    return ev(at, service="keystone", action="created.user", initiator={"id": admin},
              target={"type": "user", "id": user})


def login(at: float, user: str):
    return ev(at, service="keystone", action="authenticate", outcome="success", initiator={"id": user})


def launch(at: float, user: str):
    return ev(at, service="nova-api", action="http.request", initiator={"id": user})


def test_a_step_key_follows_the_new_user_from_target_to_initiator() -> None:
    events = [created(0), login(60, "u-new"), launch(90, "u-new"), launch(100, "u-new")]
    [alert] = run(rule_from_yaml(USER_RULE), events).alerts()
    assert alert.key == "u-new"
    assert alert.summary == "u-new created, logged in, launched"
    assert alert.details["events"] == 4


def test_the_admin_who_created_the_user_does_not_complete_it() -> None:
    events = [created(0), login(60, "u-admin"), launch(90, "u-admin"), launch(100, "u-admin")]
    assert run(rule_from_yaml(USER_RULE), events).alerts() == []


def test_a_creation_keyed_by_target_does_not_start_a_sequence_for_its_initiator() -> None:
    # the admin's id is in initiator.id of the creation: only target.id may start the sequence
    events = [created(0, user="u-other", admin="u-new"), login(60, "u-new"), launch(90, "u-new"),
              launch(100, "u-new")]
    assert run(rule_from_yaml(USER_RULE), events).alerts() == []


def test_a_login_keyed_by_initiator_is_not_read_by_its_target() -> None:
    # a login event whose target.id is the new user but initiator someone else is not its login
    other = ev(60, service="keystone", action="authenticate", outcome="success", initiator={"id": "u-x"},
               target={"id": "u-new"})
    events = [created(0), other, launch(90, "u-new"), launch(100, "u-new")]
    assert run(rule_from_yaml(USER_RULE), events).alerts() == []


def test_step_keys_equal_to_the_rule_key_change_nothing() -> None:
    explicit = RULE.replace("    count: 3\n", "    count: 3\n    group_by: [initiator.source_ip]\n")
    assert explicit != RULE
    events = [failure(0), failure(5), success(7, ip="198.51.100.1"), failure(10), success(15),
              *[failure(100 + i, ip="198.51.100.9") for i in range(5)], success(106, ip="198.51.100.9")]
    plain = run(rule_from_yaml(RULE), events).alerts()
    keyed = run(rule_from_yaml(explicit), events).alerts()
    assert len(plain) == 2
    assert [(a.key, a.count, a.summary) for a in keyed] == [(a.key, a.count, a.summary) for a in plain]


def test_a_two_field_step_key_maps_field_by_field() -> None:
    body = USER_RULE.replace("group_by: [initiator.id]", "group_by: [initiator.id, initiator.project]")
    rule = rule_from_yaml(body.replace("group_by: [target.id]", "group_by: [target.id, attrs.project]"))
    made = ev(0, service="keystone", action="created.user", initiator={"id": "u-admin", "project": "p-admin"},
              target={"id": "u-new"}, attrs={"project": "p1"})
    mine = [ev(t, service="keystone" if a == "authenticate" else "nova-api", action=a, outcome="success",
               initiator={"id": "u-new", "project": "p1"})
            for t, a in ((60, "authenticate"), (90, "http.request"), (99, "http.request"))]
    [alert] = run(rule, [made, *mine]).alerts()
    assert alert.key == "u-new|p1"
    elsewhere = [ev(e.time.timestamp() - mine[0].time.timestamp() + 60, service=e.service, action=e.action,
                    outcome="success", initiator={"id": "u-new", "project": "p2"}) for e in mine]
    assert run(rule, [made, *elsewhere]).alerts() == []


def _load_error(body: str) -> RuleError:
    rules, errors = load_text(body, "test.yaml")
    assert rules == [] and len(errors) == 1
    assert isinstance(errors[0], RuleError)
    return errors[0]


def test_a_step_key_of_another_arity_is_a_load_error_at_its_line() -> None:
    body = USER_RULE.lstrip("\n").replace("group_by: [target.id]", "group_by: [target.id, target.name]")
    err = _load_error(body)
    assert err.path == "test.yaml"
    assert err.line == body.splitlines().index("    group_by: [target.id, target.name]") + 1
    assert err.field == "steps[0].group_by"
    assert "2 field(s) but the rule's group_by has 1" in str(err)


def test_a_step_key_without_a_rule_key_is_a_load_error() -> None:
    err = _load_error(USER_RULE.lstrip("\n").replace("group_by: [initiator.id]\n", ""))
    assert "the rule's group_by has 0" in str(err)


@pytest.mark.parametrize(("key", "message"), [
    ("{a: b}", "a step's group_by must be a non-empty list of field paths"),
    ("[]", "a step's group_by must be a non-empty list of field paths"),
    ("[1]", "a step's group_by must be a non-empty list of field paths"),
    ("[target.nosuch]", "nosuch"),
])
def test_a_malformed_step_key_is_a_load_error(key: str, message: str) -> None:
    err = _load_error(USER_RULE.lstrip("\n").replace("group_by: [target.id]", f"group_by: {key}"))
    assert err.field == "steps[0].group_by"
    assert message in str(err)


def test_a_rule_built_in_code_with_a_step_key_of_another_arity_is_refused() -> None:
    rule = rule_from_yaml(USER_RULE)
    bad = dataclasses.replace(rule, group_by=("initiator.id", "initiator.project"))
    with pytest.raises(RuleError, match=r"step 1 \(user created\) has a key of 1 field"):
        Engine([bad])
