"""``sequence``: steps A then B (then C...) for the same key within ``window``, e.g.
N failed logins then a success from the same IP.

Each step has a condition and a count (default 1). The first step slides: it keeps the
times of its last ``count`` events, so a long run of failures followed by a success
still fires when the last N failures and the success fit in the window. While waiting
for a later step, more first-step events keep sliding the start.

A step may name its own key fields (``group_by`` in the step, as Sigma correlation rules
map differently named fields onto one group key with ``aliases``): a keystone user's
creation names the new user in ``target.id`` while its later logins name it in
``initiator.id``. Every step's key has the rule's arity; a step without one uses the
rule's ``group_by``. An event is looked at once per distinct key, and under each key only
by the steps keyed by it, so a step never counts an event twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stackwatch.core.errors import RuleError
from stackwatch.core.event import Event
from stackwatch.detect.conditions import Compiled, Predicate, combine_any, compile_condition
from stackwatch.detect.fields import check_path
from stackwatch.detect.kinds.base import Detector, Firing, KindContext, as_key, require_window, state_key_func
from stackwatch.detect.model import Rule
from stackwatch.detect.state import LAST, CompactState, StateStats, pushed
from stackwatch.detect.yaml_locations import LocDict, LocList

FIELDS = ("steps",)
STEP_FIELDS = ("name", "condition", "count", "group_by")


@dataclass(frozen=True)
class Step:
    name: str
    predicate: Predicate
    count: int = 1
    group_by: tuple[str, ...] | None = None  # None: the rule's group_by


@dataclass(frozen=True)
class Params:
    steps: tuple[Step, ...]
    condition: Compiled | None = None  # any step's condition: ANDed into the rule's filter


def parse_params(doc: LocDict, file: str) -> Params:
    raw = doc.get("steps")
    line = doc.key_line("steps")
    if not isinstance(raw, list) or len(raw) < 2:
        raise RuleError("'steps' needs a list of at least two steps", file, line, "steps")
    rule_key = doc.get("group_by", [])
    arity = 1 if isinstance(rule_key, str) else len(rule_key) if isinstance(rule_key, list) else None
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
        step_key = _step_key(item, index, arity, file, item_line)
        steps.append(Step(str(item.get("name", f"step {index + 1}")), cond.predicate, count, step_key))
        compiled.append(cond)
    return Params(tuple(steps), combine_any(compiled))


def _step_key(item: dict[str, Any], index: int, arity: int | None, file: str,
              item_line: int | None) -> tuple[str, ...] | None:
    """A step's own ``group_by``: dotted fields, as many as the rule's (one key for all steps)."""
    if "group_by" not in item:
        return None
    line = item.key_line("group_by") if isinstance(item, LocDict) else item_line
    where = f"steps[{index}].group_by"
    raw = item["group_by"]
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(v, str) for v in raw):
        raise RuleError("a step's group_by must be a non-empty list of field paths", file, line, where)
    for path in raw:
        check_path(path, file, line, where)
    if arity is not None and len(raw) != arity:
        raise RuleError(f"a step's group_by has {len(raw)} field(s) but the rule's group_by has {arity}: "
                        "every step's key must have the same number of fields", file, line, where)
    return tuple(raw)


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
        self._keyings = _keyings(rule)
        self._every = (True,) * len(self.steps)
        if len(self._keyings) > 1:  # the engine reads on_event after construction
            self.on_event = self._on_event_keyed  # type: ignore[method-assign, assignment]
        self.state = CompactState(rule.max_keys, rule.window)
        self._data = self.state.data  # the store's dict (never rebound): one lookup less per event
        self._first = self.steps[0]

    def on_event(self, event: Event, ts: float, key: Any = None,
                 usable: tuple[bool, ...] | None = None) -> Firing | None:
        """The event under one key; ``usable[i]``: step i is keyed by that key's fields.
        Without them (the engine's call, every rule without step keys): the rule's key, every
        step, no loop nor extra call on this hot path."""
        if usable is None:
            key, usable = self.state_key(event), self._every
        rec = self._data.get(key)
        if rec is None:
            # nothing under way for this key (most events): only the first step can start it
            first = self._first
            if not usable[0] or not first.predicate(event):
                return None
            rec = [ts, ts, key, 0, 0, 0, (), ts]
            self.state.add(key, rec)
        else:
            steps = self.steps
            if len(rec) > _TIMES and ts - rec[_TIMES] > self.window:
                self._slide(rec, ts)
            at = rec[_STEP]
            if at > 0 and usable[at] and steps[at].predicate(event):
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
            if not usable[0] or not first.predicate(event):
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

    def _on_event_keyed(self, event: Event, ts: float) -> Firing | None:
        """Steps with their own keys: the event once under each distinct key."""
        fired = None
        for key_of, usable in self._keyings:
            firing = SequenceDetector.on_event(self, event, ts, key_of(event), usable)
            if fired is None:
                fired = firing
        return fired

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


KeyOf = Callable[[Event], Any]


def _keyings(rule: Rule) -> tuple[tuple[KeyOf, tuple[bool, ...]], ...]:
    """One (key function, steps it serves) per distinct step key, in step order; without
    step keys a single one serving every step (the rule's group_by, as before)."""
    assert isinstance(rule.params, Params)
    steps = rule.params.steps
    fields: list[tuple[str, ...]] = []
    for index, step in enumerate(steps):
        key = rule.group_by if step.group_by is None else step.group_by
        if len(key) != len(rule.group_by):  # rules built in code skip parse_params
            raise RuleError(f"step {index + 1} ({step.name}) has a key of {len(key)} field(s), the rule's "
                            f"group_by has {len(rule.group_by)}", rule.source or None, rule.line or None,
                            f"steps[{index}].group_by")
        if key not in fields:
            fields.append(key)
    return tuple((state_key_func(key),
                  tuple((rule.group_by if s.group_by is None else s.group_by) == key for s in steps))
                 for key in fields)
