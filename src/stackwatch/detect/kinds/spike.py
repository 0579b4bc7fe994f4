"""``spike``: the rate of matching events for a key in the current window against that key's
own learned baseline (ElastAlert2's ``spike`` idea, with a baseline learned over many windows
instead of one reference window).

Time is cut into windows of ``window`` seconds (aligned on the epoch, so every key shares the
same boundaries). Per key we keep the count of the current window and a baseline: the mean of
the counts of its past windows, empty ones included, which becomes an exponentially weighted
mean once ``baseline`` (default 7d) worth of windows has been seen, so old habits fade.

* **up**: the current window's count reaches ``min_count`` and exceeds ``spike_height`` times
  the baseline. Checked on every event, so it fires while the burst is under way (the repeats
  of one window fold into one alert).
* **down**: a window closes with fewer than baseline / ``spike_height`` events while the
  baseline is at least ``min_count`` (a busy key falls quiet). Checked when the key's next
  event arrives and on the clock (time-driven), once per quiet episode.

Learning: a key first seen less than ``learning`` ago (default 1d) has no baseline yet and does
not fire on the ratio; ``learning_threshold`` (optional) is an absolute count that fires even
then, so a brand-new project that launches fifty instances in its first hour is still caught.
A key untouched for four times ``baseline`` is forgotten (it learns again), and keys are capped
by the rule's ``max_keys`` like every other kind: memory is one small record per key. Evidence
(the records behind a firing) is kept only for keys whose current window is busy enough to
matter (half the count that could fire), in a side table of at most ``EVIDENCE_KEYS`` keys:
a key's record outlives its windows by weeks, and must not hold raw lines that long.

Restarts: ``snapshot`` / ``restore`` carry the per-key records (not the evidence) across a
restart of the live service (pipeline/baselines.py writes them to ``state_dir``), so a restart
does not put every key back into its learning day. A snapshot names the rule's window,
baseline and group_by: one taken under other parameters is refused (its numbers would mean
something else) and the rule learns again.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Any, Final

from stackwatch.core.alert import Evidence
from stackwatch.core.errors import RuleError
from stackwatch.core.event import Event
from stackwatch.detect.kinds.base import (
    Detector,
    Firing,
    KindContext,
    as_key,
    duration_param,
    int_param,
    require_window,
    state_key_func,
)
from stackwatch.detect.model import Rule
from stackwatch.detect.state import LAST, CompactState, StateStats, pushed
from stackwatch.detect.yaml_locations import LocDict

FIELDS = ("spike_height", "direction", "min_count", "baseline", "learning", "learning_threshold")
DIRECTIONS: Final = ("up", "down", "both")
FORGET_AFTER: Final = 4
"""A key silent for this many ``baseline`` periods is forgotten."""
EVIDENCE_KEYS: Final = 4096
"""Most keys holding evidence at once (the busiest current windows; oldest dropped first)."""


@dataclass(frozen=True)
class Params:
    spike_height: float = 3.0
    direction: str = "up"
    min_count: int = 10
    baseline: float = 7 * 86400.0
    learning: float = 86400.0
    learning_threshold: int | None = None


def parse_params(doc: LocDict, file: str) -> Params:
    height = doc.get("spike_height", 3.0)
    if isinstance(height, bool) or not isinstance(height, int | float) or height <= 1:
        raise RuleError("spike_height must be a number > 1 (how many times the baseline)", file,
                        doc.key_line("spike_height"), "spike_height")
    direction = doc.get("direction", "up")
    if direction not in DIRECTIONS:
        raise RuleError(f"direction must be one of {', '.join(DIRECTIONS)}", file, doc.key_line("direction"),
                        "direction")
    learning_threshold = (int_param(doc, "learning_threshold", file) if "learning_threshold" in doc
                          else None)
    return Params(float(height), direction, int_param(doc, "min_count", file, default=10),
                  duration_param(doc, "baseline", file, default=7 * 86400.0),
                  duration_param(doc, "learning", file, default=86400.0), learning_threshold)


# Record layout (a list, see state.CompactState):
# [mark, last_use, key, window index, count in it, baseline, windows seen, first seen, quiet]
# quiet: a down firing was raised and the key has not been busy again since.
_WINDOW, _COUNT, _BASE, _SEEN, _FIRST, _QUIET = 3, 4, 5, 6, 7, 8
_SNAPSHOT_ROW: Final = 8
"""A snapshot row: [last_use, key, window index, count, baseline, windows seen, first seen, quiet]."""


class SpikeDetector(Detector):
    def __init__(self, rule: Rule, ctx: KindContext) -> None:
        super().__init__(rule, ctx)
        require_window(rule)
        self.params: Params = rule.params if isinstance(rule.params, Params) else Params()
        if self.params.baseline < rule.window:
            raise RuleError("baseline must be at least one window", rule.source or None, rule.line or None,
                            "baseline")
        self.window = rule.window
        self.width = len(rule.group_by)
        self.state_key = state_key_func(rule.group_by)
        self.state = CompactState(rule.max_keys, FORGET_AFTER * self.params.baseline)
        # weight of a new window once the baseline is warm: an EWMA whose memory is ``baseline``
        self.alpha = min(1.0, rule.window / self.params.baseline)
        self.up = self.params.direction in ("up", "both")
        self.down = self.params.direction in ("down", "both")
        self.time_driven = self.down
        self.heap: list[tuple[float, int, Any]] = []  # (window end, window index, key): down checks
        # key -> (window index, evidence of that window), for busy windows only (see the docstring)
        self.evidence: dict[Any, tuple[int, tuple[Evidence, ...]]] = {}
        firing_count = min(self.params.min_count, self.params.learning_threshold or self.params.min_count)
        self.evidence_from = max(1, firing_count // 2)

    # ------------------------------------------------------------------ events

    def on_event(self, event: Event, ts: float) -> Firing | None:
        key = self.state_key(event)
        index = int(ts // self.window)
        rec = self.state.data.get(key)
        dropped: Firing | None = None
        if rec is None:
            rec = [ts, ts, key, index, 0, 0.0, 0, ts, False]
            self.state.add(key, rec)
        else:
            rec[LAST] = ts
            if index > rec[_WINDOW]:
                dropped = self._close(rec, index, ts)
        rec[_COUNT] += 1
        if rec[_COUNT] >= self.evidence_from:
            self._keep(key, index, event)
        if self.down and rec[_COUNT] == 1 and rec[_BASE] >= self.params.min_count:
            heapq.heappush(self.heap, ((index + 1) * self.window, index, key))
        self.state.tick(ts)
        if self.up:
            firing = self._check_up(rec, ts, event)
            if firing is not None:
                return firing
        return dropped

    def _check_up(self, rec: list[Any], ts: float, event: Event) -> Firing | None:
        params, count, baseline = self.params, rec[_COUNT], rec[_BASE]
        learning = ts - rec[_FIRST] < params.learning
        if learning:
            if params.learning_threshold is None or count < params.learning_threshold:
                return None
        elif count < params.min_count or count <= params.spike_height * baseline:
            return None
        return Firing(as_key(rec[2], self.width), ts, event, count=count, evidence=self._evidence(rec),
                      details=self._details("up", count, baseline, learning))

    def _keep(self, key: Any, index: int, event: Event) -> None:
        held = self.evidence.get(key)
        if held is None or held[0] != index:
            held = (index, ())
            self.evidence.pop(key, None)  # re-inserted last: the table drops the oldest first
            if len(self.evidence) >= EVIDENCE_KEYS:
                del self.evidence[next(iter(self.evidence))]
        self.evidence[key] = (index, pushed(held[1], event))

    def _evidence(self, rec: list[Any]) -> list[Evidence]:
        held = self.evidence.get(rec[2])
        return list(held[1]) if held is not None and held[0] == rec[_WINDOW] else []

    # ------------------------------------------------------------------ windows closing

    def _close(self, rec: list[Any], index: int, ts: float) -> Firing | None:
        """Fold the key's finished windows (up to ``index``, excluded) into its baseline; a
        down firing when the first of them, or the empty one after it, fell below it."""
        params = self.params
        closed, count, before = rec[_WINDOW], rec[_COUNT], rec[_BASE]
        empty = index - closed - 1  # windows with no event between the last one and now
        firing = None
        if (self.down and not rec[_QUIET] and ts - rec[_FIRST] >= params.learning
                and before >= params.min_count and count < before / params.spike_height):
            firing = self._down(rec, (closed + 1) * self.window, count, before)
        self._learn(rec, count)
        if empty > 0:
            after = rec[_BASE]
            if (firing is None and self.down and not rec[_QUIET] and after >= params.min_count
                    and ts - rec[_FIRST] >= params.learning):
                firing = self._down(rec, (closed + 2) * self.window, 0, after)
            self._learn_empty(rec, empty)
        if count >= before / params.spike_height:
            rec[_QUIET] = firing is not None  # busy again: a later drop fires anew
        rec[_WINDOW], rec[_COUNT] = index, 0
        self.evidence.pop(rec[2], None)
        return firing

    def _learn(self, rec: list[Any], count: int) -> None:
        rec[_SEEN] += 1
        weight = max(self.alpha, 1.0 / rec[_SEEN])  # a plain mean until the baseline is warm
        rec[_BASE] += weight * (count - rec[_BASE])

    def _learn_empty(self, rec: list[Any], empty: int) -> None:
        # empty windows while warming up: one step each (a mean), then closed form
        while empty > 0 and 1.0 / (rec[_SEEN] + 1) > self.alpha:
            self._learn(rec, 0)
            empty -= 1
        if empty > 0:
            rec[_SEEN] += empty
            rec[_BASE] *= math.pow(1.0 - self.alpha, empty)

    def _down(self, rec: list[Any], end: float, count: int, baseline: float) -> Firing:
        rec[_QUIET] = True
        return Firing(as_key(rec[2], self.width), end, None, count=count, evidence=self._evidence(rec),
                      details=self._details("down", count, baseline, False),
                      fields=dict(zip(self.rule.group_by, _texts(rec[2], self.width), strict=True)))

    def on_tick(self, now: float) -> list[Firing]:
        out: list[Firing] = []
        heap, data = self.heap, self.state.data
        while heap and heap[0][0] <= now:
            _, index, key = heapq.heappop(heap)
            rec = data.get(key)
            if rec is None or rec[_WINDOW] != index:
                continue  # forgotten, or already moved on (its event closed the window)
            firing = self._close(rec, int(now // self.window), now)
            if firing is not None:
                out.append(firing)
            elif rec[_BASE] >= self.params.min_count and not rec[_QUIET]:
                # still busy on average: check the window now open when it ends
                heapq.heappush(heap, ((rec[_WINDOW] + 1) * self.window, rec[_WINDOW], key))
        return out

    def _details(self, direction: str, count: int, baseline: float, learning: bool) -> dict[str, Any]:
        ratio = count / baseline if baseline > 0 else None
        details: dict[str, Any] = {"direction": direction, "window": self.window,
                                   "baseline": round(baseline, 2),
                                   "ratio": round(ratio, 1) if ratio is not None else None,
                                   "spike_height": self.params.spike_height}
        if learning:
            details["learning"] = True
        return details

    def stats(self) -> StateStats:
        return self.state.current_stats()

    # ------------------------------------------------------------------ restarts

    def shape(self) -> dict[str, Any]:
        """What a snapshot's numbers depend on: restored only under the same values."""
        return {"window": self.window, "baseline": self.params.baseline, "group_by": list(self.rule.group_by)}

    def snapshot(self) -> dict[str, Any]:
        """The per-key records as plain data, evidence left out, in no order: ``ordered`` puts
        them least recently used first. Only the copy is taken here, on the thread that runs
        the detector (the live service's loop: ~0.2 us a key); sorting and encoding them can
        then run in another thread. A row is the record past its mark (``_SNAPSHOT_ROW``
        values, scalars and the key: a string or a tuple, which JSON writes as a list)."""
        rows = [rec[1:] for rec in self.state.data.values()]
        return {**self.shape(), "evicted": self.state.stats.evicted, "keys": rows}

    def restore(self, doc: Any, not_before: float = 0.0) -> int:
        """Take back the records of ``snapshot`` (the detector is fresh); returns how many.
        Raises ValueError when ``doc`` is not a snapshot of this rule's shape. ``not_before``
        (the restart's time): the first down check of a restored key waits one window past it,
        so the records queued while the service was down (RabbitMQ keeps them) arrive before
        the wall clock can call a busy key quiet."""
        shape = self.shape()
        if not isinstance(doc, dict) or {k: doc.get(k) for k in shape} != shape:
            raise ValueError("taken under another window, baseline or group_by")
        rows = doc.get("keys")
        if not isinstance(rows, list):
            raise ValueError("no list of keys")
        taken: list[list[Any]] = []
        for row in rows[-self.state.max_keys:]:  # the most recently used, if the cap shrank
            if not isinstance(row, list) or len(row) != _SNAPSHOT_ROW:
                raise ValueError("a malformed key record")
            key = _restored_key(row[1], self.width)
            last, _, index, count, base, seen, first, quiet = row
            if not (_number(last) and _number(base) and _number(first) and isinstance(index, int)
                    and isinstance(count, int) and isinstance(seen, int) and isinstance(quiet, bool)):
                raise ValueError("a malformed key record")
            taken.append([float(last), float(last), key, index, count, float(base), seen, float(first),
                          quiet])
        for rec in taken:
            self.state.add(rec[2], rec)
            if self.down and rec[_BASE] >= self.params.min_count and not rec[_QUIET]:
                due = max((rec[_WINDOW] + 1) * self.window, not_before + self.window)
                heapq.heappush(self.heap, (due, rec[_WINDOW], rec[2]))
        evicted = doc.get("evicted")
        if isinstance(evicted, int):
            self.state.stats.evicted += evicted
        return len(taken)


def ordered(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A ``SpikeDetector.snapshot`` with its rows least recently used first (restore keeps the
    newest when its cap shrank); sorts the snapshot's own list."""
    snapshot["keys"].sort(key=lambda row: row[0])  # a Python key: another thread gets turns
    return snapshot


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _restored_key(value: Any, width: int) -> Any:
    """A state key from its JSON form (see state_key_func: a str for one field, else a tuple)."""
    if width == 1 and (value is None or isinstance(value, str)):
        return value
    if width != 1 and isinstance(value, list) and len(value) == width and all(
            v is None or isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError("a key of another shape")


def _texts(state_key: Any, width: int) -> tuple[str, ...]:
    return (state_key,) if width == 1 else tuple(state_key)
