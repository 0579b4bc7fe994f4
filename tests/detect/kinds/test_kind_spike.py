"""spike: the current window's count against the key's own learned baseline."""

from __future__ import annotations

import pytest
from detect_helpers import ev, rule_from_yaml, run

from stackwatch.core.errors import RuleError

HOUR = 3600.0
RULE = """
kind: spike
condition: {action: compute.instance.create.end}
group_by: [initiator.project]
window: 1h
spike_height: 4
min_count: 10
learning: 1d
summary: "{count} instances by {initiator.project} in {window} (baseline {baseline}, x{ratio})"
"""


def create(at: float, project: str = "p1") -> object:
    return ev(at, service="nova-compute", kind="notification", action="compute.instance.create.end",
              initiator={"project": project})


def steady(hours: int, per_hour: int, project: str = "p1", start: float = 0.0) -> list[object]:
    """``per_hour`` creations spread evenly over each of ``hours`` hours."""
    step = HOUR / per_hour
    return [create(start + h * HOUR + i * step + 1, project) for h in range(hours) for i in range(per_hour)]


def burst(at: float, count: int, project: str = "p1") -> list[object]:
    return [create(at + i * 20, project) for i in range(count)]


def test_a_burst_far_above_the_learned_baseline_fires() -> None:
    events = steady(30, 2) + burst(30 * HOUR + 60, 12)
    [alert] = run(rule_from_yaml(RULE), events).alerts()
    assert alert.project == "p1"
    assert alert.details["direction"] == "up"
    assert alert.details["baseline"] == pytest.approx(2.0, abs=0.1)
    assert alert.summary == "12 instances by p1 in 1h (baseline 2.0, x6.0)"  # the latest firing
    assert alert.evidence  # the burst's records (from half of min_count on)


def test_the_burst_folds_into_one_alert() -> None:
    events = steady(30, 2) + burst(30 * HOUR + 60, 40)
    [alert] = run(rule_from_yaml(RULE), events).alerts()
    assert alert.details["events"] == 40


def test_a_steady_ci_project_creating_200_a_day_raises_nothing() -> None:
    # 200 instances a day, every day for a week: about 8.3 an hour, never 4x its own rate
    events = steady(24 * 7, 200 // 24 + 1, project="ci")
    assert run(rule_from_yaml(RULE), events).alerts() == []


def test_below_min_count_never_fires_even_from_a_zero_baseline() -> None:
    events = [create(0), *burst(30 * HOUR, 9)]
    assert run(rule_from_yaml(RULE), events).alerts() == []


def test_from_a_zero_baseline_min_count_is_enough() -> None:
    events = [create(0), *burst(30 * HOUR, 10)]
    [alert] = run(rule_from_yaml(RULE), events).alerts()
    assert alert.details["ratio"] is not None  # a tiny baseline, not zero: the first window counted


def test_no_firing_while_a_key_is_learning() -> None:
    # the first day of a project: no baseline yet, so a busy first hour is not a spike
    events = burst(0, 50)
    assert run(rule_from_yaml(RULE), events).alerts() == []


def test_learning_threshold_fires_during_learning() -> None:
    rule = rule_from_yaml(RULE + "learning_threshold: 30\n")
    [alert] = run(rule, burst(0, 50)).alerts()
    assert alert.details["learning"] is True
    assert alert.details["events"] == 50


def test_keys_have_their_own_baselines() -> None:
    events = sorted(steady(30, 10, "busy") + steady(30, 1, "quiet") + burst(30 * HOUR + 60, 12, "busy"),
                    key=lambda e: e.time)
    assert run(rule_from_yaml(RULE), events).alerts() == []


def test_down_fires_when_a_busy_key_falls_quiet() -> None:
    rule = rule_from_yaml(RULE.replace("kind: spike", "kind: spike\ndirection: down"))
    events = [*steady(30, 20), create(40 * HOUR)]
    [alert] = run(rule, events).alerts()
    assert alert.details["direction"] == "down"
    assert alert.count == 1  # one episode, however many empty windows follow
    assert alert.project == "p1"


def test_down_fires_on_the_clock_with_no_further_event() -> None:
    rule = rule_from_yaml(RULE.replace("kind: spike", "kind: spike\ndirection: both"))
    engine = run(rule, [*steady(30, 20), ev(33 * HOUR, action="other")])
    [alert] = engine.alerts()
    assert alert.details["direction"] == "down"


def test_up_only_rule_ignores_a_drop() -> None:
    assert run(rule_from_yaml(RULE), [*steady(30, 20), create(40 * HOUR)]).alerts() == []


@pytest.mark.parametrize(("line", "message"), [
    ("spike_height: 1", "spike_height must be a number > 1"),
    ("direction: sideways", "direction must be one of up, down, both"),
    ("min_count: 0", "min_count must be an integer >= 1"),
])
def test_bad_parameters_are_load_errors(line: str, message: str) -> None:
    base = "kind: spike\ncondition: {action: x}\nwindow: 1h\n"
    with pytest.raises(RuleError, match=message):
        rule_from_yaml(base + line + "\n")


def test_spike_needs_a_window() -> None:
    with pytest.raises(RuleError, match="needs a window"):
        rule_from_yaml(RULE.replace("window: 1h\n", ""))


def test_evidence_is_held_for_a_bounded_number_of_busy_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    from stackwatch.detect.engine import Engine
    from stackwatch.detect.kinds import spike

    monkeypatch.setattr(spike, "EVIDENCE_KEYS", 10)
    engine = Engine([rule_from_yaml(RULE)])
    for event in sorted((e for k in range(50) for e in burst(0, 6, project=f"p{k}")), key=lambda e: e.time):
        engine.process(event)
    [slot] = engine._slots
    assert len(slot.detector.evidence) == 10
    assert len(slot.detector.state) == 50
