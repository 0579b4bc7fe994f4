"""What ``stackwatch rules list`` and ``stackwatch rules test`` do, as plain functions
returning (report text, exit status); the CLI only wraps them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stackwatch.detect.loader import RuleSet, builtin_rules, load_rules
from stackwatch.detect.vectors import run_vectors


def _load(paths: Sequence[str | Path], with_builtin: bool) -> RuleSet:
    rules = builtin_rules() if with_builtin else RuleSet()
    if paths:
        rules.extend(load_rules(paths))
    return rules


def rules_list(paths: Sequence[str | Path] = ()) -> tuple[str, int]:
    """The built-in rules plus those under ``paths``: one line each, then any load errors.
    Exit status 1 when a file could not be loaded."""
    rules = _load(paths, with_builtin=True)
    lines = []
    width = max((len(r.kind) for r in rules), default=5)
    for rule in sorted(rules, key=lambda r: (r.category, r.title)):
        state = "" if rule.enabled else " (disabled)"
        lines.append(f"{rule.id}  {rule.kind:<{width}}  {rule.severity:<8}  {rule.category:<28}  "
                     f"{rule.title}{state}  [{rule.where}]")
    lines.append(f"{len(rules)} rules from {len(rules.files)} files")
    lines.extend(f"error: {error}" for error in rules.errors)
    return "\n".join(lines) + "\n", 1 if rules.errors else 0


def rules_test(paths: Sequence[str | Path] = (), verbose: bool = False) -> tuple[str, int]:
    """Run the vectors of the rules under ``paths`` (the built-in packs when none).
    Exit status 0 only when every file loaded and every vector passed."""
    rules = _load(paths, with_builtin=not paths)
    results, problems = run_vectors(list(rules))
    lines = []
    for result in results:
        if result.failure is not None:
            lines.append(f"FAIL {result.failure}")
        elif verbose:
            lines.append(f"ok   {result.case}")
    lines.extend(f"FAIL {problem}" for problem in problems)
    lines.extend(f"error: {error}" for error in rules.errors)
    failed = sum(1 for r in results if r.failure is not None)
    lines.append(f"{len(rules)} rules, {len(results)} vectors: {len(results) - failed} passed, "
                 f"{failed} failed"
                 f"{f', {len(problems)} rules without vectors' if problems else ''}"
                 f"{f', {len(rules.errors)} load errors' if rules.errors else ''}")
    ok = not failed and not problems and not rules.errors
    return "\n".join(lines) + "\n", 0 if ok else 1
