"""Dotted Event field paths: validation at load time and fast getters for the hot path.

A getter is built once per rule field (``operator.attrgetter`` for struct fields, a
small closure for ``attrs.*``), so evaluating a condition never splits strings.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, Final

from stackwatch.core.errors import RuleError
from stackwatch.core.event import Event, Initiator, Target

Getter = Callable[[Event], Any]

EVENT_FIELDS: Final = frozenset(Event.__struct_fields__)
GROUP_FIELDS: Final = {"initiator": frozenset(Initiator.__struct_fields__),
                       "target": frozenset(Target.__struct_fields__)}


def check_path(path: Any, file: str = "", line: int | None = None, field: str | None = None) -> str:
    """Raise RuleError unless ``path`` names an Event field (``attrs.<anything>`` allowed)."""
    if not isinstance(path, str) or not path:
        raise RuleError(f"field path must be a non-empty string, got {path!r}", file, line, field)
    head, _, rest = path.partition(".")
    if head not in EVENT_FIELDS:
        raise RuleError(f"unknown event field {head!r} (known: {', '.join(sorted(EVENT_FIELDS))})",
                        file, line, field or path)
    if head in GROUP_FIELDS:
        if not rest:
            raise RuleError(f"{head!r} is a group; use {head}.<{'|'.join(sorted(GROUP_FIELDS[head]))}>",
                            file, line, field or path)
        if rest not in GROUP_FIELDS[head]:
            known = ", ".join(sorted(GROUP_FIELDS[head]))
            raise RuleError(f"unknown field {rest!r} of {head} (known: {known})",
                            file, line, field or path)
    elif head == "attrs":
        if not rest or "" in rest.split("."):
            raise RuleError("attrs needs a key: attrs.<name>", file, line, field or path)
    elif rest:
        raise RuleError(f"{head!r} has no sub-fields", file, line, field or path)
    return path


def _nested(keys: tuple[str, ...]) -> Getter:
    first, rest = keys[0], keys[1:]

    def get(event: Event) -> Any:
        value = event.attrs.get(first)
        for key in rest:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    return get


def getter(path: str) -> Getter:
    """A fast accessor for a validated path; absent values read as None."""
    head, _, rest = path.partition(".")
    if head == "attrs":
        keys = tuple(rest.split("."))
        if len(keys) == 1:
            key = keys[0]
            return lambda event: event.attrs.get(key)
        return _nested(keys)
    return attrgetter(path)
