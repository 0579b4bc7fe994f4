"""Building the detection engine the pipeline runs: built-in packs plus the operator's rules."""

from __future__ import annotations

from pathlib import Path

from stackwatch.detect.engine import Engine
from stackwatch.detect.loader import builtin_rules, load_rules


def build_engine(extra_rule_paths: list[Path] | None = None, **options: object) -> Engine:
    rules = list(builtin_rules())
    if extra_rule_paths:
        rules.extend(load_rules(extra_rule_paths))
    return Engine(rules, **options)  # type: ignore[arg-type]
