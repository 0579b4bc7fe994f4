"""``cardinality``: at least N distinct values of ``field`` within ``window`` for one key
(one IP trying many accounts; one account attacked from many IPs).

Per key we keep the most recently seen values with their last time, at most
``max_values`` (>= N) of them: the N most recent distinct values decide the verdict, so
the cap keeps the check exact while bounding memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stackwatch.core.alert import Evidence
from stackwatch.core.errors import RuleError
from stackwatch.core.event import Event
from stackwatch.detect.fields import check_path, getter
from stackwatch.detect.kinds.base import Detector, Firing, KindContext, int_param, require_window
from stackwatch.detect.locyaml import LocDict
from stackwatch.detect.model import Rule
from stackwatch.detect.state import KeyedState, StateStats, push_evidence

FIELDS = ("threshold", "field", "max_values")


@dataclass(frozen=True)
class Params:
    field: str
    threshold: int
    max_values: int = 100


def parse_params(doc: LocDict, file: str) -> Params:
    if "field" not in doc:
        raise RuleError("'field' is required for kind 'cardinality'", file, doc.line, "field")
    path = check_path(doc["field"], file, doc.key_line("field"), "field")
    threshold = int_param(doc, "threshold", file)
    max_values = int_param(doc, "max_values", file, default=max(100, threshold))
    if max_values < threshold:
        raise RuleError("max_values must be >= threshold", file, doc.key_line("max_values"), "max_values")
    return Params(path, threshold, max_values)


@dataclass(slots=True)
class _Values:
    seen: dict[str, float] = field(default_factory=dict)  # value -> last time, oldest first
    evidence: list[Evidence] = field(default_factory=list)


class CardinalityDetector(Detector):
    def __init__(self, rule: Rule, ctx: KindContext) -> None:
        super().__init__(rule, ctx)
        require_window(rule)
        if not isinstance(rule.params, Params):
            raise RuleError("cardinality needs params (field, threshold)", rule.source or None,
                            rule.line or None, "field")
        self.params = rule.params
        self.value_of = getter(rule.params.field)
        self.window = rule.window
        self.state: KeyedState[_Values] = KeyedState(rule.max_keys, rule.window)
        self._seen = 0

    def on_event(self, event: Event, ts: float) -> list[Firing]:
        value = self.value_of(event)
        if value is None or value == "":
            return []
        value = value if isinstance(value, str) else str(value)
        key = self.key_of(event)
        entry = self.state.get(key, ts, _Values)
        seen = entry.seen
        limit = ts - self.window
        if value in seen:
            del seen[value]  # re-insert at the end: newest last
        seen[value] = ts
        while seen:  # drop values whose last sighting left the window (oldest first)
            first = next(iter(seen))
            if seen[first] >= limit:
                break
            del seen[first]
        if len(seen) > self.params.max_values:
            del seen[next(iter(seen))]
        push_evidence(entry.evidence, event)
        self._seen += 1
        if self._seen % 4096 == 0:
            self.state.sweep(ts)
        distinct = len(seen)
        if distinct >= self.params.threshold:
            sample = sorted(seen)[:10]
            return [Firing(key, ts, event, count=distinct, distinct=distinct, evidence=list(entry.evidence),
                           details={"threshold": self.params.threshold, "window": self.window,
                                    "field": self.params.field, "values": sample})]
        return []

    def stats(self) -> StateStats:
        self.state.stats.keys = len(self.state)
        return self.state.stats
