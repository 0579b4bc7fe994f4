"""An alert's evidence as an operator reads it: each raw record parsed again into its fields
(a CADF event decoded, not shown as escaped JSON), and the search that finds every event
behind the alert.

The search link speaks the dashboard's query language (``field:value AND ...`` at
``/search?q=...&from=...&to=...``); ``search_terms`` is the one place that maps an alert
to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any, Final
from urllib.parse import urlencode

import msgspec

from stackwatch.core.alert import Alert, Evidence
from stackwatch.parsers.framing import parse_text

GROUP_FIELDS: Final = {
    "initiator.source_ip": "source_ip",
    "initiator.name": "user",
    "initiator.id": "user",
    "initiator.project": "project",
    "host": "host",
    "service": "service",
    "request_id": "request_id",
    "severity": "severity",
    "action": "action",
    "outcome": "outcome",
    "kind": "kind",
}
"""A rule's ``group_by`` path -> the search field that matches it."""
ENTITY_FIELDS: Final = (("source_ip", "source_ip"), ("user", "user"), ("project", "project"))
"""When the rule is unknown: the alert's entity attribute -> search field."""
SKIPPED: Final = frozenset({"raw", "time", "received", "origin", "ref"})
_BARE: Final = re.compile(r"^[\w.:/@-]+$")


def search_terms(alert: Alert, group_by: Sequence[str] = ()) -> list[str]:
    """``field:value`` terms naming what the alert is about: the rule's key fields (the values
    of ``group_by`` in ``alert.key``), else the alert's source IP, user and project."""
    terms: list[str] = []
    values = alert.key.split("|") if group_by else []
    for path, value in zip(group_by, values, strict=False):
        name = GROUP_FIELDS.get(path)
        if name and value:
            terms.append(f"{name}:{_quoted(value)}")
    if not terms:
        terms = [f"{name}:{_quoted(getattr(alert, attr))}"
                 for attr, name in ENTITY_FIELDS if getattr(alert, attr)]
    return list(dict.fromkeys(terms))  # initiator.name and .id may both give user:


def search_link(alert: Alert, group_by: Sequence[str] = ()) -> str | None:
    """``/search?q=...&from=...&to=...``: the events behind the alert, from its first to its
    last firing (inclusive); None when nothing names them."""
    terms = search_terms(alert, group_by)
    if not terms:
        return None
    until = alert.last_seen + timedelta(seconds=1)
    return "/search?" + urlencode({"q": " AND ".join(terms), "from": alert.time.isoformat(),
                                   "to": until.isoformat()})


def _quoted(value: str) -> str:
    return value if _BARE.match(value) else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def evidence_fields(item: Evidence) -> list[tuple[str, str]]:
    """The record parsed again, as (field, value) rows with the empty ones left out; the
    record's own parser decodes it (CADF and notifications from their JSON). A record no
    parser knows gives its message only."""
    year = item.time.year if item.time is not None else None
    events = parse_text(item.raw, origin="evidence", year=year)
    if not events:
        return []
    return list(_flatten("", msgspec.to_builtins(events[0])))


def _flatten(prefix: str, value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            if not prefix and key in SKIPPED:
                continue
            yield from _flatten(f"{prefix}.{key}" if prefix else str(key), inner)
    elif isinstance(value, list):
        if value and all(isinstance(v, (str, int, float, bool)) for v in value):
            yield prefix, ", ".join(str(v) for v in value)
        else:
            for index, inner in enumerate(value):
                yield from _flatten(f"{prefix}[{index}]", inner)
    elif value not in (None, "", [], {}):
        yield prefix, str(value)
