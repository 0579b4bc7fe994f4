"""The rule model: one frozen ``Rule`` per detection, whatever file format it came from.

YAML rules (loader.py) and Sigma rules (sigma.py) both end up as ``Rule`` objects; the
engine only ever sees this type. A rule built from an external predicate is fine::

    Rule(id="...", title="...", category="os.login", severity="low", kind="match",
         condition=my_predicate, index={"service": frozenset({"sshd"})})

``index`` hints name the values of ``action``/``service``/``kind``/``outcome`` an event must have to
possibly match; an empty mapping means "offer me every event".
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from stackwatch.core.alert import ALERT_SEVERITIES, CATEGORIES
from stackwatch.core.errors import RuleError
from stackwatch.core.event import Event
from stackwatch.detect.fields import check_path

Predicate = Callable[[Event], bool]

KINDS: Final = ("match", "threshold", "cardinality", "sequence", "new_value", "absence", "level_drop",
                 "spike")
"""Rule kinds; each has a module under detect/kinds/."""

ENTITY_FIELDS: Final = ("source_ip", "user", "project", "service", "bridge", "path", "host")
"""Alert top-level fields a rule can fill from event fields."""

INDEX_DIMENSIONS: Final = ("action", "service", "kind", "outcome")

DEFAULT_REALERT: Final = 3600.0
DEFAULT_MAX_KEYS: Final = 100_000


def _always(event: Event) -> bool:
    return True


@dataclass(frozen=True, eq=False)
class Rule:
    """One detection rule. Times (window, realert) are seconds."""

    id: str
    title: str
    category: str
    severity: str
    condition: Predicate = _always
    kind: str = "match"
    description: str = ""
    references: tuple[str, ...] = ()
    params: Any = None  # the kind's parameters (kinds/<kind>.py ``Params``); None = the kind's defaults
    group_by: tuple[str, ...] = ()
    window: float = 0.0
    summary: str = ""  # template: {count} {distinct} {key} {threshold} {window} and any dotted event field
    entities: Mapping[str, str | None] | None = None  # alert field -> event path; None = kind defaults
    details: Mapping[str, str] | None = None  # alert details key -> event path (e.g. dest_ip: target.id)
    realert: float = DEFAULT_REALERT
    enabled: bool = True
    tags: tuple[str, ...] = ()
    index: Mapping[str, frozenset[str]] = field(default_factory=dict)
    outside_maintenance: bool = False
    escalate: tuple[tuple[Predicate, str], ...] = ()  # (condition, severity): first match wins
    explained_by: Any = None  # detect.explain.ExplainedBy: earlier events that explain a firing
    max_keys: int = DEFAULT_MAX_KEYS
    source: str = ""  # file the rule came from ('' when built in code)
    line: int = 0
    tests: Any = None  # the file's raw ``tests:`` block (see vectors.py)

    def __post_init__(self) -> None:
        def fail(message: str, field_name: str) -> RuleError:
            return RuleError(message, self.source or None, self.line or None, field_name)

        try:
            uuid.UUID(str(self.id))
        except ValueError:
            raise fail(f"id must be a UUID, got {self.id!r}", "id") from None
        if not self.title:
            raise fail("title is required", "title")
        if self.category not in CATEGORIES:
            raise fail(f"unknown category {self.category!r} (known: {', '.join(CATEGORIES)})", "category")
        if self.severity not in ALERT_SEVERITIES:
            raise fail(f"severity must be one of {', '.join(ALERT_SEVERITIES)}", "severity")
        for _, severity in self.escalate:
            if severity not in ALERT_SEVERITIES:
                raise fail(f"severity must be one of {', '.join(ALERT_SEVERITIES)}", "escalate")
        if self.kind not in KINDS:
            raise fail(f"unknown kind {self.kind!r} (known: {', '.join(KINDS)})", "kind")
        if self.window < 0 or self.realert < 0:
            raise fail("durations must not be negative", "window")
        if self.max_keys < 1:
            raise fail("max_keys must be at least 1", "max_keys")
        for path in self.group_by:
            check_path(path, self.source, self.line or None, "group_by")
        for name, target in (self.entities or {}).items():
            if name not in ENTITY_FIELDS:
                raise fail(f"unknown entity {name!r} (known: {', '.join(ENTITY_FIELDS)})", "entities")
            if target is not None:
                check_path(target, self.source, self.line or None, f"entities.{name}")
        for name, target in (self.details or {}).items():
            check_path(target, self.source, self.line or None, f"details.{name}")
        for dim, values in self.index.items():
            if dim not in INDEX_DIMENSIONS:
                raise fail(f"index dimension must be one of {', '.join(INDEX_DIMENSIONS)}", "index")
            if not isinstance(values, frozenset):
                object.__setattr__(self, "index", {**self.index, dim: frozenset(values)})

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.source else "<code>"

    def __repr__(self) -> str:
        return f"Rule({self.id!r}, {self.title!r}, kind={self.kind!r})"


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(value: Any, file: str = "", line: int | None = None, field_name: str = "") -> float:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"1h30m"``, ``"2d"``, ``"1w"``."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        pos, total = 0, 0.0
        for match in _DURATION.finditer(text):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        else:
            if pos == len(text) and pos:
                return total
    raise RuleError(f"bad duration {value!r} (use seconds or e.g. 30s, 5m, 1h30m, 2d)", file, line,
                    field_name)
