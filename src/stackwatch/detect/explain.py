"""``explained_by``: a firing that an earlier event on the same entity explains is marked
(and lowered) or dropped.

An AIDE change right after ``apt upgrade nova-api`` touched ``/usr/bin/nova-api`` is
expected; the same change with no package update is tampering. A unit stopped while the
host shuts down is part of the reboot, not an unscheduled stop. Both are the same shape::

    explained_by:
      condition: {action: package.install}     # which events can explain a firing
      window: 1d                               # how long such an event explains
      same: [host]                             # fields both events must share
      link: {field: target.name, to: attrs.package, match: token}   # optional
      then: {severity: low, tag: explained}    # or {suppress: true}

The rule keeps a bounded memory of recent explaining events: per ``same`` key (LRU-capped
by the rule's ``max_keys``) at most ``MAX_VALUES`` linked values with the time and evidence
of their latest sighting, forgotten after ``window``.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

from stackwatch.core.alert import ALERT_SEVERITIES, Evidence
from stackwatch.core.errors import RuleError
from stackwatch.core.event import Event
from stackwatch.detect.conditions import Compiled, compile_condition
from stackwatch.detect.fields import Getter, check_path, getter
from stackwatch.detect.kinds.base import KeyFunc, key_func
from stackwatch.detect.model import parse_duration
from stackwatch.detect.state import KeyedState, evidence_of
from stackwatch.detect.yaml_locations import LocDict

FIELDS: Final = ("condition", "window", "same", "link", "then")
LINK_FIELDS: Final = ("field", "to", "match")
THEN_FIELDS: Final = ("severity", "tag", "suppress")
MATCHES: Final = ("eq", "token")
MAX_VALUES: Final = 256
"""Linked values remembered per key (oldest forgotten first)."""

_TOKENS = re.compile(r"[/\s=:,;]+")


@dataclass(frozen=True)
class ExplainedBy:
    """The parsed ``explained_by`` block of a rule."""

    condition: Compiled
    window: float
    same: tuple[str, ...] = ()
    link_field: str | None = None  # this (firing) event's field
    link_to: str | None = None  # the explaining event's field
    match: str = "eq"  # eq: values equal; token: the remembered value is one /-or-space-separated token
    severity: str | None = None
    tag: str = "explained"
    suppress: bool = False


def parse_explained_by(doc: LocDict, source: str) -> ExplainedBy | None:
    """The rule's ``explained_by`` block (None when absent); RuleError with file:line."""
    if "explained_by" not in doc:
        return None
    node = doc["explained_by"]
    line = doc.key_line("explained_by")

    def fail(message: str, at: int | None = None) -> RuleError:
        return RuleError(message, source, at or line, "explained_by")

    if not isinstance(node, dict):
        raise fail("must be a mapping with condition, window, same, link, then")
    _known(node, FIELDS, fail)
    for key in ("condition", "window"):
        if key not in node:
            raise fail(f"{key!r} is required")
    at = node.key_line if isinstance(node, LocDict) else (lambda key: line)
    condition = compile_condition(node["condition"], source, at("condition"))
    window = parse_duration(node["window"], source, at("window"), "explained_by.window")
    if window <= 0:
        raise fail("window must be positive", at("window"))
    same = node.get("same", [])
    if isinstance(same, str):
        same = [same]
    if not isinstance(same, list):
        raise fail("same must be a list of event fields", at("same"))
    same = tuple(check_path(p, source, at("same"), "explained_by.same") for p in same)
    link_field = link_to = None
    match = "eq"
    if "link" in node:
        link = node["link"]
        if not isinstance(link, dict) or "field" not in link or "to" not in link:
            raise fail("link is {field: <this event's field>, to: <explaining event's field>, "
                       "match: eq|token}", at("link"))
        _known(link, LINK_FIELDS, fail)
        link_field = check_path(link["field"], source, at("link"), "explained_by.link.field")
        link_to = check_path(link["to"], source, at("link"), "explained_by.link.to")
        match = link.get("match", "eq")
        if match not in MATCHES:
            raise fail(f"link.match must be one of {', '.join(MATCHES)}", at("link"))
    then = node.get("then", {})
    if not isinstance(then, dict):
        raise fail("then must be a mapping {severity, tag} or {suppress: true}", at("then"))
    _known(then, THEN_FIELDS, fail)
    severity = then.get("severity")
    if severity is not None and severity not in ALERT_SEVERITIES:
        raise fail(f"then.severity must be one of {', '.join(ALERT_SEVERITIES)}", at("then"))
    suppress = then.get("suppress", False)
    if not isinstance(suppress, bool):
        raise fail("then.suppress must be true or false", at("then"))
    tag = then.get("tag", "explained")
    if not isinstance(tag, str) or not tag:
        raise fail("then.tag must be a non-empty string", at("then"))
    return ExplainedBy(condition, window, same, link_field, link_to, match, severity, tag, suppress)


def _known(node: dict[str, Any], allowed: tuple[str, ...], fail: Any) -> None:
    for key in node:
        if key not in allowed:
            raise fail(f"unknown field {key!r} in explained_by (known: {', '.join(allowed)})")


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a firing is explained: the explaining event's evidence."""

    evidence: Evidence
    value: str  # the linked value ('' without link)


class Explainer:
    """The bounded memory of one rule's explaining events."""

    def __init__(self, spec: ExplainedBy, max_keys: int) -> None:
        self.spec = spec
        self.observe_if = spec.condition.predicate
        self.hints = spec.condition.hints
        self.key_of: KeyFunc = key_func(spec.same)
        self._to: Getter | None = getter(spec.link_to) if spec.link_to else None
        self._field: Getter | None = getter(spec.link_field) if spec.link_field else None
        # per key: linked value -> (time, evidence) of its latest sighting, oldest first
        self.state: KeyedState[OrderedDict[str, tuple[float, Evidence]]] = KeyedState(max_keys, spec.window)
        self._seen = 0

    def observe(self, event: Event, ts: float) -> None:
        """Remember ``event`` when it can explain later firings."""
        if not self.observe_if(event):
            return
        value = "" if self._to is None else _text(self._to(event))
        if self._to is not None and not value:
            return
        memory = self.state.get(self.key_of(event), ts, OrderedDict)
        memory.pop(value, None)
        memory[value] = (ts, evidence_of(event))
        if len(memory) > MAX_VALUES:
            memory.popitem(last=False)
        self._seen += 1
        if self._seen % 4096 == 0:
            self.state.sweep(ts)

    def explains(self, event: Event, ts: float) -> Explanation | None:
        """The remembered event that explains ``event`` at ``ts``, if any."""
        memory = self.state.peek(self.key_of(event))
        if not memory:
            return None
        since = ts - self.spec.window
        for value in self._candidates(event):
            seen = memory.get(value)
            if seen is not None and since <= seen[0] <= ts:
                return Explanation(seen[1], value)
        return None

    def _candidates(self, event: Event) -> list[str]:
        if self._field is None:
            return [""]
        value = _text(self._field(event))
        if not value:
            return []
        if self.spec.match == "token":
            return [t for t in _TOKENS.split(value) if t]
        return [value]


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)
