"""level_drop: INFO/DEBUG stops while WARNING/ERROR continue."""

from __future__ import annotations

from detect_helpers import ev, rule_from_yaml, run

RULE = """
kind: level_drop
category: logging.level_lowered
window: 10m
min_low: 5
min_high: 2
summary: "{host}/{service} writes only warnings"
"""


def log(at: float, severity: str):
    return ev(at, host="ctl1", service="nova-api", severity=severity)


def test_info_stops_warnings_continue_fires() -> None:
    events = [log(t, "info") for t in range(0, 300, 30)] + [log(t, "warning") for t in range(400, 1500, 100)]
    [alert] = run(rule_from_yaml(RULE), events).alerts()
    assert alert.summary == "ctl1/nova-api writes only warnings"


def test_a_normal_mix_stays_quiet() -> None:
    events = [log(t, "info" if t % 200 else "error") for t in range(0, 3000, 50)]
    assert run(rule_from_yaml(RULE), events).alerts() == []


def test_a_source_that_goes_fully_silent_is_not_a_level_drop() -> None:
    events = [log(t, "info") for t in range(0, 300, 30)] + [ev(2000, host="ctl2", service="x")]
    assert run(rule_from_yaml(RULE), events).alerts() == []


def test_early_warnings_fire_on_tick() -> None:
    events = [log(t, "info") for t in range(0, 300, 30)] + [log(300, "error"), log(310, "error")]
    events.append(ev(1500, host="ctl2", service="other"))  # time moves on
    assert len(run(rule_from_yaml(RULE), events).alerts()) == 1


def test_info_returning_resolves() -> None:
    events = [log(t, "info") for t in range(0, 300, 30)] + [log(900, "error"), log(950, "error"),
                                                            log(1000, "info")]
    [alert] = run(rule_from_yaml(RULE), events).alerts()
    assert alert.status == "resolved"
