"""The rule test-vector runner (shared by pytest and `stackwatch rules test`)."""

from __future__ import annotations

from pathlib import Path

from stackwatch.detect.commands import rules_test
from stackwatch.detect.loader import load_text
from stackwatch.detect.vectors import build_events, rule_cases, run_vectors

RULE = """\
id: 1f0a3c52-8e1b-4f43-9d1e-6b9f0e7c2a11
title: brute force
category: auth.bruteforce
severity: high
kind: threshold
condition: {action: authenticate, outcome: failure}
group_by: [initiator.source_ip]
threshold: 5
window: 1m
summary: "{count} failures from {initiator.source_ip}"
tests:
  fire:
    - name: five quick failures
      events:
        - {action: authenticate, outcome: failure, initiator: {source_ip: 10.0.0.1}, repeat: 5, every: 10s}
      expect: {count: 1, summary_contains: "5 failures from 10.0.0.1", severity: high, source_ip: 10.0.0.1}
  quiet:
    - name: spread out
      events:
        - {action: authenticate, outcome: failure, initiator: {source_ip: 10.0.0.1}, repeat: 5, every: 20s}
    - name: many IPs
      events:
        - {action: authenticate, outcome: failure, initiator: {source_ip: "10.0.0.{i}"}, repeat: 9}
"""


def rule_of(text: str):
    rules, errors = load_text(text, "rules/test.yaml")
    assert errors == []
    return rules[0]


def test_passing_vectors_report_no_failures() -> None:
    results, problems = run_vectors([rule_of(RULE)])
    assert [r.failure for r in results] == [None, None, None]
    assert problems == []


def test_a_wrong_expectation_fails_with_the_case_location() -> None:
    results, _ = run_vectors([rule_of(RULE.replace("every: 20s", "every: 5s"))])
    [failed] = [r for r in results if r.failure]
    assert failed.failure.startswith("rules/test.yaml:18 brute force [quiet spread out]: expected no alert")


def test_expect_count_is_exact() -> None:
    results, _ = run_vectors([rule_of(RULE.replace("count: 1,", "count: 2,"))])
    assert "expected 2 alert(s), got 1" in results[0].failure


def test_rule_without_vectors_is_a_problem() -> None:
    _, problems = run_vectors([rule_of(RULE.split("tests:")[0])])
    assert problems == ["rules/test.yaml:1: brute force: no 'fire' test vectors",
                        "rules/test.yaml:1: brute force: no 'quiet' test vectors"]


def test_repeat_every_and_index_placeholders() -> None:
    events = build_events(rule_cases(rule_of(RULE))[2])
    assert [e.initiator.source_ip for e in events[:3]] == ["10.0.0.0", "10.0.0.1", "10.0.0.2"]
    assert (events[1].time - events[0].time).total_seconds() == 1


def test_lines_cases_go_through_the_real_parsers() -> None:
    rule = rule_of("""\
id: 2f0a3c52-8e1b-4f43-9d1e-6b9f0e7c2a12
title: junk seen
category: ids.alert
severity: low
condition: {message: {contains: "zz-marker"}}
tests:
  fire:
    - lines: "zz-marker: nothing parses this\\n"
  quiet:
    - lines: "another line\\n"
""")
    results, problems = run_vectors([rule])
    assert problems == [] and [r.failure for r in results] == [None, None]


def test_rules_test_command_reports_and_sets_status(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(RULE)
    text, status = rules_test([tmp_path])
    assert status == 0 and "1 rules, 3 vectors: 3 passed, 0 failed" in text
    broken = RULE.replace("1f0a3c52", "3f0a3c52").replace("every: 20s", "every: 1s")
    (tmp_path / "bad.yaml").write_text(broken)
    text, status = rules_test([tmp_path])
    assert status == 1 and "FAIL " in text
