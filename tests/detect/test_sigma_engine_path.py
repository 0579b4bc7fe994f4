"""Sigma rules on the engine's path: the residual the engine runs (index already applied) and
the record-type test hoisted out of the condition must decide exactly like the full predicate."""

from __future__ import annotations

import msgspec
import pytest

from stackwatch.core.event import Event
from stackwatch.detect.codegen import residual_for
from stackwatch.detect.engine import Engine
from stackwatch.detect.sigma import load_sigma_file
from tests.detect.test_sigma import SUPPORTED, _generated_events, audit, one_rule


def _allowed(index: dict[str, frozenset[str]], event: Event) -> bool:
    return all(getattr(event, dim) in values for dim, values in index.items())


def _lower_records(event: Event) -> Event:
    records = event.attrs.get("records")
    if not isinstance(records, list):
        return event
    return msgspec.structs.replace(event, attrs={**event.attrs, "records": [r.lower() for r in records]})


@pytest.fixture(scope="module")
def sigma_rules():
    return [rule for path in SUPPORTED for rule in load_sigma_file(path)]


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return _generated_events(1500)


def test_engine_runs_the_residual_and_it_agrees_with_the_condition(sigma_rules, events):
    for rule in sigma_rules:
        usable, residual = residual_for(rule.condition, rule.index)
        assert usable and residual is not None and residual is not rule.condition, rule.title
        offered = [event for event in events if _allowed(rule.index, event)]
        assert [bool(residual(e)) for e in offered] == [bool(rule.condition(e)) for e in offered], rule.title


def test_engine_fires_once_per_predicate_hit(sigma_rules, events):
    expected = sum(1 for rule in sigma_rules for event in events if rule.condition(event))
    assert expected > 0
    engine = Engine(sigma_rules, correlate=False)
    for event in events:
        engine.process(event)
    engine.finish()
    assert engine.stats.firings == expected


def test_hoisted_record_type_test_ignores_case(sigma_rules, events):
    lowered = [_lower_records(event) for event in events]
    for rule in sigma_rules:
        before = sum(1 for event in events if rule.condition(event))
        after = sum(1 for event in lowered if rule.condition(event))
        assert before == after, rule.title


@pytest.mark.parametrize(("detection", "event", "expected"), [
    # `type` only on one branch of an OR: no record type may be required of every event
    ("    s:\n        type: EXECVE\n    k:\n        - needle\n    condition: s or k",
     audit(records=["SYSCALL"], exe="needle"), False),
    ("    s:\n        type: EXECVE\n    t:\n        exe: /bin/x\n    condition: s or t",
     audit(records=["SYSCALL"], exe="/bin/x"), True),
    ("    s:\n        type: EXECVE\n    t:\n        exe: /bin/x\n    condition: t and not s",
     audit(records=["SYSCALL"], exe="/bin/x"), True),
    ("    s:\n        type: [EXECVE, PATH]\n    t:\n        exe: /bin/x\n    condition: s and t",
     audit(records=["SYSCALL", "PATH"], exe="/bin/x"), True),
    ("    s:\n        type: EXECVE\n    t:\n        type: PATH\n    condition: s or t",
     audit(records=["SYSCALL", "path"]), True),
    ("    s:\n        type: EXECVE\n    t:\n        type: PATH\n    condition: s and t",
     audit(records=["SYSCALL", "PATH"]), False),
    ("    s:\n        type: 'EXEC*'\n    condition: s", audit(records=["SYSCALL", "EXECVE"]), True),
])
def test_record_type_hoisting_keeps_semantics(detection, event, expected):
    rule = one_rule(detection)
    assert rule.condition(event) is expected
    usable, residual = residual_for(rule.condition, rule.index)
    assert usable and residual is not None and residual(event) is expected
