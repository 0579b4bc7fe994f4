"""``threshold``: at least N matching events within ``window`` for one key.

Per key we keep at most N timestamps (the N most recent), so the check is exact and the
memory per key is bounded by N, not by the attack's volume: one list per key holds them
with the count and the evidence (see ``CompactState``).
"""

from __future__ import annotations

from dataclasses import dataclass

from stackwatch.core.event import Event
from stackwatch.detect.kinds.base import (
    Detector,
    Firing,
    KindContext,
    as_key,
    int_param,
    require_window,
    state_key_func,
)
from stackwatch.detect.model import Rule
from stackwatch.detect.state import LAST, CompactState, StateStats, evidence_of, pushed
from stackwatch.detect.yaml_locations import LocDict

FIELDS = ("threshold",)


@dataclass(frozen=True)
class Params:
    threshold: int


def parse_params(doc: LocDict, file: str) -> Params:
    return Params(int_param(doc, "threshold", file))


# Record layout (a list, see state.CompactState): [mark, last_use, key, total, evidence, *times]
# ``times``: the latest <= N event times; ``total``: events since the window opened;
# ``evidence``: a tuple of at most EVIDENCE_PER_KEY records (first ones and the latest).
_TOTAL, _EVIDENCE, _TIMES = 3, 4, 5


class ThresholdDetector(Detector):
    def __init__(self, rule: Rule, ctx: KindContext) -> None:
        super().__init__(rule, ctx)
        require_window(rule)
        self.n = (rule.params or Params(1)).threshold
        self.window = rule.window
        self.width = len(rule.group_by)
        self.state_key = state_key_func(rule.group_by)
        self.state = CompactState(rule.max_keys, rule.window)
        self._details = {"threshold": self.n, "window": self.window}

    def on_event(self, event: Event, ts: float) -> Firing | None:
        key = self.state_key(event)
        state = self.state
        rec = state.data.get(key)
        limit = ts - self.window
        if rec is None:
            rec = [ts, ts, key, 1, (evidence_of(event),), ts]
            state.add(key, rec)
        else:
            rec[LAST] = ts
            if rec[-1] < limit:  # the whole window passed: start afresh
                del rec[_TIMES:]
                rec[_TOTAL] = 0
                rec[_EVIDENCE] = ()
            rec.append(ts)
            rec[_TOTAL] += 1
            rec[_EVIDENCE] = pushed(rec[_EVIDENCE], event)
            if len(rec) - _TIMES > self.n:
                del rec[_TIMES]
        state.tick(ts)
        if len(rec) - _TIMES >= self.n and rec[_TIMES] >= limit:
            return Firing(as_key(key, self.width), ts, event, count=rec[_TOTAL],
                          evidence=list(rec[_EVIDENCE]), details=dict(self._details))
        return None

    def stats(self) -> StateStats:
        return self.state.current_stats()
