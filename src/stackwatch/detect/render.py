"""Turning a firing into alert text and entities: summary templates and the mapping of
event fields onto the alert's top-level fields (source_ip, user, project...).

Templates are compiled once per rule: ``"{count} failed logins from {initiator.source_ip}"``
becomes a list of literal parts and getters; unknown placeholders are load-time errors.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from typing import Any, Final

from stackwatch.core.errors import RuleError
from stackwatch.detect.fields import check_path, getter
from stackwatch.detect.kinds.base import Firing

PLACEHOLDERS: Final = {
    "count": "events behind the alert (failures in the window, distinct values...)",
    "distinct": "distinct values (cardinality)",
    "key": "the group_by values joined by '|'",
    "threshold": "the rule's threshold",
    "window": "the rule's window (e.g. 5m)",
    "values": "a sample of the distinct values (cardinality)",
    "new_value": "the value never seen before (new_value)",
    "silent_for": "how long the source has been silent (absence)",
    "baseline": "the key's learned events per window (spike)",
    "ratio": "the current window's count over the baseline (spike)",
    "title": "the rule title",
}

DEFAULT_ENTITIES: Final[dict[str, str]] = {
    "source_ip": "initiator.source_ip",
    "user": "initiator.name",
    "project": "initiator.project",
    "service": "service",
    "host": "host",
}
AGGREGATE_KINDS: Final = frozenset({"threshold", "cardinality", "absence", "level_drop", "spike"})

Part = Callable[[Firing], str]


def human_seconds(value: float) -> str:
    seconds = round(value)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    if seconds >= 3600:
        return f"{seconds // 3600}h{(seconds % 3600) // 60}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60}s"
    return f"{seconds}s"


def _show(value: Any) -> str:
    if value.__class__ is str:  # the common case first
        return value or "-"
    if value is None or value == "":
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def field_reader(path: str) -> Callable[[Firing], Any]:
    """Read a dotted field from the firing's event, else from its group_by values."""
    get = getter(path)

    def read(firing: Firing) -> Any:
        if firing.event is not None:
            value = get(firing.event)
            if value not in (None, ""):
                return value
        return firing.fields.get(path)

    return read


def compile_summary(template: str, rule_values: Mapping[str, Any], file: str = "",
                    line: int | None = None) -> Callable[[Firing], str]:
    """A renderer for ``template``; RuleError for unknown placeholders or bad braces."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise RuleError(f"bad summary template: {exc}", file, line, "summary") from None
    parts: list[Part | str] = []
    for literal, name, _spec, _conv in parsed:
        if literal:
            parts.append(literal)
        if name is None:
            continue
        if name == "":
            raise RuleError("empty {} in summary", file, line, "summary")
        parts.append(_placeholder(name, rule_values, file, line))
    if all(isinstance(p, str) for p in parts):
        text = "".join(p for p in parts if isinstance(p, str))
        return lambda firing: text
    return _joiner(parts)


def _joiner(parts: list[Part | str]) -> Callable[[Firing], str]:
    """``def _summary(f): return JOIN((c0, p1(f), c2, ...))``: one call, no generator per
    firing. Only generated names reach the source; literals and readers are constants."""
    namespace: dict[str, Any] = {"__builtins__": {}, "JOIN": "".join}
    items = []
    for index, part in enumerate(parts):
        name = f"p{index}"
        namespace[name] = part
        items.append(name if isinstance(part, str) else f"{name}(f)")
    code = compile(f"def _summary(f):\n    return JOIN(({', '.join(items)},))\n", "<summary>", "exec")
    exec(code, namespace)  # noqa: S102 - generated names only
    return namespace["_summary"]  # type: ignore[no-any-return]


def _placeholder(name: str, rule_values: Mapping[str, Any], file: str, line: int | None) -> Part:
    if name == "count":
        return lambda f: str(f.count)
    if name == "distinct":
        return lambda f: str(f.distinct or f.count)
    if name == "key":
        return lambda f: "|".join(f.key) or "-"
    if name in ("threshold", "window", "title"):
        value = rule_values.get(name)
        text = human_seconds(value) if name == "window" and isinstance(value, float) else _show(value)
        return lambda f: text
    if name in ("values", "new_value", "baseline", "ratio"):
        return lambda f: _show(f.details.get(name))
    if name == "silent_for":
        return lambda f: human_seconds(float(f.details.get("silent_for", 0.0)))
    try:
        check_path(name, file, line, "summary")
    except RuleError:
        raise RuleError(f"unknown placeholder {{{name}}} (an event field such as initiator.source_ip, or "
                        f"one of {', '.join(PLACEHOLDERS)})", file, line, "summary") from None
    read = field_reader(name)
    return lambda f: _show(read(f))


def entity_readers(kind: str, group_by: tuple[str, ...],
                   entities: Mapping[str, str | None] | None) -> dict[str, Callable[[Firing], Any]]:
    """Alert field -> reader. Aggregate kinds only take defaults that are grouped on (the
    last event's user says nothing about a brute force grouped by IP); ``host`` always."""
    chosen: dict[str, str] = {}
    for name, path in DEFAULT_ENTITIES.items():
        if kind not in AGGREGATE_KINDS or path in group_by or name == "host":
            chosen[name] = path
    for name, override in (entities or {}).items():
        if override is None:
            chosen.pop(name, None)
        else:
            chosen[name] = override
    readers = {name: field_reader(path) for name, path in chosen.items()}
    if chosen.get("user") == "initiator.name":  # fall back to the user id when no name is known
        by_name, by_id = readers["user"], field_reader("initiator.id")
        readers["user"] = lambda f: by_name(f) or by_id(f)
    return readers
