"""Generated condition code: it must agree with the reference closures on every input,
its residual (the index-implied tests left out) must agree on the events the index lets
through, and rule values must never become code."""

from __future__ import annotations

import itertools
from typing import Any

import msgspec
from detect_helpers import ev, rule_from_yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from stackwatch.core.event import Event
from stackwatch.detect.codegen import residual_for
from stackwatch.detect.conditions import compile_condition, reference_predicate
from stackwatch.detect.engine import Engine

FIELDS = ["service", "action", "kind", "outcome", "host", "initiator.name", "initiator.source_ip",
          "target.name", "request_id", "attrs.status", "attrs.argv", "attrs.nested.deep"]
TEXTS = ["", "sshd", "SSHD", "keystone", "authenticate", "failure", "10.1.2.3", "ctl-1", "401",
         "iptables -F", "a'b\"c", "x\ny"]
ITEMS: Any = st.one_of(st.none(), st.sampled_from(TEXTS), st.integers(0, 402))
VALUES: Any = st.one_of(st.none(), st.sampled_from(TEXTS), st.integers(-2, 402), st.booleans(),
                        st.lists(ITEMS, max_size=3))


def _scalar() -> Any:
    return st.one_of(st.sampled_from(TEXTS), st.integers(0, 402), st.booleans(), st.none())


def _operator() -> Any:
    needle = st.sampled_from(TEXTS[1:])
    texts = st.one_of(needle, st.lists(needle, min_size=1, max_size=3))
    return st.one_of(
        st.tuples(st.just("eq"), _scalar()),
        st.tuples(st.just("in"), st.lists(_scalar(), min_size=1, max_size=3)),
        st.tuples(st.sampled_from(["prefix", "suffix", "contains"]), texts),
        st.tuples(st.just("regex"), st.sampled_from([r"^ssh", r"iptables\s+-(F|X)", r"\d{3}", "(?:a|b)c"])),
        st.tuples(st.just("cidr"), st.sampled_from(["10.0.0.0/8", "192.168.0.0/16"])),
        st.tuples(st.just("exists"), st.booleans()),
        st.tuples(st.sampled_from(["gt", "gte", "lt", "lte"]), st.integers(-1, 402)),
    )


def _nocase_allowed(ops: dict[str, Any]) -> bool:
    return not any(k in ops for k in ("cidr", "gt", "gte", "lt", "lte", "exists"))


def _leaf() -> Any:
    ops = st.lists(_operator(), min_size=1, max_size=2).map(dict)
    with_nocase = st.tuples(ops, st.booleans()).map(
        lambda t: {**t[0], **({"nocase": True} if t[1] and _nocase_allowed(t[0]) else {})})
    listed = st.lists(_scalar(), min_size=1, max_size=3)
    spec = st.one_of(with_nocase, with_nocase, with_nocase, _scalar(), listed)
    return st.tuples(st.sampled_from(FIELDS), spec).map(lambda t: {t[0]: t[1]})


def _merged(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {k: v for d in items for k, v in d.items()}


CONDITIONS: Any = st.one_of(_leaf(), st.recursive(
    _leaf(),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(_merged),
        st.lists(inner, min_size=1, max_size=3).map(lambda items: {"all": items}),
        st.lists(inner, min_size=1, max_size=3).map(lambda items: {"any": items}),
        inner.map(lambda c: {"not": c}),
    ),
    max_leaves=4,
))


@st.composite
def events(draw: Any) -> Event:
    def text(field: str) -> Any:
        return draw(st.one_of(st.none(), st.sampled_from(TEXTS))) if draw(st.booleans()) else None

    attrs = {"status": draw(VALUES), "argv": draw(VALUES), "nested": {"deep": draw(VALUES)}}
    return ev(0, service=draw(st.sampled_from(TEXTS)), action=text("action"),
              kind=draw(st.sampled_from(TEXTS)), outcome=text("outcome"), host=draw(st.sampled_from(TEXTS)),
              initiator={"name": text("name"), "source_ip": text("ip")}, target={"name": text("target")},
              request_id=text("rid"), attrs=attrs)


@settings(max_examples=1000, deadline=None)
@given(condition=CONDITIONS, batch=st.lists(events(), min_size=1, max_size=8))
def test_generated_code_agrees_with_the_reference(condition: dict[str, Any], batch: list[Event]) -> None:
    compiled = compile_condition(condition)
    reference = reference_predicate(compiled)
    for event in batch:
        assert compiled.predicate(event) is reference(event), compiled.predicate.__doc__


