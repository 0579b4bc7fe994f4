"""AIDE: ``aide --check`` text reports, AIDE's one-line syslog format (RHEL/SUSE), and the
report AIDE 0.18 sends to syslog piece by piece (``report_url=syslog:LOG_LOCAL1``).

A report is one record (its many lines joined by ``continues``) and gives one summary
event (``integrity.check`` with the counts) plus one event per added / removed / changed
entry. The report layout moved between releases, all read here:

* 0.15: ``AIDE 0.15.1 found differences...`` then ``Start timestamp: 2017-03-08 10:25:07``,
  ``Total number of files:`` / ``Added files:``..., entries as ``changed: /etc/passwd``,
  details as `` Mtime    : old , new``;
* 0.16: ``Start timestamp: ... -0500 (AIDE 0.16)``, ``... entries:`` counts, details
  with ``|`` between old and new;
* 0.17+: summarized entries ``f   ...    .C... : /etc/sudoers`` (the YlZbpugamcinHAXSEC
  attribute string) and ``End timestamp: ... (run time: 0m 30s)``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from stackwatch.core.event import Event, Target, replace
from stackwatch.parsers.base import ParseContext, ref_at

_OUTLINE = "AIDE "  # 'AIDE found ...', 'AIDE 0.15.1 found ...', 'AIDE successfully initialized...'
_START = "Start timestamp:"
_END = "End timestamp:"
_SECTIONS = {
    "Added entries": "added", "Added files": "added", "Removed entries": "removed",
    "Removed files": "removed", "Changed entries": "changed", "Changed files": "changed",
    "Detailed information about changes": "details",
}
# Headings/lines a report is made of; anything else ends the record (some other format).
_BODY_PREFIXES = (
    " ", "\t", "-", "/", "Summary:", "Added ", "Removed ", "Changed ", "Detailed information",
    "The attributes of the", _END, "Number of entries", "Verbose level", "New AIDE database",
    "Config version", "Entry ", "added: ", "removed: ", "changed: ", "WARNING", "Ignored e2fs",
)
_COUNT_RE = re.compile(r"\s*(Total number of (?:entries|files)|Number of entries|Added (?:entries|files)|"
                       r"Removed (?:entries|files)|Changed (?:entries|files)):\s*(\d+)")
_ENTRY_RE = re.compile(r"([a-zA-Z!?])([ .:=<>+\-a-zA-Z]{4,30}?)\s?: (/.*)")
_PLAIN_ENTRY_RE = re.compile(r"(added|removed|changed): (/.*)")
_FILE_HEAD_RE = re.compile(r"(?:File|Directory|Link|FIFO|Socket|Block device|Character device|Door|Port|"
                           r"Unknown file type): (/.*)")
_DETAIL_RE = re.compile(r"\s+([A-Za-z][\w -]*?)\s*: ")
_TIME_RE = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?: ?([+-]\d{4}))?")
_VERSION_RE = re.compile(r"AIDE,? (?:version )?(\d[\w.]*)")
# Position of each attribute in the summarize_changes string (YlZbpugamcinHAXSEC).
_FLAG_NAMES = ("type", "linkname", "size", "bcount", "perm", "uid", "gid", "atime", "mtime", "ctime",
               "inode", "linkcount", "hashsums", "acl", "xattrs", "selinux", "e2fsattrs", "caps")
_UNCHANGED = frozenset(" .:=+-")
# A changed attribute shows its own letter at its own place in the string, or for the size '>'/'<'.
# The hashsums are 'H' since 0.18 and were 'C' before (0.15-0.17 print 'f   ...    .C... ').
_CHANGE_LETTERS = tuple(frozenset(letters) for letters in zip(
    "YlZbpugamcinHAXSEC", "YlZbpugamcinCAXSEC", strict=True))
_CHANGE_MARKS = frozenset("<>!?")
_SEVERITY = {"file.added": "notice", "file.removed": "warning", "file.changed": "warning"}


def _time(text: str) -> datetime | None:
    match = _TIME_RE.search(text)
    if match is None:
        return None
    stamp, offset = match.groups()
    return datetime.fromisoformat(stamp + (offset or "+0000")).astimezone(UTC)


def _flag_attributes(flags: str) -> list[str]:
    """Changed attributes named by a summarize_changes string ('f   ...    .C... ')."""
    names = []
    for index, char in enumerate(flags[1:len(_FLAG_NAMES)], 1):
        if char not in _UNCHANGED:
            names.append(_FLAG_NAMES[index])
    return names


def _is_change_summary(flags: str) -> bool:
    """Whether ``flags`` is a summarize_changes string. Outside a report's sections (a piece sent
    alone to syslog) a line of the database's own attributes has an entry's shape when its hash
    name is all letters and its base64 value starts with '/' ('TIGER     : /EBIRIPhX...'): one
    report in a few has one. Its letters are not at their attributes' places."""
    for index, char in enumerate(flags[1:], 1):
        if char in _UNCHANGED or char in _CHANGE_MARKS:
            continue
        if index >= len(_CHANGE_LETTERS) or char not in _CHANGE_LETTERS[index]:
            return False
    return True


