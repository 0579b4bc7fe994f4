"""``new_value``: a value of ``field`` never seen before for a key (root login from a new
IP). During the learning period (from the first event the engine saw) values are only
learned; afterwards an unseen value fires once and is learned.

Per key at most ``max_values`` values are remembered (oldest sighting forgotten first),
and keys are capped by the rule's ``max_keys`` like every other kind.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackwatch.core.errors import RuleError
from stackwatch.core.event import Event
from stackwatch.detect.fields import check_path
from stackwatch.detect.kinds.base import Detector, Firing, KindContext, duration_param, int_param, key_func
from stackwatch.detect.model import Rule
from stackwatch.detect.state import KeyedState, StateStats, evidence_of
from stackwatch.detect.yaml_locations import LocDict

FIELDS = ("field", "learning", "max_values")


@dataclass(frozen=True)
class Params:
    fields: tuple[str, ...]
    learning: float = 0.0
    max_values: int = 1000


def parse_params(doc: LocDict, file: str) -> Params:
    raw = doc.get("field")
    line = doc.key_line("field")
    if raw is None:
        raise RuleError("'field' is required for kind 'new_value'", file, doc.line, "field")
    paths = raw if isinstance(raw, list) else [raw]
    fields = tuple(check_path(p, file, line, "field") for p in paths)
    return Params(fields, duration_param(doc, "learning", file, default=0.0),
                  int_param(doc, "max_values", file, default=1000))


class NewValueDetector(Detector):
    def __init__(self, rule: Rule, ctx: KindContext) -> None:
        super().__init__(rule, ctx)
        if not isinstance(rule.params, Params):
            raise RuleError("new_value needs params (field)", rule.source or None, rule.line or None, "field")
        self.params = rule.params
        self.value_of = key_func(rule.params.fields)
        # Values are forgotten only by the caps (no ttl): "never seen" means since we started.
        self.state: KeyedState[dict[tuple[str, ...], None]] = KeyedState(rule.max_keys, 0.0)

    def on_event(self, event: Event, ts: float) -> Firing | None:
        value = self.value_of(event)
        if not any(value):
            return None
        key = self.key_of(event)
        seen = self.state.get(key, ts, dict)
        if value in seen:
            return None
        seen[value] = None
        if len(seen) > self.params.max_values:
            del seen[next(iter(seen))]
        started = self.ctx.started if self.ctx.started is not None else ts
        if ts - started < self.params.learning:
            return None
        shown = value[0] if len(value) == 1 else "|".join(v for v in value if v)  # the fields given
        return Firing(key + value, ts, event, evidence=[evidence_of(event)],
                      details={"field": ",".join(self.params.fields), "new_value": shown})

    def stats(self) -> StateStats:
        self.state.stats.keys = len(self.state)
        return self.state.stats
