"""Loading rule files: validation with file:line: field, duplicates, Sigma hand-off."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from stackwatch.core.errors import RuleError
from stackwatch.detect.loader import builtin_rules, load_rules, load_text

GOOD = """\
id: 8d1c3b43-1b7e-4a0a-9a3f-2f6a0c1e5d10
title: Keystone brute force
category: auth.bruteforce
severity: high
kind: threshold
condition:
  action: authenticate
  outcome: failure
group_by: [initiator.source_ip]
threshold: 10
window: 5m
"""


def error_of(text: str, source: str = "rules/keystone/bruteforce.yaml") -> RuleError:
    rules, errors = load_text(textwrap.dedent(text), source)
    assert rules == [] and len(errors) == 1
    assert isinstance(errors[0], RuleError)
    return errors[0]


def test_a_good_rule_loads_with_its_location() -> None:
    [rule] = load_text(GOOD, "rules/keystone/bruteforce.yaml")[0]
    assert (rule.kind, rule.window, rule.params.threshold) == ("threshold", 300.0, 10)
    assert rule.where == "rules/keystone/bruteforce.yaml:1"
    assert rule.index == {"action": frozenset({"authenticate"}), "outcome": frozenset({"failure"})}


def test_typo_in_a_field_names_file_line_and_field() -> None:
    error = error_of(GOOD.replace("threshold: 10", "treshold: 10"))
    assert str(error) == "rules/keystone/bruteforce.yaml:10: treshold: unknown field 'treshold'; " \
                         "did you mean 'threshold'?"


@pytest.mark.parametrize(("change", "line", "field", "needle"), [
    (("category: auth.bruteforce", "category: auth.brute"), 3, "category", "unknown category"),
    (("severity: high", "severity: urgent"), 4, "severity", "must be one of"),
    (("id: 8d1c3b43-1b7e-4a0a-9a3f-2f6a0c1e5d10", "id: 42"), 1, "id", "UUID"),
    (("window: 5m", "window: five minutes"), 11, "window", "bad duration"),
    (("kind: threshold", "kind: thresh"), 5, "kind", "unknown kind"),
    (("  outcome: failure", "  outcome: {regex: '('}"), 8, "outcome", "bad regex"),
    (("group_by: [initiator.source_ip]", "group_by: [initiator.address]"), 9, "group_by", "unknown field"),
    (("threshold: 10", "threshold: 0"), 10, "threshold", "integer >= 1"),
    (("window: 5m\n", "window: 5m\nsummary: '{nope}'\n"), 12, "summary", "unknown placeholder"),
])
def test_broken_fields_are_reported_with_their_line(change: tuple[str, str], line: int, field: str,
                                                    needle: str) -> None:
    error = error_of(GOOD.replace(*change))
    assert (error.line, error.field) == (line, field)
    assert needle in error.reason


def test_missing_required_field_is_reported() -> None:
    error = error_of(GOOD.replace("title: Keystone brute force\n", ""))
    assert (error.field, error.line) == ("title", 1)


def test_windowed_kind_without_window_is_reported() -> None:
    assert "needs a window" in str(error_of(GOOD.replace("window: 5m\n", "")))


def test_duplicate_yaml_keys_are_reported() -> None:
    error = error_of(GOOD + "severity: low\n")
    assert (error.line, error.field) == (12, "severity")


def test_yaml_syntax_errors_have_a_line() -> None:
    error = error_of(GOOD + "condition: [unclosed\n")
    assert error.line is not None and "invalid YAML" in error.reason


def test_a_file_may_hold_a_list_of_rules(tmp_path: Path) -> None:
    second = GOOD.replace("8d1c3b43", "9d1c3b43")
    listed = "".join("- " + text.replace("\n", "\n  ").rstrip() + "\n" for text in (GOOD, second))
    (tmp_path / "two.yaml").write_text(listed)
    ruleset = load_rules([tmp_path])
    assert ruleset.errors == []
    assert [r.line for r in ruleset] == [1, 12]


def test_duplicate_ids_across_files_are_errors(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    ruleset = load_rules([tmp_path])
    assert len(ruleset.rules) == 1
    [error] = ruleset.errors
    assert str(error).startswith(f"{tmp_path / 'b.yaml'}:1: id: duplicate rule id")


def test_one_broken_file_does_not_hide_the_others(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD.replace("severity: high", "severity: meh"))
    (tmp_path / "b.yaml").write_text(GOOD)
    ruleset = load_rules([tmp_path])
    assert len(ruleset.rules) == 1 and len(ruleset.errors) == 1


def test_sigma_files_are_handed_to_the_sigma_loader_or_reported(tmp_path: Path) -> None:
    path = tmp_path / "sigma.yml"
    path.write_text("title: t\nlogsource:\n  product: linux\ndetection:\n  sel: {foo: bar}\n"
                    "  condition: nosuchselection\n")
    ruleset = load_rules([path])
    assert ruleset.rules == []  # the condition names no selection: never silently accepted
    [error] = ruleset.errors
    assert str(path) in str(error)


def test_builtin_rules_load_without_errors() -> None:
    assert builtin_rules().errors == []