def _entry_kind(flags: str, section: str) -> str:
    if section in ("added", "removed", "changed"):
        return section
    body = flags[1:].strip()
    if body and set(body) == {"+"}:
        return "added"
    if body and set(body) == {"-"}:
        return "removed"
    return "changed"


class AideReportParser:
    """Record parser for ``aide --check`` reports (one report = one record)."""

    name = "aide"

    def sniff(self, line: str) -> bool:
        if line.startswith(_START):
            return True
        return line.startswith(_OUTLINE) and ("found" in line or "initialized" in line)

    def continues(self, first: str, line: str) -> bool:
        if not line.strip() or line.startswith(_BODY_PREFIXES):
            return True
        if line.startswith(_START):  # 0.15 prints the outline first, then the start time
            return first.startswith(_OUTLINE)
        if line.startswith(_OUTLINE):  # 0.16+ prints the start time first, then the outline
            return first.startswith(_START)
        return bool(_ENTRY_RE.match(line) or _FILE_HEAD_RE.match(line))

    def parse(self, lines: list[str], ctx: ParseContext) -> list[Event]:
        counts: dict[str, int] = {}
        start: datetime | None = None
        version = ""
        outline = ""
        section = ""
        entries: dict[str, list[Any]] = {}  # path -> [kind, flag attributes, line index, detail names]
        current: list[Any] | None = None
        for index, line in enumerate(lines):
            if line.startswith(_START):
                start = _time(line)
                match = _VERSION_RE.search(line)
                version = match.group(1) if match else version
                continue
            if line.startswith(_OUTLINE):
                outline = line.strip()
                match = re.match(r"AIDE (\d[\w.]*) ", line)
                version = match.group(1) if match else version
                continue
            stripped = line.rstrip()
            heading = stripped[:-1] if stripped.endswith(":") else ""
            if heading in _SECTIONS:
                section = _SECTIONS[heading]
                continue
            if heading.endswith(" entries") and " and " in heading:  # report_grouped=false
                section = "mixed"
                continue
            if heading.startswith("The attributes of the"):
                section = "database"
                continue
            count = _COUNT_RE.match(line)
            if count:
                key = count.group(1).split()[0].lower()
                counts["total" if key in ("total", "number") else key] = int(count.group(2))
                continue
            if section == "details":
                head = _FILE_HEAD_RE.match(line)
                if head:
                    current = entries.setdefault(head.group(1), ["changed", [], index, []])
                    continue
                detail = _DETAIL_RE.match(line)
                if detail and current is not None:
                    current[3].append(detail.group(1).strip().lower().replace(" ", "_"))
                continue
            if section in ("added", "removed", "changed", "mixed"):
                plain = _PLAIN_ENTRY_RE.match(line)
                if plain:
                    entries[plain.group(2)] = [plain.group(1), [], index, []]
                    continue
                entry = _ENTRY_RE.match(line)
                if entry:
                    flags = entry.group(1) + entry.group(2)
                    kind = _entry_kind(flags, section)
                    entries[entry.group(3)] = [kind, _flag_attributes(flags) if kind == "changed" else [],
                                               index, []]
        if not outline and not counts and start is None:
            return []
        return self._events(lines, ctx, outline, counts, start, version, entries)

    @staticmethod
    def _events(lines: list[str], ctx: ParseContext, outline: str, counts: dict[str, int],
                start: datetime | None, version: str, entries: dict[str, list[Any]]) -> list[Event]:
        time = start or ctx.last_time or ctx.received
        by_kind = {"added": 0, "removed": 0, "changed": 0}
        for kind, *_ in entries.values():
            by_kind[kind] += 1
        summary = {
            "total": counts.get("total", 0),
            "added": counts.get("added", by_kind["added"]),
            "removed": counts.get("removed", by_kind["removed"]),
            "changed": counts.get("changed", by_kind["changed"]),
        }
        differs = any(summary[k] for k in ("added", "removed", "changed")) or "found differences" in outline
        attrs: dict[str, Any] = dict(summary)
        if version:
            attrs["version"] = version
        base: dict[str, Any] = {"received": ctx.received, "host": ctx.host, "service": "aide",
                                "kind": "aide", "origin": ctx.origin, "time": time}
        events = [Event(
            **base, severity="warning" if differs else "info", action="integrity.check",
            outcome="failure" if differs else "success", message=outline or "AIDE report",
            attrs=attrs, raw="\n".join(lines), ref=ctx.ref,
        )]
        for path, (kind, flag_names, index, details) in entries.items():
            action = f"file.{kind}"
            names = details or flag_names
            events.append(Event(
                **base, severity=_SEVERITY[action], action=action, message=f"{kind}: {path}",
                target=Target(type="file", name=path),
                attrs={"attributes": names if kind == "changed" else []},
                raw=lines[index], ref=ref_at(ctx.ref, index),
            ))
        return events


