"""What every kind shares: the ``Firing`` a detector reports, the detector base class,
key extraction, and helpers for reading kind parameters from a rule file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from stackwatch.core.alert import Evidence
from stackwatch.core.errors import RuleError
from stackwatch.core.event import Event
from stackwatch.detect.codegen import FunctionSource
from stackwatch.detect.model import Rule, parse_duration
from stackwatch.detect.state import CompactState, Key, StateKey, StateStats
from stackwatch.detect.yaml_locations import LocDict

KeyFunc = Callable[[Event], Key]


@dataclass(slots=True)
class Firing:
    """A detector's verdict; the engine turns it into a new or an updated Alert."""

    key: Key
    time: float  # event time (epoch seconds) of the firing
    event: Event | None  # the event that made it fire (None for time-driven firings)
    count: int = 1  # events behind it (e.g. failures in the window)
    distinct: int = 0  # distinct values (cardinality)
    evidence: list[Evidence] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    resolve: bool = False  # the condition ended (a silent source spoke again)
    continuing: bool = False  # part of the open episode: fold into its alert whatever the gap
    fields: dict[str, str] = field(default_factory=dict)  # group_by values, for summaries without an event


@dataclass(slots=True)
class KindContext:
    """What the engine shares with detectors."""

    started: float | None = None  # event time of the first event the engine saw
    # The live service's start (Engine.live_from): declared sources are silent from here, not
    # from the claimed time of whichever record came first (None: from ``started``, as analyze).
    declared_from: float | None = None
    expected_sources: tuple[dict[str, str], ...] = ()  # declared sources (config)


def key_func(group_by: tuple[str, ...]) -> KeyFunc:
    """Event -> tuple of the group_by values as text ('' when absent)."""
    if not group_by:
        return lambda event: ()
    if len(group_by) == 1:
        one = state_key_func(group_by)
        return lambda event: (one(event),)  # type: ignore[return-value]
    return state_key_func(group_by)  # type: ignore[return-value]


def state_key_func(group_by: tuple[str, ...]) -> Callable[[Event], StateKey]:
    """Event -> the key a kind's store uses: the text itself for one group_by field (one
    object less per key than a 1-tuple), else the tuple of texts ('' when absent). One
    generated function, no generator per event."""
    if not group_by:
        return lambda event: ()
    src = _KeySource()
    parts = [src.text(path) for path in group_by]
    body = parts[0] if len(parts) == 1 else "(" + ", ".join(parts) + ",)"
    return src.build(body)  # type: ignore[return-value]


def as_key(state_key: StateKey, width: int) -> Key:
    """The Firing key (a tuple) of a store key."""
    return (state_key,) if width == 1 else state_key  # type: ignore[return-value]


def to_state_key(values: Key) -> StateKey:
    return values[0] if len(values) == 1 else values


class _KeySource:
    """Writes ``def _key(e): return (<text of field 1>, ...)`` from validated paths only."""

    def __init__(self) -> None:
        self._src = FunctionSource()
        self._src.namespace["T"] = _text

    def text(self, path: str) -> str:
        var = self._src.var()
        return f"({var} if ({var} := {self._src.access(path)}).__class__ is str else T({var}))"

    def build(self, body: str) -> Callable[[Event], Any]:
        return self._src.function("_key", body, "<group_by>")


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


class Detector:
    """Base detector: subclasses implement ``on_event`` and, when time-driven, ``on_tick``.

    ``on_event`` returns the one firing an event can cause, or None (no list per event)."""

    time_driven = False  # True: the engine calls on_tick as time advances

    def __init__(self, rule: Rule, ctx: KindContext) -> None:
        self.rule = rule
        self.ctx = ctx
        self.key_of = key_func(rule.group_by)

    def on_event(self, event: Event, ts: float) -> Firing | None:
        raise NotImplementedError

    def on_tick(self, now: float) -> list[Firing]:
        return []

    def stats(self) -> StateStats:
        return StateStats()


SOURCE_GROUP: Final = ("host", "service")
"""The default key of the per-source kinds (absence, level_drop): one log source."""


class SourceDetector(Detector):
    """Common set-up of the time-driven, per-source kinds: the key (default host+service),
    one compact record per source, and a heap of deadlines for ``on_tick``."""

    time_driven = True
    params_type: type = object  # the kind's Params dataclass (its defaults when the rule gives none)

    def __init__(self, rule: Rule, ctx: KindContext) -> None:
        super().__init__(rule, ctx)
        require_window(rule)
        self.group = rule.group_by or SOURCE_GROUP
        self.key_of = key_func(self.group)
        self.state_key = state_key_func(self.group)
        self.width = len(self.group)
        self.params: Any = rule.params if isinstance(rule.params, self.params_type) else self.params_type()
        self.window = rule.window
        self.state = CompactState(rule.max_keys, 0.0)
        self.heap: list[tuple[float, Any]] = []


# ------------------------------------------------------------------ parameter helpers


def int_param(doc: LocDict, name: str, file: str, *, default: int | None = None, minimum: int = 1) -> int:
    if name not in doc:
        if default is None:
            raise RuleError(f"{name!r} is required for kind {doc.get('kind')!r}", file, doc.line, name)
        return default
    value = doc[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise RuleError(f"{name} must be an integer >= {minimum}", file, doc.key_line(name), name)
    return value


def duration_param(doc: LocDict, name: str, file: str, *, default: float | None = None) -> float:
    if name not in doc:
        if default is None:
            raise RuleError(f"{name!r} is required for kind {doc.get('kind')!r}", file, doc.line, name)
        return default
    return parse_duration(doc[name], file, doc.key_line(name), name)


def require_window(rule: Rule) -> None:
    if rule.window <= 0:
        raise RuleError(f"kind {rule.kind!r} needs a window", rule.source or None, rule.line or None,
                        "window")
