"""Building the detection engine the pipeline runs: built-in packs plus the operator's rules."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from stackwatch.core.errors import RuleError
from stackwatch.detect.engine import Engine
from stackwatch.detect.loader import builtin_rules, load_rules
from stackwatch.respond.orphans import OrphanAwareEngine, OrphanDetector


def build_engine(extra_rule_paths: list[Path] | None = None, *, strict: bool = False,
                 report: TextIO | None = sys.stderr, orphans: OrphanDetector | bool = True,
                 **options: Any) -> Engine:
    """An Engine with the built-in packs and ``extra_rule_paths``. Rule files with problems are
    reported (file:line: reason) and left out; ``strict`` turns any problem into an error.
    ``orphans``: run the orphaned-resources detector too (True: a fresh in-memory ledger; an
    OrphanDetector: that one, e.g. ``OrphanDetector.open(data_dir)`` in serve; False: not)."""
    rules = builtin_rules()
    if extra_rule_paths:
        rules.extend(load_rules(extra_rule_paths))
    if rules.errors:
        if strict:
            raise rules.errors[0]
        if report is not None:
            for error in rules.errors:
                report.write(f"rule not loaded: {error}\n")
    if not rules.rules and extra_rule_paths:
        raise RuleError("no usable rule in the given rule paths", str(extra_rule_paths[0]))
    if orphans is False:
        return Engine(rules.rules, **options)
    detector = orphans if isinstance(orphans, OrphanDetector) else None
    return OrphanAwareEngine(rules.rules, orphans=detector, **options)
