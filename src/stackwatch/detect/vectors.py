"""Rule test vectors: every rule file carries ``tests: {fire: [...], quiet: [...]}``.

A case is either ``lines:`` (raw log text, parsed by the real parsers through
``parse_text``, with optional ``host``/``year``) or ``events:`` (dicts for
``stackwatch.testing.make_event``; ``repeat: N`` and ``every: 10s`` build runs of events,
``{i}`` in a string becomes the repeat index). Optional per case: ``name``, ``expect``
(``count``, ``summary_contains``, ``severity``, ``events`` or any alert entity field such
as ``source_ip``), ``maintenance`` (windows, see schedule.py), ``expected_sources``,
``advance`` (let time pass after the last event, for absence rules), ``start`` (time of
the first event, default 2026-01-01T00:00:00Z).

Each case runs through a fresh Engine holding only its rule: a fire case must raise at
least one alert (exactly ``expect.count`` when given), a quiet case none. Shared by pytest
(tests/detect/test_builtin_rules.py) and ``stackwatch rules test``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from stackwatch.core.alert import Alert
from stackwatch.core.errors import LocatedError, RuleError
from stackwatch.core.event import Event
from stackwatch.detect.engine import Engine
from stackwatch.detect.model import ENTITY_FIELDS, Rule, parse_duration
from stackwatch.detect.yaml_locations import LocDict, LocList

CASE_FIELDS: Final = ("name", "lines", "host", "year", "events", "expect", "maintenance",
                      "expected_sources", "advance", "start")
EVENT_HELPERS: Final = ("repeat", "every", "after")
EXPECT_FIELDS: Final = ("count", "summary_contains", "severity", "events", "key", "status", "details",
                        *ENTITY_FIELDS)
DEFAULT_START: Final = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class VectorCase:
    rule: Rule
    expect_fire: bool
    index: int
    spec: Any

    @property
    def line(self) -> int:
        return getattr(self.spec, "line", 0) or self.rule.line

    @property
    def name(self) -> str:
        name = self.spec.get("name") if isinstance(self.spec, dict) else None
        return str(name) if name else f"#{self.index + 1}"

    def __str__(self) -> str:
        which = "fire" if self.expect_fire else "quiet"
        return f"{self.rule.source}:{self.line} {self.rule.title} [{which} {self.name}]"


def rule_cases(rule: Rule) -> list[VectorCase]:
    tests = rule.tests or {}
    return [VectorCase(rule, kind == "fire", index, spec)
            for kind in ("fire", "quiet") for index, spec in enumerate(tests.get(kind) or [])]


def _fail(case: VectorCase, message: str, line: int | None = None) -> RuleError:
    return RuleError(message, case.rule.source or None, line or case.line, "tests")


def _when(value: Any, case: VectorCase) -> datetime:
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        raise _fail(case, f"bad time {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _fill(value: Any, i: int) -> Any:
    if isinstance(value, str):
        return value.replace("{i}", str(i))
    if isinstance(value, dict):
        return {k: _fill(v, i) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, i) for v in value]
    return value


def build_events(case: VectorCase) -> list[Event]:
    """The events of a case (parsed lines, or generated from event dicts)."""
    from stackwatch.testing import make_event

    spec = case.spec
    if "lines" in spec:
        from stackwatch.parsers.framing import parse_text

        return parse_text(str(spec["lines"]), host=str(spec.get("host", "")), origin="vector",
                          year=spec.get("year"))
    items = spec.get("events")
    if not isinstance(items, list) or not items:
        raise _fail(case, "a case needs 'lines' or a non-empty 'events' list")
    cursor = _when(spec["start"], case) if "start" in spec else DEFAULT_START
    events: list[Event] = []
    for number, item in enumerate(items):
        line = items.item_line(number) if isinstance(items, LocList) else case.line
        if not isinstance(item, dict):
            raise _fail(case, "an event is a mapping of event fields", line)
        fields = {k: v for k, v in item.items() if k not in EVENT_HELPERS}
        repeat = item.get("repeat", 1)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            raise _fail(case, "repeat must be an integer >= 1", line)
        every = parse_duration(item.get("every", 1), case.rule.source, line, "every")
        if "time" in fields:
            cursor = _when(fields.pop("time"), case)
        elif "after" in item:
            cursor += timedelta(seconds=parse_duration(item["after"], case.rule.source, line, "after"))
        for i in range(repeat):
            data = _fill(fields, i)
            data.setdefault("ref", f"vector:{line}#{i}")
            data.setdefault("raw", data.get("message") or f"event at line {line} #{i}")
            try:
                events.append(make_event(time=cursor, **data))
            except (TypeError, ValueError) as exc:
                raise _fail(case, f"bad event: {exc}", line) from None
            cursor += timedelta(seconds=every)
        cursor -= timedelta(seconds=every)  # the next item follows the last event by its own step
        cursor += timedelta(seconds=1)
    return events


def run_case(case: VectorCase) -> list[Alert]:
    """Run one case through a fresh engine holding only its rule."""
    spec = case.spec
    if not isinstance(spec, dict):
        raise _fail(case, "a case is a mapping")
    for key in spec:
        if key not in CASE_FIELDS:
            raise _fail(case, f"unknown field {key!r} in test case (known: {', '.join(CASE_FIELDS)})",
                        spec.key_line(key) if isinstance(spec, LocDict) else None)
    engine = Engine([case.rule], maintenance=spec.get("maintenance"),
                    expected_sources=spec.get("expected_sources"))
    events = build_events(case)
    for event in events:
        engine.process(event)
    engine.finish()
    if "advance" in spec and events:
        last = max(e.time for e in events)
        engine.tick(last + timedelta(seconds=parse_duration(spec["advance"], case.rule.source, case.line)))
    return engine.alerts()


def check_case(case: VectorCase) -> str | None:
    """None when the case passes, else why it failed."""
    try:
        alerts = run_case(case)
    except LocatedError as exc:
        return str(exc)
    expect = case.spec.get("expect") or {}
    if not isinstance(expect, dict):
        return f"{case}: expect must be a mapping"
    unknown = [k for k in expect if k not in EXPECT_FIELDS]
    if unknown:
        return f"{case}: unknown expect field {unknown[0]!r} (known: {', '.join(EXPECT_FIELDS)})"
    shown = "; ".join(f"{a.summary!r} x{a.count}" for a in alerts[:5]) or "none"
    if not case.expect_fire:
        return None if not alerts else f"{case}: expected no alert, got {len(alerts)}: {shown}"
    if not alerts:
        return f"{case}: expected an alert, got none"
    if "count" in expect and len(alerts) != expect["count"]:
        return f"{case}: expected {expect['count']} alert(s), got {len(alerts)}: {shown}"
    if "summary_contains" in expect and not any(str(expect["summary_contains"]) in a.summary for a in alerts):
        return f"{case}: no summary contains {expect['summary_contains']!r}: {shown}"
    first = alerts[0]
    for name in EXPECT_FIELDS[2:]:
        if name not in expect:
            continue
        if name == "details":  # the keys given, each equal (the alert may hold more)
            if not isinstance(expect[name], dict):
                return f"{case}: expect.details must be a mapping"
            got: object = {k: first.details.get(k) for k in expect[name]}
        else:
            got = first.details.get("events") if name == "events" else getattr(first, name)
        if got != expect[name]:
            return f"{case}: expected {name} {expect[name]!r}, got {got!r}"
    return None


@dataclass(frozen=True)
class VectorResult:
    case: VectorCase
    failure: str | None


def run_vectors(rules: list[Rule], *, require: bool = True) -> tuple[list[VectorResult], list[str]]:
    """Run every case of every rule. Returns the results and the rules' own problems
    (a rule without fire or quiet vectors, when ``require``). Rules tagged ``sigma``
    carry no vectors of their own and are not required to."""
    results: list[VectorResult] = []
    problems: list[str] = []
    for rule in rules:
        cases = rule_cases(rule)
        if require and "sigma" not in rule.tags:
            for kind in ("fire", "quiet"):
                if not any(c.expect_fire == (kind == "fire") for c in cases):
                    problems.append(f"{rule.where}: {rule.title}: no '{kind}' test vectors")
        results.extend(VectorResult(case, check_case(case)) for case in cases)
    return results, problems