@settings(max_examples=200, deadline=None)
@given(condition=CONDITIONS, batch=st.lists(events(), min_size=1, max_size=8))
def test_residual_agrees_on_the_events_the_index_lets_through(condition: dict[str, Any],
                                                                 batch: list[Event]) -> None:
    compiled = compile_condition({"all": [{"service": ["sshd", "keystone"], "action": "authenticate"},
                                          condition]})
    usable, residual = residual_for(compiled.predicate, compiled.hints)
    assert usable
    dims = sorted(compiled.hints)
    for event in batch:  # made into every event the index would offer it as
        for values in itertools.product(*(sorted(compiled.hints[dim]) for dim in dims)):
            offered = msgspec.structs.replace(event, **dict(zip(dims, values, strict=True)))
            assert (residual is None or residual(offered)) is compiled.predicate(offered)


def test_index_equalities_leave_the_residual() -> None:
    compiled = compile_condition({"service": "keystone", "action": ["authenticate", "account.locked"],
                                  "outcome": "failure", "severity": "warning"})
    usable, residual = residual_for(compiled.predicate, compiled.hints)
    assert usable and residual is not None
    assert "service" not in residual.__doc__ and "action" not in residual.__doc__
    assert "outcome" not in residual.__doc__  # outcome is an index dimension too
    assert "severity" in residual.__doc__
    assert residual(ev(service="keystone", action="authenticate", outcome="failure", severity="warning"))
    assert not residual(ev(service="keystone", action="authenticate", outcome="failure", severity="info"))


def test_outcome_keeps_an_event_from_rules_that_cannot_match() -> None:
    rule = rule_from_yaml("condition: {service: keystone, action: authenticate, outcome: failure}\n")
    engine = Engine([rule])
    engine.process(ev(1, service="keystone", action="authenticate", outcome="success"))
    engine.process(ev(2, service="keystone", action="authenticate", outcome="failure"))
    engine.process(ev(3, service="keystone", action="authenticate"))  # no outcome at all
    engine.finish()  # logins wait in the correlation stage first
    assert engine.stats.evaluations == 1
    assert len(engine.alerts()) == 1


def test_a_rule_of_index_equalities_only_needs_no_test() -> None:
    rule = rule_from_yaml("condition: {service: keystone, action: deleted.user}\n")
    slot = Engine([rule])._slots[0]
    assert slot.test is None


def test_residual_is_not_used_when_the_index_does_not_imply_it() -> None:
    compiled = compile_condition({"service": "keystone", "outcome": "failure"})
    usable, predicate = residual_for(compiled.predicate, {})  # a rule indexed on nothing
    assert not usable and predicate is compiled.predicate


def test_rule_values_are_constants_never_code() -> None:
    nasty = "x') or __import__('os').system('true') or ('"
    compiled = compile_condition({"initiator.name": nasty, "attrs.a'b": {"prefix": nasty},
                                  "message": [nasty]})
    source = compiled.predicate.__doc__
    assert nasty not in source and "__import__" not in source and "a'b" not in source
    assert compiled.predicate(ev(0, message=nasty, initiator={"name": nasty}, attrs={"a'b": nasty + "!"}))
    assert not compiled.predicate(ev(0, message=nasty, initiator={"name": "root"}, attrs={"a'b": nasty}))


def test_cheapest_tests_come_first() -> None:
    compiled = compile_condition({"message": {"regex": "iptables"}, "initiator.source_ip": {"exists": True},
                                  "service": "sshd"})
    source = compiled.predicate.__doc__
    assert source.index("e.service") < source.index("e.initiator.source_ip") < source.index("e.message")


def test_two_index_operators_on_one_field_hint_the_values_both_allow() -> None:
    """``{eq: a, in: [...]}`` on an index field: the hint is what both allow (it was the last
    operator's values, so the residual, which drops both tests, could not be used)."""
    compiled = compile_condition({"all": [{"service": ["sshd", "keystone"], "action": "authenticate"},
                                          {"kind": {"eq": "sshd", "in": ["", "sshd"]}}]})
    assert compiled.hints["kind"] == frozenset({"sshd"})
    usable, _ = residual_for(compiled.predicate, compiled.hints)
    assert usable
    never = compile_condition({"kind": {"eq": "sshd", "in": [""]}})
    assert never.hints["kind"] == frozenset()
    assert residual_for(never.predicate, never.hints)[0]
