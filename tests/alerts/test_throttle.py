"""Throttling: new and resolved always go out; updates at most every interval; acknowledged
alerts' updates are held back; a per-sink cap per minute."""

from __future__ import annotations

from stackwatch.alerts.throttle import Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_updates_are_limited_per_interval() -> None:
    clock = Clock()
    throttle = Throttle(600, 0, clock)
    assert throttle.allow("s", "r", "k", "new")
    assert not throttle.allow("s", "r", "k", "update")
    clock.now += 601
    assert throttle.allow("s", "r", "k", "update")
    assert throttle.allow("s", "r", "k", "resolved")


def test_acknowledged_alerts_are_not_repeated() -> None:
    clock = Clock()
    throttle = Throttle(1, 0, clock)
    throttle.allow("s", "r", "k", "new")
    clock.now += 10
    assert not throttle.allow("s", "r", "k", "update", "acknowledged")
    assert throttle.allow("s", "r", "k", "resolved", "acknowledged")


def test_sinks_are_throttled_separately_and_capped_per_minute() -> None:
    clock = Clock()
    throttle = Throttle(600, 3, clock)
    assert [throttle.allow("a", "r", str(i), "new") for i in range(5)] == [True, True, True, False, False]
    assert throttle.allow("b", "r", "0", "new")
    clock.now += 60
    assert throttle.allow("a", "r", "9", "new")
