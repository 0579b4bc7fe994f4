"""rkhunter: ``/var/log/rkhunter.log`` and its syslog messages.

The log prefixes each line with ``[HH:MM:SS]`` (no date: the year/day come from the
previous record or the receive time) and indents the details of a warning on the
following lines, which are joined into the warning's record::

    [12:00:01] Warning: The file properties have changed:
    [12:00:01]          File: /usr/bin/ssh
    [12:00:01]          Current hash: 3a...

Its cron/report output (``rkhunter --cronjob --report-warnings-only``, what Debian's daily
job mails) has the same warnings without the stamps, details indented by nine spaces. Such
a file is read when its name says rkhunter (``Warning:`` alone says too little about a
line's format); the same lines sent with ``| logger -t rkhunter`` are read as messages.
Via syslog (``USE_SYSLOG``) rkhunter itself only says that a run started, how long it took
and, when it warned, "Please inspect this machine, because it may be infected." -- that
last line is the warning there.
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
_REPORT_WARNING = "Warning: "
_REPORT_DETAIL = " " * 9
_UNSTAMPED_DETAIL = " " * 11  # under the 11 columns of '[HH:MM:SS] '
_INFECTED = "Please inspect this machine, because it may be infected."
# '[ Found ]' is no finding: rkhunter says so of what it expects (the passwd file, sshd's and
# syslog's configuration, in green on screen); what it finds of a rootkit it reports '[ Warning ]'
_RESULT_SEVERITY = {"warning": "warning", "infected": "critical", "error": "error"}


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
    if first == _INFECTED:  # the one warning rkhunter itself sends to syslog
        return {"action": "rootkit.warning", "severity": "warning", "attrs": {"warning": first}}
    if first.startswith("Error:") or first.startswith("ERROR:"):
        return {"severity": "error"}
    return {}


class RkhunterLogParser:
    name = "rkhunter"

    def sniff(self, line: str) -> bool:
        if line[:1] == "W":
            return line.startswith(_REPORT_WARNING)
        return (line[:1] == "[" and line[3:4] == ":" and line[9:10] == "]" and line[10:11] in ("", " ")
                and _LINE_RE.match(line) is not None)

    def continues(self, first: str, line: str) -> bool:
        if first[:1] == "W":  # cron/report output: the details under a warning
            return line.startswith(_REPORT_DETAIL) and line[9:10] != " "
        # a warning's details are indented nine spaces under it, stamped (not always with its
        # second: the clock moves on while rkhunter writes) or, for a wrapped message, not
        # stamped at all; indented 'Checking ...  [ OK ]' lines are checks of their own
        if first[11:19] != "Warning:":
            return False
        if line[:1] == "[":
            return line[11:20] == _REPORT_DETAIL and not line.rstrip().endswith("]")
        return line.startswith(_UNSTAMPED_DETAIL)

    def parse(self, lines: list[str], ctx: ParseContext) -> list[Event]:
        if lines[0].startswith(_REPORT_WARNING):
            return self._report(lines, ctx)
        match = _LINE_RE.match(lines[0])
        if match is None:
            return []
        hour, minute, second, first = match.groups()
        first = first or ""
        day = (ctx.last_time or ctx.received).astimezone(UTC)
        when = datetime.combine(day.date(), time(int(hour), int(minute), int(second)), UTC)
        message = "\n".join([first, *(line[11:].strip() if line[:1] == "[" else line.strip()
                                      for line in lines[1:])])
        fields = _fields(message)
        return [Event(time=when, received=ctx.received, host=ctx.host, service="rkhunter", kind="rkhunter",
                      message=message, raw="\n".join(lines), origin=ctx.origin, ref=ctx.ref, **fields)]


    @staticmethod
    def _report(lines: list[str], ctx: ParseContext) -> list[Event]:
        """A warning of the cron/report output; not rkhunter's unless the file is named so."""
        if not ctx.service.startswith("rkhunter"):
            return []
        message = "\n".join(line.strip() for line in lines)
        return [Event(time=ctx.last_time or ctx.received, received=ctx.received, host=ctx.host,
                      service="rkhunter", kind="rkhunter", message=message, raw="\n".join(lines),
                      origin=ctx.origin, ref=ctx.ref, **_fields(message))]


class RkhunterMessageParser:
    name = "rkhunter"
    programs = frozenset({"rkhunter"})

    def parse_message(self, program: str, message: str) -> dict[str, Any] | None:
        return _fields(message) or None


PARSER = RkhunterLogParser()
MESSAGE_PARSER = RkhunterMessageParser()
