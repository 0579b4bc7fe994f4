"""Detection: rules as data, compiled to predicates, run by a keyed, bounded engine.

Public surface::

    from stackwatch.detect import Engine, Rule, load_rules, builtin_rules
    engine = Engine(builtin_rules())
    for event in events:
        engine.process(event)        # -> new or updated alerts
    engine.finish()
    engine.alerts()

A long-running process calls ``tune_gc()`` once after building its engine (see gc_tuning.py).

The rule file format is documented in detect/FORMAT.md.
"""

from __future__ import annotations

from stackwatch.detect.commands import rules_list, rules_test
from stackwatch.detect.conditions import compile_condition
from stackwatch.detect.engine import Engine
from stackwatch.detect.gc_tuning import tune_gc
from stackwatch.detect.loader import RuleSet, builtin_rules, load_rules
from stackwatch.detect.model import Rule
from stackwatch.detect.schedule import MaintenanceSchedule

__all__ = ["Engine", "MaintenanceSchedule", "Rule", "RuleSet", "builtin_rules", "compile_condition",
           "load_rules", "rules_list", "rules_test", "tune_gc"]
