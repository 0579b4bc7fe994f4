"""``absence``: a key (by default a source: host + service) with no matching event for
``window``. Time-driven: the engine calls ``on_tick`` on event time while replaying and
on the wall clock when live, so silence is found even when nothing arrives at all.

Sources are learned from traffic, and declared ones (the rule's ``expected`` list and
the engine's ``expected_sources``) are tracked from the engine's start, so a source that
was expected but never spoke is reported too. While the silence lasts the alert is
repeated with exponential backoff (window, 2x, 4x... capped at ``max_backoff``), folded
into the same alert; when the source speaks again a resolution is emitted.

Deadlines sit in a heap (one entry per key), so a tick costs O(expired keys), not O(keys).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stackwatch.core.errors import RuleError
from stackwatch.core.event import Event
from stackwatch.detect.kinds.base import (
    SOURCE_GROUP,
    Firing,
    KindContext,
    SourceDetector,
    as_key,
    duration_param,
    to_state_key,
)
from stackwatch.detect.model import Rule
from stackwatch.detect.state import LAST, StateStats, evidence_of
from stackwatch.detect.yaml_locations import LocDict, LocList

FIELDS = ("expected", "backoff", "max_backoff")
DEFAULT_GROUP = SOURCE_GROUP


@dataclass(frozen=True)
class Params:
    expected: tuple[dict[str, str], ...] = ()
    backoff: float = 2.0
    max_backoff: float = 86400.0


def parse_params(doc: LocDict, file: str) -> Params:
    expected = doc.get("expected", [])
    line = doc.key_line("expected")
    if not isinstance(expected, list) or not all(isinstance(item, dict) for item in expected):
        raise RuleError("expected must be a list of mappings {field: value}", file, line, "expected")
    group = tuple(doc.get("group_by") or DEFAULT_GROUP)
    for index, item in enumerate(expected):
        if set(item) != set(group):
            raise RuleError(f"an expected source gives exactly the group_by fields {list(group)}",
                            file, expected.item_line(index) if isinstance(expected, LocList) else line,
                            "expected")
    backoff = doc.get("backoff", 2.0)
    if isinstance(backoff, bool) or not isinstance(backoff, int | float) or backoff < 1:
        raise RuleError("backoff must be a number >= 1", file, doc.key_line("backoff"), "backoff")
    return Params(tuple({k: str(v) for k, v in item.items()} for item in expected), float(backoff),
                  duration_param(doc, "max_backoff", file, default=86400.0))


# Record layout (a list, see state.CompactState):
# [mark, last_use, key, spoke_at, spoke, alerts, next_alert, queued, last_event]
# spoke_at: last time the source spoke (engine start for declared ones); alerts: alerts
# raised in the current silence (0 = not silent); last_event: the alert's evidence.
_SPOKE_AT, _SPOKE, _ALERTS, _NEXT_ALERT, _QUEUED, _EVENT = 3, 4, 5, 6, 7, 8


class AbsenceDetector(SourceDetector):
    params_type = Params

    def __init__(self, rule: Rule, ctx: KindContext) -> None:
        super().__init__(rule, ctx)
        self._declared_done = False

    def _declare(self, start: float) -> None:
        """Track declared sources from the engine's start (once)."""
        self._declared_done = True
        wanted = set(self.group)
        # The engine's declared sources go to every absence rule keyed the same way, but a
        # rule whose index hints exclude a source (say, the monitor's own heartbeat rule and
        # a declared nova-compute) can never hear from it and would call it silent forever.
        index = self.rule.index
        declared = [d for d in self.ctx.expected_sources if set(d) == wanted
                    and all(d[dim] in allowed for dim, allowed in index.items() if dim in d)]
        declared += list(self.params.expected)
        for item in declared:
            key = to_state_key(tuple(item[name] for name in self.group))
            if key not in self.state:
                rec = [start, start, key, start, False, 0, 0.0, False, None]
                self.state.add(key, rec)
                self._queue(key, rec, start + self.window)

    def _declared_start(self, ts: float) -> float:
        ctx = self.ctx
        if ctx.declared_from is not None:
            return ctx.declared_from
        return ctx.started if ctx.started is not None else ts

    def _queue(self, key: Any, rec: list[Any], deadline: float) -> None:
        if not rec[_QUEUED]:
            rec[_QUEUED] = True
            heapq.heappush(self.heap, (deadline, key))

    def on_event(self, event: Event, ts: float) -> Firing | None:
        """Per event: one dict lookup and a few stores into the source's record."""
        if not self._declared_done:
            self._declare(self._declared_start(ts))
        key = self.state_key(event)
        state = self.state
        rec = state.data.get(key)
        if rec is None:
            rec = [ts, ts, key, ts, True, 0, 0.0, True, event]
            state.add(key, rec)
            heapq.heappush(self.heap, (ts + self.window, key))
            return None
        rec[LAST] = ts
        out = None
        if rec[_ALERTS]:
            firing_key = as_key(key, self.width)
            out = Firing(firing_key, ts, event, resolve=True, evidence=[evidence_of(event)],
                         fields=dict(zip(self.group, firing_key, strict=True)),
                         details={"silent_for": ts - rec[_SPOKE_AT]})
            rec[_ALERTS] = 0
        if ts > rec[_SPOKE_AT]:
            rec[_SPOKE_AT] = ts
        rec[_SPOKE] = True
        rec[_EVENT] = event
        if not rec[_QUEUED]:
            rec[_QUEUED] = True
            heapq.heappush(self.heap, (rec[_SPOKE_AT] + self.window, key))
        return out

    def on_tick(self, now: float) -> list[Firing]:
        if not self._declared_done:
            if self.ctx.started is None and self.ctx.declared_from is None:
                return []
            self._declare(self._declared_start(now))
        out: list[Firing] = []
        heap = self.heap
        data = self.state.data
        while heap and heap[0][0] <= now:
            _, key = heapq.heappop(heap)
            rec = data.get(key)
            if rec is None:  # evicted by the LRU cap
                continue
            rec[_QUEUED] = False
            silent_for = now - rec[_SPOKE_AT]
            if silent_for < self.window:
                self._queue(key, rec, rec[_SPOKE_AT] + self.window)
                continue
            if rec[_ALERTS] == 0 or now >= rec[_NEXT_ALERT]:
                rec[_ALERTS] += 1
                delay = min(self.window * self.params.backoff ** rec[_ALERTS], self.params.max_backoff)
                rec[_NEXT_ALERT] = now + delay
                last = rec[_EVENT]
                last_seen = datetime.fromtimestamp(rec[_SPOKE_AT], UTC).isoformat()
                firing_key = as_key(key, self.width)
                out.append(Firing(firing_key, now, None, continuing=rec[_ALERTS] > 1,
                                  evidence=[evidence_of(last)] if last is not None else [],
                                  fields=dict(zip(self.group, firing_key, strict=True)),
                                  details={"silent_for": silent_for, "never_seen": not rec[_SPOKE],
                                           "last_seen": last_seen,
                                           "realerts": rec[_ALERTS] - 1}))
            self._queue(key, rec, rec[_NEXT_ALERT])
        return out

    def stats(self) -> StateStats:
        return self.state.current_stats()
