"""``sequence``: steps A then B (then C...) for the same key within ``window``, e.g.
N failed logins then a success from the same IP.

Each step has a condition and a count (default 1). The first step slides: it keeps the
times of its last ``count`` events, so a long run of failures followed by a success
still fires when the last N failures and the success fit in the window. While waiting
for a later step, more first-step events keep sliding the start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stackwatch.core.errors import RuleError
from stackwatch.core.event import Event
from stackwatch.detect.conditions import Compiled, Predicate, combine_any, compile_condition
from stackwatch.detect.kinds.base import Detector, Firing, KindContext, as_key, require_window, state_key_func
from stackwatch.detect.locyaml import LocDict, LocList
from stackwatch.detect.model import Rule
from stackwatch.detect.state import LAST, CompactState, StateStats, pushed

FIELDS = ("steps",)
STEP_FIELDS = ("name", "condition", "count")


@dataclass(frozen=True)
class Step:
    name: str
    predicate: Predicate
    count: int = 1


@dataclass(frozen=True)
class Params:
    steps: tuple[Step, ...]
    condition: Compiled | None = None  # any step's condition: ANDed into the rule's filter


def parse_params(doc: LocDict, file: str) -> Params:
    raw = doc.get("steps")
    line = doc.key_line("steps")
    if not isinstance(raw, list) or len(raw) < 2:
        raise RuleError("'steps' needs a list of at least two steps", file, line, "steps")
    steps, compiled = [], []
    for index, item in enumerate(raw):
        item_line = raw.item_line(index) if isinstance(raw, LocList) else line
        if not isinstance(item, dict):
            raise RuleError("a step is a mapping {name, condition, count}", file, item_line, "steps")
        for key in item:
            if key not in STEP_FIELDS:
                raise RuleError(f"unknown field {key!r} in step (known: {', '.join(STEP_FIELDS)})",
                                file, item.key_line(key) if isinstance(item, LocDict) else item_line,
                                f"steps[{index}]")
        if "condition" not in item:
            raise RuleError("a step needs a condition", file, item_line, f"steps[{index}]")
        cond = compile_condition(item["condition"], file,
                                 item.key_line("condition") if isinstance(item, LocDict) else item_line)
        count = item.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise RuleError("count must be an integer >= 1", file, item_line, f"steps[{index}].count")
        steps.append(Step(str(item.get("name", f"step {index + 1}")), cond.predicate, count))
        compiled.append(cond)
    return Params(tuple(steps), combine_any(compiled))


# Record layout (a list, see state.CompactState):
# [mark, last_use, key, step, count, total, evidence, *first_times]
# step: the step awaited; count: events counted at it (steps after the first); total:
# events behind the sequence; first_times: the first step's latest <= count times.
_STEP, _COUNT, _TOTAL, _EVIDENCE, _TIMES = 3, 4, 5, 6, 7


class SequenceDetector(Detector):
    def __init__(self, rule: Rule, ctx: KindContext) -> None:
        super().__init__(rule, ctx)
        require_window(rule)
        if not isinstance(rule.params, Params):
            raise RuleError("sequence needs steps", rule.source or None, rule.line or None, "steps")
        self.steps = rule.params.steps
        self.window = rule.window
        self.width = len(rule.group_by)
        self.state_key = state_key_func(rule.group_by)
        self.state = CompactState(rule.max_keys, rule.window)
        self._data = self.state.data  # the store's dict (never rebound): one lookup less per event
        self._first = self.steps[0]

    def on_event(self, event: Event, ts: float) -> Firing | None:
        key = self.state_key(event)
        rec = self._data.get(key)
        if rec is None:
            # nothing under way for this key (most events): only the first step can start it
            first = self._first
            if not first.predicate(event):
                return None
            rec = [ts, ts, key, 0, 0, 0, (), ts]
            self.state.add(key, rec)
        else:
            steps = self.steps
            if len(rec) > _TIMES and ts - rec[_TIMES] > self.window:
                self._slide(rec, ts)
            at = rec[_STEP]
            if at > 0 and steps[at].predicate(event):
                rec[LAST] = ts
                rec[_COUNT] += 1
                rec[_TOTAL] += 1
                rec[_EVIDENCE] = pushed(rec[_EVIDENCE], event)
                if rec[_COUNT] >= steps[at].count:
                    rec[_STEP], rec[_COUNT] = at + 1, 0
                    if at + 1 == len(steps):
                        self.state.pop(key)
                        return Firing(as_key(key, self.width), ts, event, count=rec[_TOTAL],
                                      evidence=list(rec[_EVIDENCE]),
                                      details={"window": self.window, "steps": [s.name for s in steps]})
                return None
            first = steps[0]
            if not first.predicate(event):
                return None
            rec[LAST] = ts
            rec.append(ts)
            if len(rec) - _TIMES > first.count:
                del rec[_TIMES]
        rec[_TOTAL] += 1
        rec[_EVIDENCE] = pushed(rec[_EVIDENCE], event)
        if rec[_STEP] == 0 and len(rec) - _TIMES >= first.count:
            rec[_STEP], rec[_COUNT] = 1, 0
        self.state.tick(ts)
        return None

    def _slide(self, rec: list[Any], ts: float) -> None:
        """The oldest first-step events left the window: drop them, back to step 0 if too few."""
        limit = ts - self.window
        while len(rec) > _TIMES and rec[_TIMES] < limit:
            del rec[_TIMES]
        if len(rec) - _TIMES < self.steps[0].count:
            rec[_STEP], rec[_COUNT] = 0, 0
            rec[_TOTAL] = len(rec) - _TIMES
            if len(rec) == _TIMES:
                rec[_EVIDENCE] = ()

    def stats(self) -> StateStats:
        return self.state.current_stats()
