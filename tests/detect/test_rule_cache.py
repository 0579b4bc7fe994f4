"""The rule set loaded once per process (pipeline/rule_cache.py): engines built from it share
the rules and nothing else. An engine that ran the demo's records leaves no state behind in
what the next engine is built from: a second engine built from the shared set gives the alerts
of an engine whose rules were loaded on their own."""

from __future__ import annotations

import io
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stackwatch.config.settings import RulesSettings, Settings
from stackwatch.core.alert import Alert
from stackwatch.core.event import Event
from stackwatch.detect.snapshot import capture
from stackwatch.pipeline import rule_cache
from stackwatch.pipeline.engine import engine_for
from stackwatch.pipeline.reader import discover, read_event_batches
from stackwatch.scenario import demo_dataset

RECEIVED = datetime(2030, 1, 1, tzinfo=UTC)
RULE = """id: 0b5c3c3e-8a57-4f43-9a37-2f1c4ad0c001
title: custom {N}
category: auth.bruteforce
severity: medium
kind: threshold
threshold: 3
window: 5m
group_by: [initiator.source_ip]
condition: {action: authenticate, outcome: failure}
"""


@pytest.fixture(scope="module")
def demo_events(tmp_path_factory: pytest.TempPathFactory) -> list[Event]:
    logs = demo_dataset(tmp_path_factory.mktemp("demo"), seed=7)
    return [e for batch in read_event_batches(discover([str(logs)]), received=RECEIVED) for e in batch]


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    rule_cache.clear()


def _summary(alerts: list[Alert]) -> list[tuple[object, ...]]:
    return sorted((a.rule, a.key, a.count, a.status, a.severity, a.time, a.last_seen,
                   tuple(e.ref for e in a.evidence), a.details.get("events")) for a in alerts)


def _alerts(engine: object, events: list[Event]) -> list[Alert]:
    for event in events:
        engine.process(event)  # type: ignore[attr-defined]
    engine.finish()  # type: ignore[attr-defined]
    return engine.alerts()  # type: ignore[attr-defined]


def test_engines_share_the_loaded_rules_and_no_state(demo_events: list[Event]) -> None:
    settings = Settings()
    loads = rule_cache.loads
    first = engine_for(settings, live=False, shared_rules=True, overrides=False)
    second = engine_for(settings, live=False, shared_rules=True, overrides=False)
    assert rule_cache.loads == loads + 1, "loaded once for both"
    assert first.rules and all(a is b for a, b in zip(first.rules, second.rules, strict=True))
    pairs = list(zip(first.detectors(), second.detectors(), strict=True))
    assert all(a[1] is not b[1] for a, b in pairs), "a detector per engine"
    assert first.correlator is not second.correlator
    empty = capture(second)
    ran = _alerts(first, demo_events)
    assert ran, "the demo raises alerts"
    assert capture(second) == empty, "the other engine's state untouched"
    # built after the first ran, from the same shared rules: the alerts of rules loaded apart
    third = engine_for(settings, live=False, shared_rules=True, overrides=False)
    alone = engine_for(settings, live=False, overrides=False)
    assert rule_cache.loads == loads + 1
    assert _summary(_alerts(third, demo_events)) == _summary(_alerts(alone, demo_events)) == _summary(ran)


def test_an_edited_rule_file_is_read_again_and_other_settings_load_their_own(tmp_path: Path) -> None:
    path = tmp_path / "custom.yaml"
    path.write_text(RULE.replace("{N}", "1"))
    settings = Settings(rules=RulesSettings(builtin=False, paths=[str(path)]))
    loads = rule_cache.loads
    [rule] = engine_for(settings, live=False, shared_rules=True, overrides=False).rules
    assert rule.title == "custom 1"
    assert engine_for(settings, live=False, shared_rules=True, overrides=False).rules == [rule]
    path.write_text(RULE.replace("{N}", "22"))  # another size, another modification time
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    [edited] = engine_for(settings, live=False, shared_rules=True, overrides=False).rules
    assert edited.title == "custom 22"
    builtin = engine_for(Settings(), live=False, shared_rules=True, overrides=False)
    assert len(builtin.rules) > 1 and rule_cache.loads == loads + 3


def test_a_broken_file_is_reported_at_the_load_and_strict_raises_every_time(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("id: not-a-uuid\n")
    settings = Settings(rules=RulesSettings(paths=[str(path)]))
    report = io.StringIO()
    engine_for(settings, live=False, shared_rules=True, overrides=False, report=report)
    engine_for(settings, live=False, shared_rules=True, overrides=False, report=report)
    assert report.getvalue().count("rule not loaded") == 1, "once per load, not per engine"
    strict = Settings(rules=RulesSettings(paths=[str(path)], strict=True))
    for _ in range(2):
        with pytest.raises(Exception, match="id"):
            engine_for(strict, live=False, shared_rules=True, overrides=False)


def test_partitions_opening_at_once_load_the_rules_once() -> None:
    loads = rule_cache.loads
    engines: list[object] = []
    threads = [threading.Thread(target=lambda: engines.append(
        engine_for(Settings(), live=False, shared_rules=True, overrides=False))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(engines) == 4 and rule_cache.loads == loads + 1
