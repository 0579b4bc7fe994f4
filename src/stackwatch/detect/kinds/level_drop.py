"""``level_drop``: a source whose INFO/DEBUG volume stops while it keeps writing
WARNING/ERROR: the classic sign of a log level lowered to hide tracks.

A source (default key: host + service) counts once it wrote ``min_low`` debug/info
events. It fires when no debug/info event came for ``window`` while at least
``min_high`` warning-or-worse events came since the last one. Checked both when a
warning arrives and on ticks (the warnings may all come early in the window). Resolves
when debug/info lines return.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any, Final

from stackwatch.core.event import SEVERITY_RANK, Event
from stackwatch.detect.kinds.base import (
    SOURCE_GROUP,
    Firing,
    KindContext,
    SourceDetector,
    as_key,
    int_param,
)
from stackwatch.detect.model import Rule
from stackwatch.detect.state import LAST, StateStats, evidence_of, pushed
from stackwatch.detect.yaml_locations import LocDict

FIELDS = ("min_low", "min_high")
DEFAULT_GROUP = SOURCE_GROUP
LOW: Final = frozenset({"debug", "info"})
HIGH_RANK: Final = SEVERITY_RANK["warning"]


@dataclass(frozen=True)
class Params:
    min_low: int = 20
    min_high: int = 3


def parse_params(doc: LocDict, file: str) -> Params:
    return Params(int_param(doc, "min_low", file, default=20), int_param(doc, "min_high", file, default=3))


# Record layout (a list, see state.CompactState):
# [mark, last_use, key, low_count, last_low, high_since_low, alerted, queued, evidence]
# evidence: a tuple of the warnings since the last debug/info line (at most EVIDENCE_PER_KEY).
_LOW_COUNT, _LAST_LOW, _HIGH, _ALERTED, _QUEUED, _EVIDENCE = 3, 4, 5, 6, 7, 8


class LevelDropDetector(SourceDetector):
    params_type = Params

    def __init__(self, rule: Rule, ctx: KindContext) -> None:
        super().__init__(rule, ctx)

    def on_event(self, event: Event, ts: float) -> Firing | None:
        """Per event: one dict lookup and a few stores into the source's record."""
        key = self.state_key(event)
        state = self.state
        rec = state.data.get(key)
        if rec is None:
            rec = [ts, ts, key, 0, 0.0, 0, False, False, ()]
            state.add(key, rec)
        else:
            rec[LAST] = ts
        severity = event.severity
        if severity in LOW:
            out = None
            if rec[_ALERTED]:
                firing_key = as_key(key, self.width)
                out = Firing(firing_key, ts, event, resolve=True, evidence=[evidence_of(event)],
                             fields=dict(zip(self.group, firing_key, strict=True)))
                rec[_ALERTED] = False
            rec[_LOW_COUNT] += 1
            if ts > rec[_LAST_LOW]:
                rec[_LAST_LOW] = ts
            rec[_HIGH] = 0
            rec[_EVIDENCE] = ()
            if not rec[_QUEUED]:
                rec[_QUEUED] = True
                heapq.heappush(self.heap, (rec[_LAST_LOW] + self.window, key))
            return out
        if SEVERITY_RANK.get(severity, 0) >= HIGH_RANK:
            rec[_HIGH] += 1
            rec[_EVIDENCE] = pushed(rec[_EVIDENCE], event)
            return self._check(key, rec, ts, event)
        return None

    def _check(self, key: Any, rec: list[Any], now: float, event: Event | None) -> Firing | None:
        params = self.params
        if (rec[_ALERTED] or rec[_LOW_COUNT] < params.min_low or rec[_HIGH] < params.min_high
                or now - rec[_LAST_LOW] < self.window):
            return None
        rec[_ALERTED] = True
        firing_key = as_key(key, self.width)
        return Firing(firing_key, now, event, count=rec[_HIGH], evidence=list(rec[_EVIDENCE]),
                      fields=dict(zip(self.group, firing_key, strict=True)),
                      details={"quiet_for": now - rec[_LAST_LOW], "high_since": rec[_HIGH]})

    def on_tick(self, now: float) -> list[Firing]:
        out: list[Firing] = []
        heap = self.heap
        data = self.state.data
        while heap and heap[0][0] <= now:
            _, key = heapq.heappop(heap)
            rec = data.get(key)
            if rec is None:
                continue
            rec[_QUEUED] = False
            if now - rec[_LAST_LOW] < self.window:
                rec[_QUEUED] = True
                heapq.heappush(heap, (rec[_LAST_LOW] + self.window, key))
                continue
            firing = self._check(key, rec, now, None)
            if firing is not None:
                out.append(firing)
        return out

    def stats(self) -> StateStats:
        return self.state.current_stats()
