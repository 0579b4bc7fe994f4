"""``threshold``: at least N matching events within ``window`` for one key.

Per key we keep at most N timestamps (the N most recent), so the check is exact and the
memory per key is bounded by N, not by the attack's volume.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackwatch.core.alert import Evidence
from stackwatch.core.event import Event
from stackwatch.detect.kinds.base import Detector, Firing, KindContext, int_param, require_window
from stackwatch.detect.locyaml import LocDict
from stackwatch.detect.model import Rule
from stackwatch.detect.state import KeyedState, StateStats, push_evidence

FIELDS = ("threshold",)


@dataclass(frozen=True)
class Params:
    threshold: int


def parse_params(doc: LocDict, file: str) -> Params:
    return Params(int_param(doc, "threshold", file))


class _Window:
    """Per key: the latest <= N times, events since the window opened, a few evidence records.
    A plain slotted class: it is created once per new key, so construction cost matters."""

    __slots__ = ("evidence", "times", "total")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.total = 0
        self.evidence: list[Evidence] = []


class ThresholdDetector(Detector):
    def __init__(self, rule: Rule, ctx: KindContext) -> None:
        super().__init__(rule, ctx)
        require_window(rule)
        self.n = (rule.params or Params(1)).threshold
        self.window = rule.window
        self.state: KeyedState[_Window] = KeyedState(rule.max_keys, rule.window)
        self._seen = 0

    def on_event(self, event: Event, ts: float) -> list[Firing]:
        key = self.key_of(event)
        win = self.state.get(key, ts, _Window)
        times = win.times
        limit = ts - self.window
        if times and times[-1] < limit:  # the whole window passed: start afresh
            times.clear()
            win.total = 0
            win.evidence.clear()
        times.append(ts)
        win.total += 1
        push_evidence(win.evidence, event)
        if len(times) > self.n:
            del times[0]
        self._seen += 1
        if self._seen % 4096 == 0:
            self.state.sweep(ts)
        if len(times) >= self.n and times[0] >= limit:
            return [Firing(key, ts, event, count=win.total, evidence=list(win.evidence),
                           details={"threshold": self.n, "window": self.window})]
        return []

    def stats(self) -> StateStats:
        self.state.stats.keys = len(self.state)
        return self.state.stats
