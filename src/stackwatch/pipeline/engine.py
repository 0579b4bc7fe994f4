"""The one factory of the detection engine: ``analyze``, ``serve`` (and the roles to come)
build theirs here, from ``Settings``, so a maintenance window, an expected source or a rule
switched off in the web UI applies to every path a record can take.

What differs between the two is only what an archive cannot have: ``live`` adds the wall
clock (absence rules fire while nothing arrives), the monitor's own heartbeat as an expected
source, and the orphaned-resource ledger and the spike rules' baselines (pipeline/baselines.py)
kept in ``state_dir`` across restarts. An archive is
judged on its own events' time, with a ledger of its own.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, TextIO

from stackwatch.config.settings import RulesSettings, Settings, StoreSettings
from stackwatch.core.errors import RuleError
from stackwatch.core.types import DetectionEngine
from stackwatch.detect.engine import Engine
from stackwatch.detect.loader import RuleSet, builtin_rules, load_rules
from stackwatch.detect.overrides import RuleState, apply_overrides
from stackwatch.respond.orphans import OrphanAwareEngine, OrphanDetector

log = logging.getLogger(__name__)


def engine_for(settings: Settings, *, live: bool, report: TextIO | None = None,
               orphans: bool = True, overrides: bool = True, shared_rules: bool = False) -> DetectionEngine:
    """The engine for ``settings``: ``rule_engine``'s, partitioned by tenant when a source
    receives tenants' instances' logs (``tenant_syslog``: pipeline/tenants.py). The arguments
    are ``rule_engine``'s."""
    engine = rule_engine(settings, live=live, report=report, orphans=orphans, overrides=overrides,
                         shared_rules=shared_rules)
    if any(source.type == "tenant_syslog" for source in settings.sources):
        from stackwatch.pipeline.tenants import TenantPartitionedEngine

        # tenants' instances: an engine per project (pipeline/tenants.py), their alerts the
        # project's; the tenants' engines share neither windows nor the infrastructure's clock.
        # Its rules are those it kept: the enabled ones, all a project's engine would keep.
        rule_list, clock = engine.rules, engine.clock
        return TenantPartitionedEngine(engine, lambda: Engine(rule_list, clock=clock))
    return engine


def rule_engine(settings: Settings, *, live: bool, report: TextIO | None = None,
                orphans: bool = True, overrides: bool = True, shared_rules: bool = False) -> Engine:
    """The detection engine itself, for a caller that reaches into it (a partition's analyzer
    checkpoints its state, runs routed copies: cluster/analyzer.py): the built-in packs (unless
    ``rules.builtin`` is off) and ``rules.paths``, with the web UI's rule switches of the
    embedded store's folder, the maintenance windows and the expected sources. Rule files with
    problems are reported (``report``, else the log) and left out; ``rules.strict`` makes any
    problem an error.
    ``live``: ``serve``'s engine (see the module's docstring). ``orphans``: run the
    orphaned-resources detector too. ``overrides``: False ignores the web UI's switches (an
    engine built with no configuration at all). ``shared_rules``: the rule set loaded once per
    process (pipeline/rule_cache.py; problems reported at that load only), for a process that
    builds many engines (an analyzer: one per partition)."""
    def load() -> RuleSet:
        return _load_rules(settings, report)

    if shared_rules:
        from stackwatch.pipeline import rule_cache

        rules = rule_cache.rule_set(settings.rules, load)
    else:
        rules = load()
    # a copy: the shared set is read-only (the web UI's switches differ per store folder)
    rule_list = list(rules.rules)
    if not rule_list and settings.rules.paths and not live:  # serve still collects and stores
        raise RuleError("no usable rule in the given rule paths", str(settings.rules.paths[0]))
    folder = settings.store.embedded_folder() if overrides else None
    if folder is not None:  # rules switched on or off from the web UI (rule-state.json by the store)
        rule_list = apply_overrides(rule_list, RuleState.in_data_dir(folder))
    expected = [{"host": e.host, "service": e.service} for e in settings.expected_sources]
    options: dict[str, Any] = {"maintenance": settings.maintenance}
    if live:
        from stackwatch.core.clock import SystemClock

        # the monitor's own heartbeat, so an absence rule notices the monitor going quiet
        expected.append({"host": settings.hostname, "service": "stackwatch"})
        options["clock"] = SystemClock()
    options["expected_sources"] = expected
    if not orphans:
        engine: Engine = Engine(rule_list, **options)
    else:
        # live: the resource ledger is rebuilt from its snapshot, so a restart keeps what it knew
        detector = OrphanDetector.open(settings.state_dir) if live else None
        engine = OrphanAwareEngine(rule_list, orphans=detector, **options)
    if live:  # the spike rules' learned baselines: a restart is not a new learning day
        from stackwatch.pipeline import baselines

        baselines.load(engine, settings.state_dir)
    return engine


def _load_rules(settings: Settings, report: TextIO | None) -> RuleSet:
    """Read and compile the rule files of ``settings``, reporting the problems (or raising
    the first with ``rules.strict``)."""
    rules = builtin_rules() if settings.rules.builtin else RuleSet()
    if settings.rules.paths:
        rules.extend(load_rules([Path(p) for p in settings.rules.paths]))
    if rules.errors:
        if settings.rules.strict:
            raise rules.errors[0]
        for error in rules.errors:
            if report is not None:
                report.write(f"rule not loaded: {error}\n")
            else:
                log.warning("rule not loaded: %s", error)
    return rules


def archive_settings(base: Settings | None = None, *, data: str | None = None,
                     rules: list[str] | tuple[str, ...] = ()) -> Settings:
    """The settings ``analyze`` runs with: ``base`` (a configuration file, or the defaults)
    with its store in ``data`` and ``rules`` added to its rule paths."""
    from dataclasses import replace

    settings = base or Settings()
    if data is not None:
        settings = replace(settings, store=replace(settings.store or StoreSettings(), url=str(data)))
    if rules:
        settings = replace(settings, rules=replace(settings.rules or RulesSettings(),
                                                   paths=[*settings.rules.paths, *map(str, rules)]))
    return settings


def build_engine(extra_rule_paths: list[Path] | None = None, *, strict: bool = False,
                 report: TextIO | None = sys.stderr, orphans: bool = True) -> Engine:
    """The archive engine with no configuration but ``extra_rule_paths`` (benchmarks, tests):
    ``rule_engine`` over the default settings (no source: never partitioned by tenant), without
    the web UI's switches (no store)."""
    settings = Settings(rules=RulesSettings(paths=[str(p) for p in extra_rule_paths or []], strict=strict))
    return rule_engine(settings, live=False, report=report, orphans=orphans, overrides=False)
