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

from stackwatch.core.errors import RuleError
from stackwatch.core.event import Event
from stackwatch.detect.kinds.base import (
    Detector,
    Firing,
    KindContext,
    duration_param,
    key_func,
    require_window,
)
from stackwatch.detect.locyaml import LocDict, LocList
from stackwatch.detect.model import Rule
from stackwatch.detect.state import Key, KeyedState, StateStats, evidence_of

FIELDS = ("expected", "backoff", "max_backoff")
DEFAULT_GROUP = ("host", "service")


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


@dataclass(slots=True)
class _Source:
    last: float  # last time the source spoke (engine start for declared ones)
    spoke: bool = False
    alerts: int = 0  # alerts raised in the current silence (0 = not silent)
    next_alert: float = 0.0
    queued: bool = False
    last_event: Event | None = None  # what it wrote last: the alert's evidence


class AbsenceDetector(Detector):
    time_driven = True

    def __init__(self, rule: Rule, ctx: KindContext) -> None:
        super().__init__(rule, ctx)
        require_window(rule)
        self.group = rule.group_by or DEFAULT_GROUP
        self.key_of = key_func(self.group)
        self.params = rule.params if isinstance(rule.params, Params) else Params()
        self.window = rule.window
        self.state: KeyedState[_Source] = KeyedState(rule.max_keys, 0.0)
        self.heap: list[tuple[float, Key]] = []
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
            key = tuple(item[name] for name in self.group)
            if key not in self.state:
                source = self.state.get(key, start, lambda: _Source(start))
                self._queue(key, source, start + self.window)

    def _queue(self, key: Key, source: _Source, deadline: float) -> None:
        if not source.queued:
            source.queued = True
            heapq.heappush(self.heap, (deadline, key))

    def on_event(self, event: Event, ts: float) -> list[Firing]:
        if not self._declared_done:
            self._declare(self.ctx.started if self.ctx.started is not None else ts)
        key = self.key_of(event)
        source = self.state.get(key, ts, lambda: _Source(ts))
        out: list[Firing] = []
        if source.alerts:
            out.append(Firing(key, ts, event, resolve=True, evidence=[evidence_of(event)],
                              fields=dict(zip(self.group, key, strict=True)),
                              details={"silent_for": ts - source.last}))
            source.alerts = 0
        source.last = max(source.last, ts)
        source.spoke = True
        source.last_event = event
        self._queue(key, source, source.last + self.window)
        return out

    def on_tick(self, now: float) -> list[Firing]:
        if not self._declared_done:
            if self.ctx.started is None:
                return []
            self._declare(self.ctx.started)
        out: list[Firing] = []
        heap = self.heap
        while heap and heap[0][0] <= now:
            _, key = heapq.heappop(heap)
            source = self.state.peek(key)
            if source is None:  # evicted by the LRU cap
                continue
            source.queued = False
            silent_for = now - source.last
            if silent_for < self.window:
                self._queue(key, source, source.last + self.window)
                continue
            if source.alerts == 0 or now >= source.next_alert:
                source.alerts += 1
                delay = min(self.window * self.params.backoff ** source.alerts, self.params.max_backoff)
                source.next_alert = now + delay
                last = source.last_event
                out.append(Firing(key, now, None, continuing=source.alerts > 1,
                                  evidence=[evidence_of(last)] if last is not None else [],
                                  fields=dict(zip(self.group, key, strict=True)),
                                  details={"silent_for": silent_for, "never_seen": not source.spoke,
                                           "last_seen": datetime.fromtimestamp(source.last, UTC).isoformat(),
                                           "realerts": source.alerts - 1}))
            self._queue(key, source, source.next_alert)
        return out

    def stats(self) -> StateStats:
        self.state.stats.keys = len(self.state)
        return self.state.stats
