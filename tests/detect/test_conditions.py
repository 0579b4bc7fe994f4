"""The condition compiler: every operator, the logic, index hints, and errors with lines."""

from __future__ import annotations

import pytest
from detect_helpers import ev

from stackwatch.core.errors import RuleError
from stackwatch.detect.conditions import compile_condition, required_literal
from stackwatch.detect.yaml_locations import load_yaml

EVENT = ev(0, service="sshd", action="authenticate", outcome="failure", host="cmp-3",
           initiator={"name": "Root", "source_ip": "10.1.2.3"},
           attrs={"port": 22, "method": "password", "groups": ["syslog", "sshd"], "exit": "-1",
                  "nested": {"deep": "yes"}})


def matches(yaml_text: str) -> bool:
    return compile_condition(load_yaml(yaml_text, "c.yaml"), "c.yaml", 1).predicate(EVENT)


@pytest.mark.parametrize(("condition", "expected"), [
    ("service: sshd", True),
    ("service: nova-api", False),
    ("service: [nova-api, sshd]", True),
    ("service: {in: [nova-api, keystone]}", False),
    ("service: {eq: sshd}", True),
    ("host: {prefix: cmp-}", True),
    ("host: {prefix: [ctl, net]}", False),
    ("host: {suffix: '-3'}", True),
    ("initiator.name: {contains: oo}", True),
    ("initiator.name: {contains: root}", False),
    ("initiator.name: {contains: root, nocase: true}", True),
    ("initiator.name: {eq: ROOT, nocase: true}", True),
    ("initiator.name: {regex: '^R.+t$'}", True),
    ("initiator.name: {regex: '^r.+t$'}", False),
    ("initiator.name: {regex: '^r.+t$', nocase: true}", True),
    ("initiator.source_ip: {cidr: 10.0.0.0/8}", True),
    ("initiator.source_ip: {cidr: [192.168.0.0/16, '2001:db8::/32']}", False),
    ("initiator.source_ip: {exists: true}", True),
    ("initiator.project: {exists: true}", False),
    ("initiator.project: {exists: false}", True),
    ("attrs.port: {gt: 21}", True),
    ("attrs.port: {gte: 22, lte: 22}", True),
    ("attrs.port: {lt: 22}", False),
    ("attrs.exit: {lt: 0}", True),
    ("attrs.port: '22'", True),
    ("attrs.exit: -1", True),
    ("attrs.groups: sshd", True),
    ("attrs.groups: {prefix: sys}", True),
    ("attrs.groups: kernel", False),
    ("attrs.nested.deep: 'yes'", True),
    ("attrs.missing: {exists: false}", True),
    ("{}", True),
    ("{service: sshd, outcome: success}", False),
    ("all: [{service: sshd}, {outcome: failure}]", True),
    ("any: [{service: nova-api}, {outcome: failure}]", True),
    ("any: [{service: nova-api}, {outcome: success}]", False),
    ("not: {service: sshd}", False),
    ("not: {any: [{service: keystone}, {host: ctl1}]}", True),
])
def test_condition_operator(condition: str, expected: bool) -> None:
    assert matches(condition) is expected


def test_cidr_ignores_values_that_are_not_addresses() -> None:
    predicate = compile_condition({"initiator.source_ip": {"cidr": "10.0.0.0/8"}}).predicate
    assert predicate(ev(0, initiator={"source_ip": "controller.example"})) is False


def test_hints_from_equals_and_in() -> None:
    hints = compile_condition(load_yaml("{action: authenticate, service: [keystone, sshd]}")).hints
    assert hints == {"action": frozenset({"authenticate"}), "service": frozenset({"keystone", "sshd"})}


def test_hints_of_or_need_every_branch() -> None:
    both = compile_condition(load_yaml("any: [{action: service.stop}, {action: service.fail}]")).hints
    one = compile_condition(load_yaml("any: [{action: service.stop}, {host: ctl1}]")).hints
    assert both == {"action": frozenset({"service.stop", "service.fail"})}
    assert one == {}


def test_hints_ignore_not_and_nocase() -> None:
    assert compile_condition(load_yaml("not: {service: sshd}")).hints == {}
    assert compile_condition(load_yaml("service: {eq: SSHD, nocase: true}")).hints == {}


def test_required_literal_is_the_longest_mandatory_run() -> None:
    assert required_literal(r"iptables\s+-F") == "iptables"
    assert required_literal(r"(a|b)c") == "c"
    assert required_literal(r".*") == ""


def test_regex_gate_does_not_change_results() -> None:
    predicate = compile_condition({"message": {"regex": r"iptables\s+-(F|X)"}}).predicate
    assert predicate(ev(0, message="ran iptables  -X now"))
    assert not predicate(ev(0, message="ran iptables -L"))
    assert not predicate(ev(0, message="ran nft flush"))


@pytest.mark.parametrize(("condition", "line", "needle"), [
    ("service:\n  equals: sshd\n", 2, "unknown operator 'equals'"),
    ("initiator.name:\n  regex: '(unclosed'\n", 2, "bad regex"),
    ("initiator.source_ip:\n  cidr: 10.0.0.0/33\n", 2, "bad CIDR"),
    ("\nservce: sshd\n", 2, "unknown event field 'servce'"),
    ("initiator.ip: 1.2.3.4\n", 1, "unknown field 'ip' of initiator"),
    ("attrs.port:\n  gt: many\n", 2, "gt needs a number"),
    ("any: []\n", 1, "needs a non-empty list"),
])
def test_condition_errors_name_file_line_and_field(condition: str, line: int, needle: str) -> None:
    with pytest.raises(RuleError) as info:
        compile_condition(load_yaml(condition, "rules/x.yaml"), "rules/x.yaml", 1)
    assert info.value.path == "rules/x.yaml"
    assert info.value.line == line
    assert needle in str(info.value)
    assert str(info.value).startswith(f"rules/x.yaml:{line}: ")
