"""rkhunter: ``/var/log/rkhunter.log`` and its syslog messages.

The log prefixes each line with ``[HH:MM:SS]`` (no date: the year/day come from the
previous record or the receive time) and indents the details of a warning on the
following lines, which are joined into the warning's record::

    [12:00:01] Warning: The file properties have changed:
    [12:00:01]          File: /usr/bin/ssh
    [12:00:01]          Current hash: 3a...
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from typing import Any

from stackwatch.core.event import Event
from stackwatch.parsers.base import ParseContext

_LINE_RE = re.compile(r"\[(\d\d):(\d\d):(\d\d)\](?: (.*))?")
_CHECK_RE = re.compile(r"(?P<what>\S.*?)\s*\[ (?P<result>[A-Za-z ]+?) \]$")
_FILE_RE = re.compile(r"\bFile: (\S+)")
_RESULT_SEVERITY = {"warning": "warning", "found": "warning", "infected": "critical", "error": "error"}


def _fields(text: str) -> dict[str, Any]:
    """Event fields of one rkhunter message (continuation details included)."""
    first = text.split("\n", 1)[0].strip()
    if first.startswith("Warning:"):
        attrs: dict[str, Any] = {"warning": first[8:].strip()}
        path = _FILE_RE.search(text)
        if path:
            attrs["file"] = path.group(1)
        return {"action": "rootkit.warning", "severity": "warning", "attrs": attrs}
    check = _CHECK_RE.match(first)
    if check:
        result = check.group("result").strip()
        severity = _RESULT_SEVERITY.get(result.lower(), "info")
        fields: dict[str, Any] = {"severity": severity,
                                  "attrs": {"check": check.group("what"), "result": result}}
        if severity != "info":
            fields["action"] = "rootkit.warning"
        return fields
    if first.startswith("Info:"):
        return {"severity": "info"}
    if first.startswith("Error:") or first.startswith("ERROR:"):
        return {"severity": "error"}
    return {}


class RkhunterLogParser:
    name = "rkhunter"

    def sniff(self, line: str) -> bool:
        return (line[:1] == "[" and line[3:4] == ":" and line[9:10] == "]" and line[10:11] in ("", " ")
                and _LINE_RE.match(line) is not None)

    def continues(self, first: str, line: str) -> bool:
        # a warning's details carry its stamp and are indented under it; indented
        # 'Checking ...  [ OK ]' lines are checks of their own
        return (line[:10] == first[:10] and line[11:13] == "  " and first[11:19] == "Warning:"
                and not line.rstrip().endswith("]"))

    def parse(self, lines: list[str], ctx: ParseContext) -> list[Event]:
        match = _LINE_RE.match(lines[0])
        if match is None:
            return []
        hour, minute, second, first = match.groups()
        first = first or ""
        day = (ctx.last_time or ctx.received).astimezone(UTC)
        when = datetime.combine(day.date(), time(int(hour), int(minute), int(second)), UTC)
        message = "\n".join([first, *(line[11:].strip() for line in lines[1:])])
        fields = _fields(message)
        return [Event(time=when, received=ctx.received, host=ctx.host, service="rkhunter", kind="rkhunter",
                      message=message, raw="\n".join(lines), origin=ctx.origin, ref=ctx.ref, **fields)]


class RkhunterMessageParser:
    name = "rkhunter"
    programs = frozenset({"rkhunter"})

    def parse_message(self, program: str, message: str) -> dict[str, Any] | None:
        return _fields(message) or None


PARSER = RkhunterLogParser()
MESSAGE_PARSER = RkhunterMessageParser()