def _syslog_fields(message: str) -> dict[str, Any] | None:
    """AIDE's syslog_format (RHEL/SUSE patch): 'summary;total_number_of_files=1000;...'
    and one 'file=/etc/x;SHA256_old=..;SHA256_new=..' (or 'dir=', 'added=', ...) per entry."""
    parts = [p.strip() for p in message.strip().split(";") if p.strip()]
    if not parts:
        return None
    if parts[0] == "summary":
        values = dict(p.partition("=")[::2] for p in parts[1:])
        def number(*names: str) -> int:
            return next((int(values[n]) for n in names if values.get(n, "").isdigit()), 0)
        attrs = {"total": number("total_number_of_files", "total_number_of_entries"),
                 "added": number("added_files", "added_entries"),
                 "removed": number("removed_files", "removed_entries"),
                 "changed": number("changed_files", "changed_entries")}
        differs = attrs["added"] or attrs["removed"] or attrs["changed"]
        return {"service": "aide", "kind": "aide", "action": "integrity.check", "attrs": attrs,
                "outcome": "failure" if differs else "success", "severity": "warning" if differs else "info"}
    key, _, path = parts[0].partition("=")
    if key not in ("file", "dir", "link", "added", "removed", "changed") or not path.startswith("/"):
        return None
    rest = parts[1:]
    kind = key if key in ("added", "removed", "changed") else "changed"
    if rest and rest[0] in ("added", "removed"):
        kind = rest[0]
    names = []
    for part in rest:
        name = part.partition("=")[0]
        if name.endswith("_old"):
            names.append(name[:-4].lower())
    action = f"file.{kind}"
    return {"service": "aide", "kind": "aide", "action": action, "severity": _SEVERITY[action],
            "target": Target(type="file", name=path),
            "attrs": {"attributes": names if kind == "changed" else []}}


def _report_chunk_fields(message: str) -> dict[str, Any] | None:
    """AIDE 0.18's ``report_url=syslog:``: the report sent a piece per message, each entry
    ('f+++...: /path') and the summary in messages of their own, the newlines inside a
    piece escaped by the relay (rsyslog writes them '#012')."""
    text = message.replace("#012", "\n").replace("#011", "\t").strip()
    entry = _ENTRY_RE.fullmatch(text)
    if entry is not None and _is_change_summary(flags := entry.group(1) + entry.group(2)):
        kind = _entry_kind(flags, "")
        action = f"file.{kind}"
        return {"service": "aide", "kind": "aide", "action": action, "severity": _SEVERITY[action],
                "target": Target(type="file", name=entry.group(3)),
                "attrs": {"attributes": _flag_attributes(flags) if kind == "changed" else []}}
    if text.startswith("Summary:"):
        counts: dict[str, int] = {}
        for line in text.splitlines()[1:]:
            count = _COUNT_RE.match(line)
            if count:
                key = count.group(1).split()[0].lower()
                counts["total" if key in ("total", "number") else key] = int(count.group(2))
        differs = any(counts.get(k) for k in ("added", "removed", "changed"))
        return {"service": "aide", "kind": "aide", "action": "integrity.check", "attrs": counts,
                "outcome": "failure" if differs else "success", "severity": "warning" if differs else "info"}
    return None


def report_in_message(host: str, time: datetime, message: str, ctx: ParseContext) -> list[Event]:
    """A whole ``aide --check`` report sent as one syslog message (newlines inside one TCP or
    octet-counted frame: ``logger "$(aide --check)"``, rsyslog's imfile with ``startmsg.regex``,
    which escapes them as '#012' by default): the events its file form gives, from ``host``,
    the syslog header's ``time`` standing in for a report without its start timestamp; [] when
    the message is not a report. The record's entries get refs of their own below the
    message's (``<ref>/line:<n>``): a message's ref is a counter whose next value is the next
    message's, where a file's are line numbers."""
    text = message.replace("#012", "\n").replace("#011", "\t")
    lines = text.split("\n")
    if len(lines) < 2 or not PARSER.sniff(lines[0]):
        return []
    own = ParseContext(host=host, origin=ctx.origin, received=ctx.received, last_time=time, service="aide",
                       ref=f"{ctx.ref}/line:0", live=ctx.live)
    events = PARSER.parse(lines, own)
    if not events:
        return []
    return [replace(events[0], ref=ctx.ref), *events[1:]]


class AideMessageParser:
    name = "aide"
    programs = frozenset({"aide"})

    def parse_message(self, program: str, message: str) -> dict[str, Any] | None:
        return _syslog_fields(message) or _report_chunk_fields(message)


PARSER = AideReportParser()
MESSAGE_PARSER = AideMessageParser()
