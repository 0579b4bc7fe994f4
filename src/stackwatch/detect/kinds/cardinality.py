"""``cardinality``: at least N distinct values of ``field`` within ``window`` for one key
(one IP trying many accounts; one account attacked from many IPs).

Per key we keep the most recently seen values with their last time, at most
``max_values`` (>= N) of them: the N most recent distinct values decide the verdict, so
the cap keeps the check exact while bounding memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stackwatch.core.errors import RuleError
from stackwatch.core.event import Event
from stackwatch.detect.fields import check_path, getter
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


# Record layout (a list, see state.CompactState), two forms:
#   small: [mark, last_use, key, evidence, value1, time1, value2, time2, ...]
#   large: [mark, last_use, key, evidence, {value: time}]
# values oldest sighting first. A key with a few values (the common case: one address, one
# or two accounts) costs one small list; past INLINE_VALUES a dict keeps lookups O(1).
_EVIDENCE, _VALUES = 3, 4
INLINE_VALUES = 8


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
        self.width = len(rule.group_by)
        self.state_key = state_key_func(rule.group_by)
        self.state = CompactState(rule.max_keys, rule.window)

    def on_event(self, event: Event, ts: float) -> Firing | None:
        value = self.value_of(event)
        if value is None or value == "":
            return None
        if value.__class__ is not str:
            value = str(value)
        key = self.state_key(event)
        state = self.state
        rec = state.data.get(key)
        if rec is None:
            rec = [ts, ts, key, (evidence_of(event),), value, ts]
            state.add(key, rec)
        else:
            rec[LAST] = ts
            limit = ts - self.window
            if len(rec) == _VALUES + 1:
                self._see_large(rec[_VALUES], value, ts, limit)
            else:
                self._see_small(rec, value, ts, limit)
            rec[_EVIDENCE] = pushed(rec[_EVIDENCE], event)
        state.tick(ts)
        large = len(rec) == _VALUES + 1
        distinct = len(rec[_VALUES]) if large else (len(rec) - _VALUES) >> 1
        if distinct >= self.params.threshold:
            sample = sorted(rec[_VALUES] if large else rec[_VALUES::2])[:10]
            return Firing(as_key(key, self.width), ts, event, count=distinct, distinct=distinct,
                          evidence=list(rec[_EVIDENCE]),
                          details={"threshold": self.params.threshold, "window": self.window,
                                   "field": self.params.field, "values": sample})
        return None

    def _see_small(self, rec: list[Any], value: str, ts: float, limit: float) -> None:
        try:  # a value is never equal to a time (a float); the search starts past the key
            at = rec.index(value, _VALUES)
            del rec[at:at + 2]  # re-inserted at the end: newest last
        except ValueError:
            pass
        rec.append(value)
        rec.append(ts)
        while rec[_VALUES + 1] < limit:  # values whose last sighting left the window
            del rec[_VALUES:_VALUES + 2]
        count = (len(rec) - _VALUES) >> 1
        if count > self.params.max_values:
            del rec[_VALUES:_VALUES + 2]
        elif count > INLINE_VALUES:  # many values: a dict from now on
            seen = dict(zip(rec[_VALUES::2], rec[_VALUES + 1::2], strict=True))
            del rec[_VALUES:]
            rec.append(seen)

    def _see_large(self, seen: dict[str, float], value: str, ts: float, limit: float) -> None:
        seen.pop(value, None)  # re-insert at the end: newest last
        seen[value] = ts
        while seen:  # drop values whose last sighting left the window (oldest first)
            first = next(iter(seen))
            if seen[first] >= limit:
                break
            del seen[first]
        if len(seen) > self.params.max_values:
            del seen[next(iter(seen))]

    def stats(self) -> StateStats:
        return self.state.current_stats()
