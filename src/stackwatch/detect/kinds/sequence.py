"""``sequence``: steps A then B (then C...) for the same key within ``window``, e.g.
N failed logins then a success from the same IP.

Each step has a condition and a count (default 1). The first step slides: it keeps the
times of its last ``count`` events, so a long run of failures followed by a success
still fires when the last N failures and the success fit in the window. While waiting
for a later step, more first-step events keep sliding the start.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stackwatch.core.alert import Evidence
from stackwatch.core.errors import RuleError
from stackwatch.core.event import Event
from stackwatch.detect.conditions import Compiled, Predicate, combine_any, compile_condition
from stackwatch.detect.kinds.base import Detector, Firing, KindContext, require_window
from stackwatch.detect.locyaml import LocDict, LocList
from stackwatch.detect.model import Rule
from stackwatch.detect.state import KeyedState, StateStats, push_evidence

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


@dataclass(slots=True)
class _Progress:
    step: int = 0
    count: int = 0  # events counted at the current step (steps after the first)
    first_times: list[float] = field(default_factory=list)  # the first step's latest times
    total: int = 0
    evidence: list[Evidence] = field(default_factory=list)


class SequenceDetector(Detector):
    def __init__(self, rule: Rule, ctx: KindContext) -> None:
        super().__init__(rule, ctx)
        require_window(rule)
        if not isinstance(rule.params, Params):
            raise RuleError("sequence needs steps", rule.source or None, rule.line or None, "steps")
        self.steps = rule.params.steps
        self.window = rule.window
        self.state: KeyedState[_Progress] = KeyedState(rule.max_keys, rule.window)
        self._seen = 0

    def on_event(self, event: Event, ts: float) -> list[Firing]:
        key = self.key_of(event)
        steps = self.steps
        progress = self.state.peek(key)
        if progress is not None and progress.first_times and ts - progress.first_times[0] > self.window:
            self._slide(progress, ts)
        at = progress.step if progress is not None else 0
        if at > 0 and steps[at].predicate(event):
            assert progress is not None
            self.state.get(key, ts, _Progress)
            progress.count += 1
            progress.total += 1
            push_evidence(progress.evidence, event)
            if progress.count >= steps[at].count:
                progress.step, progress.count = at + 1, 0
                if progress.step == len(steps):
                    self.state.pop(key)
                    return [Firing(key, ts, event, count=progress.total, evidence=list(progress.evidence),
                                   details={"window": self.window, "steps": [s.name for s in steps]})]
            return []
        first = steps[0]
        if not first.predicate(event):
            return []
        progress = self.state.get(key, ts, _Progress)
        times = progress.first_times
        times.append(ts)
        progress.total += 1
        if len(times) > first.count:
            del times[0]
        push_evidence(progress.evidence, event)
        if progress.step == 0 and len(times) >= first.count:
            progress.step, progress.count = 1, 0
        self._seen += 1
        if self._seen % 4096 == 0:
            self.state.sweep(ts)
        return []

    def _slide(self, progress: _Progress, ts: float) -> None:
        """The oldest first-step events left the window: drop them, back to step 0 if too few."""
        limit = ts - self.window
        times = progress.first_times
        while times and times[0] < limit:
            del times[0]
        if len(times) < self.steps[0].count:
            progress.step, progress.count = 0, 0
            progress.total = len(times)
            if not times:
                progress.evidence.clear()

    def stats(self) -> StateStats:
        self.state.stats.keys = len(self.state)
        return self.state.stats
