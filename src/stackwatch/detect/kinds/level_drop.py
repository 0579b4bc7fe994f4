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
from dataclasses import dataclass, field
from typing import Final

from stackwatch.core.alert import Evidence
from stackwatch.core.event import SEVERITY_RANK, Event
from stackwatch.detect.kinds.base import Detector, Firing, KindContext, int_param, key_func, require_window
from stackwatch.detect.locyaml import LocDict
from stackwatch.detect.model import Rule
from stackwatch.detect.state import Key, KeyedState, StateStats, evidence_of, push_evidence

FIELDS = ("min_low", "min_high")
DEFAULT_GROUP = ("host", "service")
LOW: Final = frozenset({"debug", "info"})
HIGH_RANK: Final = SEVERITY_RANK["warning"]


@dataclass(frozen=True)
class Params:
    min_low: int = 20
    min_high: int = 3


def parse_params(doc: LocDict, file: str) -> Params:
    return Params(int_param(doc, "min_low", file, default=20), int_param(doc, "min_high", file, default=3))


@dataclass(slots=True)
class _Levels:
    low_count: int = 0
    last_low: float = 0.0
    high_since_low: int = 0
    alerted: bool = False
    queued: bool = False
    evidence: list[Evidence] = field(default_factory=list)  # warnings since the last debug/info line


class LevelDropDetector(Detector):
    time_driven = True

    def __init__(self, rule: Rule, ctx: KindContext) -> None:
        super().__init__(rule, ctx)
        require_window(rule)
        self.group = rule.group_by or DEFAULT_GROUP
        self.key_of = key_func(self.group)
        self.params = rule.params if isinstance(rule.params, Params) else Params()
        self.window = rule.window
        self.state: KeyedState[_Levels] = KeyedState(rule.max_keys, 0.0)
        self.heap: list[tuple[float, Key]] = []

    def on_event(self, event: Event, ts: float) -> list[Firing]:
        key = self.key_of(event)
        levels = self.state.get(key, ts, _Levels)
        severity = event.severity
        if severity in LOW:
            out: list[Firing] = []
            if levels.alerted:
                out.append(Firing(key, ts, event, resolve=True, evidence=[evidence_of(event)],
                                  fields=dict(zip(self.group, key, strict=True))))
                levels.alerted = False
            levels.low_count += 1
            levels.last_low = max(levels.last_low, ts)
            levels.high_since_low = 0
            if levels.evidence:
                levels.evidence.clear()
            if not levels.queued:
                levels.queued = True
                heapq.heappush(self.heap, (levels.last_low + self.window, key))
            return out
        if SEVERITY_RANK.get(severity, 0) >= HIGH_RANK:
            levels.high_since_low += 1
            push_evidence(levels.evidence, event)
            firing = self._check(key, levels, ts, event)
            return [firing] if firing is not None else []
        return []

    def _check(self, key: Key, levels: _Levels, now: float, event: Event | None) -> Firing | None:
        params = self.params
        if (levels.alerted or levels.low_count < params.min_low or levels.high_since_low < params.min_high
                or now - levels.last_low < self.window):
            return None
        levels.alerted = True
        return Firing(key, now, event, count=levels.high_since_low, evidence=list(levels.evidence),
                      fields=dict(zip(self.group, key, strict=True)),
                      details={"quiet_for": now - levels.last_low, "high_since": levels.high_since_low})

    def on_tick(self, now: float) -> list[Firing]:
        out: list[Firing] = []
        heap = self.heap
        while heap and heap[0][0] <= now:
            _, key = heapq.heappop(heap)
            levels = self.state.peek(key)
            if levels is None:
                continue
            levels.queued = False
            if now - levels.last_low < self.window:
                levels.queued = True
                heapq.heappush(heap, (levels.last_low + self.window, key))
                continue
            firing = self._check(key, levels, now, None)
            if firing is not None:
                out.append(firing)
        return out

    def stats(self) -> StateStats:
        self.state.stats.keys = len(self.state)
        return self.state.stats
