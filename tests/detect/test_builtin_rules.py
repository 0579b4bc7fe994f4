"""Every built-in rule loads, has fire and quiet vectors, and passes them."""

from __future__ import annotations

import pytest

from stackwatch.detect.loader import builtin_rules
from stackwatch.detect.vectors import VectorCase, check_case, rule_cases, run_vectors

RULES = builtin_rules()
CASES = [case for rule in RULES for case in rule_cases(rule)]


def test_builtin_rule_files_load_without_errors() -> None:
    assert [str(e) for e in RULES.errors] == []


def test_every_builtin_rule_has_fire_and_quiet_vectors() -> None:
    _, problems = run_vectors([r for r in RULES if not r.tests])  # rules with no tests at all
    assert problems == []
    for rule in RULES:
        kinds = {c.expect_fire for c in rule_cases(rule)}
        assert kinds == {True, False} or "sigma" in rule.tags, f"{rule.where}: needs fire and quiet vectors"


@pytest.mark.parametrize("case", CASES, ids=str)
def test_builtin_rule_vector(case: VectorCase) -> None:
    failure = check_case(case)
    assert failure is None, failure
