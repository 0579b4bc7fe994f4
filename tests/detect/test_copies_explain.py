"""A record that reaches a partition twice (routed through two buckets for different rules, or
sent by two collectors) is one record to the engine's explainers too: the second copy, taken
later, must not overwrite what they remember of newer explaining records with the older one.

Before: ``process_only`` showed the late copy to the explainers again, so the memory of
``same: [host]`` went back to the older shutdown: a stop the newer shutdown explains was
alerted (suppressing rule), or was said to be explained by the older record."""

from __future__ import annotations

import pytest
from detect_helpers import ev, rule_from_yaml

from stackwatch.core.alert import Alert
from stackwatch.detect.engine import Engine

STOP = """
kind: match
category: service.unscheduled_stop
severity: high
condition: {action: service.stop}
explained_by:
  condition: {action: system.shutdown}
  window: 10m
  same: [host]
  then: {THEN}
"""
SHUTDOWN = """
kind: match
category: service.unscheduled_stop
severity: low
title: shutdown seen ({N})
condition: {action: system.shutdown}
"""


def shutdown(at: float) -> object:
    return ev(at, host="ctl1", service="systemd-logind", action="system.shutdown", origin="ctl1/syslog")


def stop(at: float) -> object:
    return ev(at, host="ctl1", service="systemd", action="service.stop", target={"name": "nova-api.service"},
              origin="ctl1/syslog")


def _run(then: str, stop_at: float, *, late_copy: bool) -> tuple[Engine, list[Alert]]:
    """Shutdowns at 0 and 300 s routed for rule ``first``; with ``late_copy`` the 0 s record's
    copy for rule ``second`` arrives after the 300 s one; then a stop at ``stop_at``."""
    rule = rule_from_yaml(STOP.replace("{THEN}", then))
    first, second = (rule_from_yaml(SHUTDOWN.replace("{N}", n)) for n in ("1", "2"))
    engine = Engine([rule, first, second])
    engine.process_only(shutdown(0), frozenset({first.id}))
    engine.process_only(shutdown(300), frozenset({first.id}))
    if late_copy:
        engine.process_only(shutdown(0), frozenset({second.id}))  # the same record, another route
    engine.process_only(stop(stop_at), frozenset({rule.id}))
    engine.finish()
    return engine, [a for a in engine.alerts() if a.rule == rule.id]


@pytest.mark.parametrize("late_copy", [False, True])
def test_a_stop_the_newer_shutdown_explains_is_suppressed_whatever_copy_came_late(late_copy: bool) -> None:
    engine, alerts = _run("{suppress: true}", 700, late_copy=late_copy)  # 0 s is out of the window
    assert alerts == [], "explained by the 300 s shutdown (10 min window)"
    assert engine.stats.explained == 1
    # the late copy was still offered to its own rule, once
    assert sum(a.title == "shutdown seen (2)" for a in engine.alerts()) == (1 if late_copy else 0)


@pytest.mark.parametrize("late_copy", [False, True])
def test_the_explanation_names_the_latest_explaining_record_once(late_copy: bool) -> None:
    engine, [alert] = _run("{severity: low, tag: explained}", 500, late_copy=late_copy)
    assert alert.severity == "low"
    assert alert.details["explained_by"]["ref"] == "t+300"
    refs = [e.ref for e in alert.evidence]
    assert refs.count("t+300") == 1 and "t+0" not in refs
    assert engine.stats.explained == 1
