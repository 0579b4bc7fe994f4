"""ClamAV: what clamd, clamscan, freshclam and clamav-milter write (via syslog or their logs).

``<path>: <Signature> FOUND`` is the finding (``malware.found``, critical); errors and
freshclam update failures are kept with their severity so a silent AV can be noticed.

Besides syslog, the files ClamAV writes itself are read (``ClamavLogParser``):

* clamd's ``LogFile`` with ``LogTime yes``: ``Sun Dec  6 20:23:36 2026 -> <message>``;
* the same without LogTime (Debian's default): bare ``<path>: <Signature> FOUND`` lines
  (a stream scanned through clamdscan --stream is ``instream(local): ...``), framed by
  ``+++ Started at <date>`` / ``--- Stopped at <date>``; its other lines carry nothing
  to recognise them by and stay unparsed (kept raw and counted);
* ``clamscan``/``clamdscan`` output and ``--log`` files: per-file ``FOUND``/``OK`` lines and a
  ``----------- SCAN SUMMARY -----------`` block (its ``Start Date:`` times the findings of a
  ``--log`` session, which begins with a line of dashes).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from stackwatch.core.event import Event, Target
from stackwatch.parsers.base import ParseContext, ref_at

# '/tmp/eicar.com: Win.Test.EICAR_HDB-1 FOUND' (clamd may add '(md5:size)' to the name)
_FOUND_RE = re.compile(
    r"(?:\S+ -> )?(?P<path>.+?): (?P<sig>\S+?)(?:\((?P<hash>[0-9a-f]{32}):(?P<size>\d+)\))? FOUND$")
_MILTER_RE = re.compile(r"(?P<id>[0-9A-Za-z]+): .*?(?:virus|infected)[: ]+(?P<sig>\S+)", re.IGNORECASE)
_UPDATE_FAILED = ("Incremental update failed", "Update failed", "Can't download", "Can't connect to port",
                  "Error while reading database from", "Database load killed", "Can't query",
                  "Mirror not synchronized", "failed to download", "Failed to update")


class ClamavParser:
    name = "clamav"
    programs = frozenset({"clamd", "clamscan", "freshclam", "clamav-milter", "clamdscan", "clamonacc"})

    def parse_message(self, program: str, message: str) -> dict[str, Any] | None:
        text = message.strip()
        if text.endswith(" FOUND"):
            match = _FOUND_RE.match(text)
            if match:
                attrs: dict[str, Any] = {"signature": match.group("sig")}
                if match.group("hash"):
                    attrs["md5"], attrs["size"] = match.group("hash"), int(match.group("size"))
                path = match.group("path")
                return {"action": "malware.found", "severity": "critical", "outcome": "success",
                        "target": Target(type="file" if path.startswith("/") else "stream", name=path),
                        "attrs": attrs}
        if program == "clamav-milter" and ("infected" in text.lower() or "virus" in text.lower()):
            match = _MILTER_RE.search(text)
            if match:
                return {"action": "malware.found", "severity": "critical",
                        "target": Target(type="message", id=match.group("id")),
                        "attrs": {"signature": match.group("sig")}}
        if text.startswith("ERROR:") or text.startswith("LibClamAV Error:"):
            return {"severity": "error", "attrs": {"error": text.partition(":")[2].strip()}}
        if text.startswith("WARNING:") or text.startswith("LibClamAV Warning:"):
            return {"severity": "warning"}
        if program == "freshclam" and any(marker in text for marker in _UPDATE_FAILED):
            return {"action": "av.update", "outcome": "failure", "severity": "warning"}
        if "Database correctly reloaded" in text:
            return {"action": "av.reload", "outcome": "success"}
        if "Database updated" in text or text.startswith("daily.cvd updated") or text.startswith(
                "daily.cld updated"):
            return {"action": "av.update", "outcome": "success"}
        return None


_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec"), 1)}
_WEEKDAYS = frozenset({"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"})
# 'Sun Dec  6 20:23:36 2026' (ctime, as clamd's LogTime and its Started/Stopped lines write it)
_CTIME = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (\w{3}) ([ \d]\d) (\d\d:\d\d:\d\d) (\d{4})"
_LOGTIME_RE = re.compile(_CTIME + " -> (.*)$")
_SESSION_RE = re.compile(r"(?:\+\+\+ Started|--- Stopped) at " + _CTIME + "$")
_SCAN_RE = re.compile(r"(?:/|instream\(|fd\[).*: (?:.+ FOUND|OK|Empty file|Excluded|.+ ERROR)$")
_LOG_SESSION = "-" * 79  # clamscan --log starts each run with this line
_SUMMARY = "----------- SCAN SUMMARY -----------"
_SUMMARY_RE = re.compile(r"([A-Z][A-Za-z ]+): (.*)$")
_SUMMARY_COUNTS = {"Known viruses": "known_viruses", "Scanned directories": "scanned_directories",
                   "Scanned files": "scanned_files", "Infected files": "infected", "Total errors": "errors"}


def _ctime(month: str, day: str, clock: str, year: str) -> datetime | None:
    if month not in _MONTHS:
        return None
    return datetime.fromisoformat(f"{year}-{_MONTHS[month]:02d}-{int(day):02d}T{clock}").replace(tzinfo=UTC)


def _summary(lines: list[str]) -> tuple[dict[str, Any], datetime | None]:
    attrs: dict[str, Any] = {}
    start = None
    for line in lines:
        match = _SUMMARY_RE.match(line)
        if match is None:
            continue
        name, value = match.group(1), match.group(2).strip()
        if name in _SUMMARY_COUNTS and value.isdigit():
            attrs[_SUMMARY_COUNTS[name]] = int(value)
        elif name == "Engine version":
            attrs["engine_version"] = value
        elif name == "Start Date":  # '2026:12:06 20:23:27'
            start = datetime.strptime(value, "%Y:%m:%d %H:%M:%S").replace(tzinfo=UTC)
    return attrs, start


class ClamavLogParser:
    """Record parser for clamd's LogFile and clamscan/clamdscan output (see the module docstring)."""

    name = "clamav_log"

    def sniff(self, line: str) -> bool:
        head = line[:1]
        if line[:3] in _WEEKDAYS:  # a syslog line starts with its month: rejected here, no regex run
            return _LOGTIME_RE.match(line) is not None
        if head == "-":
            return line in (_LOG_SESSION, _SUMMARY) or _SESSION_RE.match(line) is not None
        if head == "+":
            return _SESSION_RE.match(line) is not None
        return line.endswith(("FOUND", ": OK", ": Empty file", ": Excluded", "ERROR")) and (
            _SCAN_RE.match(line) is not None)

    def continues(self, first: str, line: str) -> bool:
        if first == _LOG_SESSION:  # a clamscan --log run: its findings, then its summary
            return line != _LOG_SESSION and (not line or line == _SUMMARY or _SCAN_RE.match(line) is not None
                                             or _SUMMARY_RE.match(line) is not None)
        if first == _SUMMARY:
            return line != _SUMMARY and _SUMMARY_RE.match(line) is not None
        return False

    def parse(self, lines: list[str], ctx: ParseContext) -> list[Event]:
        first = lines[0]
        if first in (_LOG_SESSION, _SUMMARY):
            return self._scan(lines, ctx)
        match = _LOGTIME_RE.match(first)
        if match is not None:
            when, program, message = _ctime(*match.groups()[:4]), "clamd", match.group(5)
        else:
            session = _SESSION_RE.match(first)
            when = _ctime(*session.groups()) if session else None
            program, message = ctx.service if ctx.service in PARSER.programs else "clamd", first
        fields = PARSER.parse_message(program, message) or {}
        return [Event(time=when or ctx.last_time or ctx.received, received=ctx.received, host=ctx.host,
                      service=program, kind="clamav", message=message, raw=first, origin=ctx.origin,
                      ref=ctx.ref, **fields)]

    @staticmethod
    def _scan(lines: list[str], ctx: ParseContext) -> list[Event]:
        """One clamscan run: an ``av.scan`` summary, and a finding per FOUND line."""
        attrs, start = _summary(lines)
        when = start or ctx.last_time or ctx.received
        base: dict[str, Any] = {"received": ctx.received, "host": ctx.host, "service": "clamscan",
                                "kind": "clamav", "origin": ctx.origin, "time": when}
        events = []
        if attrs:
            infected = attrs.get("infected", 0)
            events.append(Event(**base, action="av.scan", outcome="failure" if infected else "success",
                                severity="warning" if infected else "info", attrs=attrs,
                                message=f"clamscan: {infected} infected file(s)", raw="\n".join(lines),
                                ref=ctx.ref))
        for index, line in enumerate(lines):
            if line.endswith(" FOUND"):
                fields = PARSER.parse_message("clamscan", line)
                if fields:
                    events.append(Event(**base, message=line, raw=line, ref=ref_at(ctx.ref, index), **fields))
        return events


PARSER = ClamavParser()
LOG_PARSER = ClamavLogParser()
