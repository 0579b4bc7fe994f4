"""JSON records: one document per line, or a pretty-printed document over several lines.

The document is decoded once with orjson, then offered to each registered JSON shape
(registry.json_shapes(): notifications, CADF, oslo.log JSONFormatter, eve.json, wazuh)
in order; the first that returns events wins. A document no shape claims becomes a
generic ``json`` event. Invalid or truncated JSON raises, so the framing keeps the
record as ``unparsed`` with its raw text.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import orjson

from stackwatch.core.event import Event
from stackwatch.parsers.base import ParseContext
from stackwatch.parsers.cadf import parse_time
from stackwatch.parsers.registry import json_shapes

MAX_JSON_LINES = 2000
"""A pretty-printed document longer than this is cut (and will not decode: unparsed)."""

_MESSAGE_CHARS = 300
_TIME_KEYS = ("timestamp", "@timestamp", "time", "eventTime", "asctime")
_HOST_KEYS = ("hostname", "host")


def brace_delta(line: str) -> int:
    """Net ``{``/``[`` minus ``}``/``]`` of one line, ignoring those inside JSON strings
    (a JSON string never spans lines, so each line starts outside one)."""
    if '"' not in line and "\\" not in line:
        return line.count("{") + line.count("[") - line.count("}") - line.count("]")
    depth = 0
    in_string = escaped = False
    for char in line:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
    return depth


@dataclass(slots=True)
class _OpenDocument:
    first: str  # kept so an id() reused by another string is never mistaken for this one
    depth: int
    lines: int


class JsonRecordParser:
    """Record parser for JSON documents (``{`` at the start of a line)."""

    name = "json"

    def __init__(self) -> None:
        # Depth of the pretty-printed documents being joined, keyed by id(first line):
        # ``continues`` only sees the first line and the candidate, so the running brace
        # depth lives here. Entries go when the document closes; the table is bounded.
        self._open: dict[int, _OpenDocument] = {}
        self._lock = threading.Lock()

    def sniff(self, line: str) -> bool:
        return line[:1] == "{"

    def continues(self, first: str, line: str) -> bool:
        # Only a document left open by its first line continues, and only with lines that
        # look like the inside/end of pretty-printed JSON: a truncated one-line document
        # must not swallow the records that follow it.
        if line[:1] not in (" ", "\t", "}", "]", '"') or first.endswith("}"):
            return False
        key = id(first)
        with self._lock:
            doc = self._open.get(key)
            if doc is None or doc.first is not first:
                depth = brace_delta(first)
                if depth <= 0:
                    return False
                if len(self._open) > 256:  # abandoned documents (streams cut mid-way)
                    self._open.clear()
                doc = self._open[key] = _OpenDocument(first, depth, 1)
            if doc.depth <= 0 or doc.lines >= MAX_JSON_LINES:
                self._open.pop(key, None)
                return False
            doc.depth += brace_delta(line)
            doc.lines += 1
            if doc.depth <= 0:
                doc.depth = 0  # closed: the next line starts a new record
            return True

    def parse(self, lines: list[str], ctx: ParseContext) -> list[Event]:
        if len(lines) > 1:
            with self._lock:
                self._open.pop(id(lines[0]), None)
        raw = "\n".join(lines)
        obj = orjson.loads(raw)  # invalid/truncated -> raises -> unparsed, raw kept
        if isinstance(obj, dict):
            for shape in json_shapes():
                events = shape(obj, raw, ctx)
                if events:
                    return list(events)
        return [generic_event(obj, raw, ctx)]


def _scalars(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict):
        return {}
    return {str(k): v for k, v in obj.items() if v is None or isinstance(v, str | int | float | bool)}


def generic_event(obj: Any, raw: str, ctx: ParseContext) -> Event:
    """A JSON document no shape knows: top-level scalars in attrs, a short rendering as message."""
    attrs = _scalars(obj)
    message = obj.get("message") if isinstance(obj, dict) else None
    if not isinstance(message, str) or not message:
        message = orjson.dumps(obj).decode()
    time = next((t for key in _TIME_KEYS if (t := parse_time(attrs.get(key))) is not None), None)
    host = next((attrs[key] for key in _HOST_KEYS if isinstance(attrs.get(key), str) and attrs[key]), "")
    return Event(
        time=time or ctx.received,
        received=ctx.received,
        host=host or ctx.host,
        service=ctx.service,
        kind="json",
        message=message[:_MESSAGE_CHARS],
        attrs=attrs,
        raw=raw,
        origin=ctx.origin,
        ref=ctx.ref,
    )


PARSER = JsonRecordParser()
