"""new_value: a value never seen for a key after the learning period."""

from __future__ import annotations

from detect_helpers import ev, rule_from_yaml, run

RULE = """
kind: new_value
category: os.login
condition: {action: session.open, target.name: root}
group_by: [host]
field: initiator.source_ip
learning: 1h
summary: "root login on {host} from new address {new_value}"
"""


def login(at: float, ip: str, host: str = "cmp-1"):
    return ev(at, host=host, service="sshd", action="session.open", target={"name": "root"},
              initiator={"source_ip": ip})


def test_new_value_after_learning_fires() -> None:
    events = [login(0, "10.0.0.5"), login(4000, "10.0.0.5"), login(4100, "203.0.113.9")]
    [alert] = run(rule_from_yaml(RULE), events).alerts()
    assert alert.summary == "root login on cmp-1 from new address 203.0.113.9"


def test_values_during_learning_only_learn() -> None:
    events = [login(0, "10.0.0.5"), login(60, "10.0.0.6"), login(4000, "10.0.0.6")]
    assert run(rule_from_yaml(RULE), events).alerts() == []


def test_values_are_learned_per_key() -> None:
    events = [login(0, "10.0.0.5", host="cmp-1"), login(4000, "10.0.0.5", host="cmp-2")]
    assert len(run(rule_from_yaml(RULE), events).alerts()) == 1


def test_a_new_value_fires_once() -> None:
    events = [login(0, "10.0.0.5"), login(4000, "203.0.113.9"), login(4010, "203.0.113.9")]
    [alert] = run(rule_from_yaml(RULE), events).alerts()
    assert alert.count == 1
