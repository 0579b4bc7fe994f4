"""Syslog records: RFC 3164, RFC 5424 and the file formats rsyslog writes.

Accepted shapes (an optional ``<PRI>`` may precede any of them):

* RFC 3164 / RSYSLOG_TraditionalFileFormat: ``Mmm dd HH:MM:SS host tag[pid]: msg``; also
  without host (what libc sends to /dev/log), without pid, old ``sshd(pam_unix)[1]:`` tags,
  and syslog-ng's ``YYYY Mmm dd HH:MM:SS`` variant.
* RSYSLOG_FileFormat: ``2026-11-27T08:40:44.123456+00:00 host tag: msg`` (any ISO 8601 stamp).
* RFC 5424 / RSYSLOG_SyslogProtocol23Format: ``<PRI>1 TS HOST APP PROCID MSGID SD MSG``.
* ``host tag[pid]: msg`` without a stamp (journal exports); time falls back to ``received``.
* The Open vSwitch log file line ``2016-...Z|00001|bridge|INFO|msg`` (carried to the ovs
  message parser; the program comes from ``ctx.service``, default ``ovs-vswitchd``).

The program's message is then handed to the message parser registered for it (sshd -> auth,
kernel -> kernel_net...). A message parser that raises does not lose the record.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec

from stackwatch.core.event import NO_INITIATOR, NO_TARGET, Event
from stackwatch.parsers import registry
from stackwatch.parsers.aide import report_in_message
from stackwatch.parsers.base import ParseContext
from stackwatch.parsers.oslo_log import KEYSTONE_PROGRAMS

MONTHS: Final = {"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6,
          "Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12}
FACILITIES: Final = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
              "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
              "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7")
SEVERITY_NAMES: Final = ("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug")

_TS3164: Final = re.compile(r"([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))? +")
_TS_YEAR: Final = re.compile(r"(\d{4}) ([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d) +")
# TAG, optional [PID], colon. A second word is allowed because old syslogds wrote
# 'syslogd 1.4.1: restart.' (loghub's oracle keeps 'syslogd 1.4.1' as the component).
_TAG: Final = re.compile(r"([^\s\[:]+(?: [^\s\[:]+)?)(?:\[([^\]\s]*)\])?: *")
# '2020-03-23 06:47:42.801612-0700  host tag: msg' (macOS / some journal exports): an ISO stamp
# with a space, always with an offset -- which keeps oslo.log's '2017-05-16 00:00:00.008 25746' out.
_ISO_SPACE: Final = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d) ")
_NO_STAMP: Final = re.compile(r"(?:[\w.-]+ )?[\w./()-]+\[\d+\]: ")
_UPTIME: Final = re.compile(r"\[ *(\d+\.\d+)\] ?")
_SOLARIS_ID: Final = re.compile(r"\[ID (\d+) ([\w.]+)\] ")
_REPEATED: Final = re.compile(r"message repeated (\d+) times: \[ ?(.*?)\]$")

ONE_DAY: Final = timedelta(days=1)
HALF_YEAR: Final = timedelta(days=183)
_SHUTDOWN_BOOT: Final = frozenset({"system.boot", "system.shutdown"})


class SyslogParser:
    """RecordParser for syslog lines (one line, one record)."""

    name = "syslog"
    multiline = False  # continues() is always False: the framing need not ask

    def sniff(self, line: str) -> bool:
        first = line[:1]
        if first == "<":
            return line[1:2].isdigit()
        if line[3:4] == " " and line[:3] in MONTHS:
            return True
        if first.isdigit():
            if line[4:5] == "-":
                return line[10:11] == "T" or _ISO_SPACE.match(line) is not None
            return line[4:5] == " " and line[5:8] in MONTHS
        return _NO_STAMP.match(line) is not None

    def continues(self, first: str, line: str) -> bool:
        return False

    def parse(self, lines: list[str], ctx: ParseContext) -> list[Event]:
        event = parse_syslog_line("\n".join(lines) if len(lines) > 1 else lines[0], ctx)
        if event.service == "aide" and event.action is None:  # a whole report in one message?
            return report_in_message(event.host, event.time, event.message, ctx) or [event]
        return [event]


def parse_syslog_line(line: str, ctx: ParseContext) -> Event:
    """One syslog line (any accepted shape) -> Event. Raises ValueError on a line that is
    not syslog at all (the framing turns that into an ``unparsed`` event)."""
    pri: int | None = None
    rest = line
    if line.startswith("<"):
        end = line.find(">", 1, 5)
        if end > 1 and line[1:end].isdigit():
            pri = int(line[1:end])
            rest = line[end + 1:]
            if rest.startswith("1 "):
                return _parse_5424(line, pri, rest[2:], ctx)
    first = rest[:1]
    if first.isdigit():
        if rest[4:5] == "-":
            return _parse_iso(line, pri, rest, ctx)
        match = _TS_YEAR.match(rest)
        if match is None:
            raise ValueError("not a syslog timestamp")
        year, mon, day, hh, mm, ss = match.groups()
        time = datetime(int(year), MONTHS[mon], int(day), int(hh), int(mm), int(ss), tzinfo=UTC)
        return _parse_body(line, pri, time, rest[match.end():], ctx)
    if rest[3:4] == " " and rest[:3] in MONTHS:
        time, end = _rfc3164_time(rest, ctx)
        return _parse_body(line, pri, time, rest[end:], ctx)
    # No timestamp: '<13>host tag: msg' or a journal export 'host tag[pid]: msg'.
    return _parse_body(line, pri, None, rest, ctx)


# 'Mmm dd HH:MM:SS ': the usual stamp (day space-padded or two digits) and its space
_STAMP_LENGTH: Final = 16
# a stamp's [12:16]
_SECOND_TAILS: Final = {f":{second:02d} ": timedelta(seconds=second) for second in range(60)}
_LAST_SECOND: Final = timedelta(seconds=59)
_MINUTE_TIMES: Final[dict[str, tuple[int, datetime, datetime, datetime, datetime]]] = {}
"""A stamp's first 12 characters ('Mmm dd HH:MM') -> (year of the previous record, that
minute's time in that year, the earliest and latest previous times for which infer_time
keeps that year for every second of the minute, and the earliest receive time for which no
second of it is in the future)."""

FUTURE_SLACK: Final = ONE_DAY
"""How far past its receive time a year-less stamp may be and keep the year that puts it there:
RFC 3164 stamps are the sender's local time, up to 14 hours ahead of UTC. A later year is never
chosen (``Jan  1`` received on Dec 6 is this year's, not next year's: it must not move the clock)."""


def _rfc3164_time(rest: str, ctx: ParseContext) -> tuple[datetime, int]:
    """The time of the RFC 3164 stamp starting ``rest`` (see infer_time), and its end."""
    last = ctx.last_time
    # years far from datetime's limits, where time +- HALF_YEAR cannot overflow
    if last is not None and last.tzinfo is UTC and 1000 <= last.year < 9000 and not ctx.live:
        return _time_after(rest, last, ctx)
    month, day, hour, minute, second, micro, end = _stamp_fields(rest)
    return infer_time(month, day, hour, minute, second, micro, ctx), end


def _time_after(rest: str, last: datetime, ctx: ParseContext) -> tuple[datetime, int]:
    """_rfc3164_time after a record at ``last`` (UTC). A syslog file has a few lines a minute,
    so a usual stamp's time is its minute's, remembered, plus its seconds (~0.2 µs, not ~1.3).

    Usual: 16 characters ending in one space and no space after. The regex reads nothing past
    that space, and of the seconds only that they are digits, so a stamp with the same first
    12 characters matches the same. infer_time keeps ``last``'s year unless ``time < last -
    HALF_YEAR`` or ``time > last + HALF_YEAR``, in UTC ``last > time + HALF_YEAR`` or ``last <
    time - HALF_YEAR``, or the time is more than FUTURE_SLACK past ``ctx.received``: bounds that
    hold for the whole minute are remembered with it."""
    seconds = _SECOND_TAILS.get(rest[12:_STAMP_LENGTH])
    if seconds is not None and rest[16:17] != " ":
        known = _MINUTE_TIMES.get(rest[:12])
        if (known is not None and known[0] == last.year and known[2] <= last <= known[3]
                and ctx.received >= known[4]):
            return known[1] + seconds, _STAMP_LENGTH
    month, day, hour, minute, second, micro, end = _stamp_fields(rest)
    if seconds is not None and end == _STAMP_LENGTH:
        minute_time = _make(last.year, month, day, hour, minute, 0, 0)  # infer_time's first step
        earliest, latest = minute_time + _LAST_SECOND - HALF_YEAR, minute_time + HALF_YEAR
        received_from = minute_time + _LAST_SECOND - FUTURE_SLACK
        if len(_MINUTE_TIMES) >= 4096:
            _MINUTE_TIMES.clear()
        _MINUTE_TIMES[rest[:12]] = (last.year, minute_time, earliest, latest, received_from)
        if earliest <= last <= latest and ctx.received >= received_from:
            return minute_time + seconds, end
    return infer_time(month, day, hour, minute, second, micro, ctx), end


def _stamp_fields(rest: str) -> tuple[int, int, int, int, int, int, int]:
    """month, day, hour, minute, second, microsecond of the RFC 3164 stamp starting ``rest``,
    and the stamp's end (its spaces included)."""
    match = _TS3164.match(rest)
    if match is None:
        raise ValueError("not an RFC 3164 timestamp")
    mon, day, hh, mm, ss, frac = match.groups()
    micro = int(frac.ljust(6, "0")) if frac else 0
    return MONTHS[mon], int(day), int(hh), int(mm), int(ss), micro, match.end()


def infer_time(month: int, day: int, hour: int, minute: int, second: int, micro: int,
               ctx: ParseContext) -> datetime:
    """A year-less stamp -> UTC datetime, never more than FUTURE_SLACK past ``ctx.received``
    when an earlier year avoids it.

    A file: the previous record of the stream anchors the year (a jump back of more than half a
    year means Dec 31 -> Jan 1, so the year increments; a jump forward of more than half a year
    is a step back across New Year only when it lands within a day before the previous record,
    so the year decrements). Without one, ``ctx.year`` or the
    receive year is used, rolled back a year when that puts the record in the future (December
    logs read in January). A live stream (``ctx.live``): the receive time anchors it, as the
    record was just written; the year that puts the stamp nearest to it is taken."""
    last = ctx.last_time
    limit = ctx.received + FUTURE_SLACK
    if ctx.live:
        year = ctx.received.year
        candidates = [_make(y, month, day, hour, minute, second, micro) for y in (year - 1, year, year + 1)]
        return min((t for t in candidates if t <= limit), key=lambda t: abs(t - ctx.received),
                   default=candidates[0])
    if last is not None:
        year = last.year
        time = _make(year, month, day, hour, minute, second, micro)
        if time < last - HALF_YEAR:
            later = _make(year + 1, month, day, hour, minute, second, micro)
            if later <= limit:
                time = later
        elif time > limit:
            time = _make(year - 1, month, day, hour, minute, second, micro)
        elif time > last + HALF_YEAR:
            earlier = _make(year - 1, month, day, hour, minute, second, micro)
            if earlier >= last - ONE_DAY:  # a step back across New Year (Jan 1, then Dec 31)
                time = earlier
            # else a jump forward: after a gap, or after a record whose stamp was wrong (a `Jan  1`
            # kept in this year rather than the future must not put the records after it a year back)
        return time
    year = ctx.year or ctx.received.year
    time = _make(year, month, day, hour, minute, second, micro)
    if time > limit:
        earlier = _make(year - 1, month, day, hour, minute, second, micro)
        if earlier <= limit:  # an explicit future ctx.year is kept as given
            time = earlier
    return time


def _make(year: int, month: int, day: int, hour: int, minute: int, second: int, micro: int) -> datetime:
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    except ValueError:
        if month == 2 and day == 29:  # Feb 29 only exists in leap years: take the closest earlier one
            for back in range(1, 4):
                if (year - back) % 4 == 0:
                    return datetime(year - back, month, day, hour, minute, second, micro, tzinfo=UTC)
        raise


def _iso_time(text: str) -> datetime:
    time = datetime.fromisoformat(text)
    if time.tzinfo is None:
        return time.replace(tzinfo=UTC)
    return time.astimezone(UTC)


def _parse_iso(line: str, pri: int | None, rest: str, ctx: ParseContext) -> Event:
    space = rest.find(" ")
    if space == 10:  # '2020-03-23 06:47:42.801612-0700  host ...'
        match = _ISO_SPACE.match(rest)
        if match is None:
            raise ValueError("not a syslog timestamp")
        return _parse_body(line, pri, _iso_time(rest[:match.end() - 1]), rest[match.end():].lstrip(" "), ctx)
    bar = rest.find("|")
    if bar != -1 and (space == -1 or bar < space):
        # Open vSwitch's own log file: '2016-06-29T11:00:00.123Z|00001|bridge|INFO|msg'.
        time = _iso_time(rest[:bar])
        program = ctx.service or "ovs-vswitchd"
        return _event(line, ctx, pri, time, ctx.host, program, None, rest[bar + 1:], {})
    if space == -1:
        raise ValueError("ISO timestamp without a message")
    return _parse_body(line, pri, _iso_time(rest[:space]), rest[space + 1:], ctx)


def _parse_body(line: str, pri: int | None, time: datetime | None, body: str,
                ctx: ParseContext) -> Event:
    """'host tag[pid]: msg' (host optional) after the timestamp.

    A host's programs repeat their 'host tag[pid]: ' header (1,455 distinct in the 13,500
    syslog lines of the benchmark corpus), so a header is split once (~0.4 µs saved a line):
    remembered by its text up to the first ': ', when the host ends before that and no
    space follows it. _split_header then reads nothing past the space, whatever the tag
    regex tries: its words and the pid stop at whitespace, its ' *' at the first non-space."""
    colon = body.find(": ")
    cacheable = colon > 0 and body[colon + 2:colon + 3] != " "
    if cacheable:
        known = _HEADERS.get(body[:colon + 2])
        if known is not None:
            host, tag, pid, start = known
            return _event(line, ctx, pri, time, host, tag, pid, body[start:], {})
    header = host, tag, pid, start = _split_header(body)
    if cacheable and body.find(" ") < colon:
        if len(_HEADERS) >= 4096:
            _HEADERS.clear()
        _HEADERS[body[:colon + 2]] = header
    return _event(line, ctx, pri, time, host, tag, pid, body[start:], {})


_HEADERS: Final[dict[str, tuple[str, str, str | None, int]]] = {}


def _split_header(body: str) -> tuple[str, str, str | None, int]:
    """host, tag, pid of 'host tag[pid]: msg' (host optional), and where the message starts."""
    token, _, after = body.partition(" ")
    if token.startswith("[") and (token.endswith("]") or token.endswith("]:")):
        # '[sshd]: msg' / '[sshd] msg': a bracketed tag and no host (seen in fail2ban's tests).
        return "", token.strip("[]:"), None, len(body) - len(after)
    host = ""
    rest = body
    if not (token.endswith(":") and token.count(":") == 1):
        host = token  # a host name never ends with a colon; a bare tag does (libc /dev/log)
        rest = after.lstrip(" ")
    offset = len(body) - len(rest)
    match = _TAG.match(rest)
    if match is None:
        return host, "", None, offset
    tag, pid = match.groups()
    return host, tag, pid, offset + match.end()


def _parse_5424(line: str, pri: int, rest: str, ctx: ParseContext) -> Event:
    parts = rest.split(" ", 5)
    if len(parts) < 5:
        raise ValueError("truncated RFC 5424 header")
    stamp, host, app, procid, msgid = parts[:5]
    tail = parts[5] if len(parts) == 6 else ""
    attrs: dict[str, Any] = {}
    if msgid != "-":
        attrs["msgid"] = msgid
    message = tail
    if tail.startswith("["):
        try:
            sd, end = parse_structured_data(tail)
        except ValueError as exc:  # keep the header; the rest stays in the message
            attrs["sd_error"] = str(exc)
        else:
            attrs["sd"] = sd
            message = tail[end + 1:] if tail[end:end + 1] == " " else tail[end:]
    elif tail == "-" or tail.startswith("- "):
        message = tail[2:]
    if message.startswith("\ufeff"):
        message = message[1:]
    time = None if stamp == "-" else _iso_time(stamp)
    return _event(line, ctx, pri, time, "" if host == "-" else host,
                  "" if app == "-" else app, None if procid == "-" else procid, message, attrs)


def service_of(tag: str) -> str:
    """The service name for a syslog tag: 'sshd(pam_unix)' -> 'sshd', 'syslogd 1.4.1' ->
    'syslogd', 'NetworkManager' -> 'networkmanager'; otherwise as written."""
    name = tag
    paren = name.find("(")
    if paren > 0:
        name = name[:paren]
    space = name.find(" ")
    if space > 0:
        name = name[:space]
    return "networkmanager" if name == "NetworkManager" else name


def _event(line: str, ctx: ParseContext, pri: int | None, time: datetime | None, host: str,
           tag: str, pid: str | None, message: str, attrs: dict[str, Any]) -> Event:
    service, program = _names(tag) if tag else ("", "")
    if tag and tag != service:
        attrs["program"] = tag
    pid_value: int | None = None
    if pid:
        if pid.isdigit():
            pid_value = int(pid)
            attrs["pid"] = pid_value
        else:
            attrs["procid"] = pid
    severity = "info"
    if pri is not None and pri < 192:
        attrs["facility"] = FACILITIES[pri >> 3]
        attrs["pri"] = pri
        severity = SEVERITY_NAMES[pri & 7]
    message = message.strip()
    if message[:1] == "[":
        if service == "kernel":
            match = _UPTIME.match(message)
            if match:
                attrs["uptime"] = float(match.group(1))
                message = message[match.end():]
        elif message.startswith("[ID "):  # Solaris msgid: '[ID 800047 auth.info] '
            match = _SOLARIS_ID.match(message)
            if match:
                attrs["solaris_msgid"] = int(match.group(1))
                message = message[match.end():]
    elif message.startswith("message repeated "):
        match = _REPEATED.match(message)
        if match:  # rsyslog's reduction: one record standing for N identical ones
            attrs["repeated"] = int(match.group(1))
            message = match.group(2).strip()
    extra = _message_fields(program, tag, message, attrs)
    # Keywords, not Event(**fields): a call through a dict costs ~0.5 µs more, and so does one
    # with more than 15 keywords (CPython compiles both the same way).
    if not extra:
        return Event(time=time or ctx.received, received=ctx.received, host=host or ctx.host,
                     service=service or ctx.service, severity=severity, message=message, kind="syslog",
                     attrs=attrs, raw=line, origin=ctx.origin, ref=ctx.ref)
    # The message parser's fields win (attrs merged, theirs last), but for the severity the
    # sender's PRI gave.
    get = extra.get
    if pri is None:
        severity = get("severity", severity)
    merged: Any = attrs
    if "attrs" in extra:
        extra_attrs = extra["attrs"]
        # a copy even of theirs alone: the fields may be shared (see _remembered_fields)
        merged = {**attrs, **extra_attrs} if extra_attrs is not None else None
    action = get("action")
    if action in _SHUTDOWN_BOOT and service in ("systemd", "init") and pid_value not in (None, 1):
        # A per-user systemd manager (pid != 1) also logs 'Startup finished' and
        # 'Reached target Shutdown' at login/logout; only PID 1 speaks for the host.
        action = None
        merged = {**merged, "user_manager": True}
    event = Event(time=time or ctx.received, received=ctx.received, host=host or ctx.host,
                  service=service or ctx.service, severity=severity, message=get("message", message),
                  kind="syslog", action=action, outcome=get("outcome"),
                  initiator=get("initiator", NO_INITIATOR), target=get("target", NO_TARGET), attrs=merged,
                  raw=line, origin=ctx.origin, ref=ctx.ref)
    if _KEYWORD_FIELDS.issuperset(extra):
        return event
    # Rare fields (a message parser's own kind, service, host, request_id...): set as
    # Event(**fields) would, its errors included.
    return Event(**{**msgspec.structs.asdict(event),
                    **{key: value for key, value in extra.items() if key not in _KEYWORD_FIELDS}})


_KEYWORD_FIELDS: Final = frozenset(
    {"severity", "message", "action", "outcome", "initiator", "target", "attrs"})
"""The message parser fields _event passes by keyword."""

_NAMES: Final[dict[str, tuple[str, str]]] = {}


def _names(tag: str) -> tuple[str, str]:
    """(service, program) of a non-empty syslog tag, read once per distinct tag. The message
    parser sees the tag as written when it says more than the service ('su(pam_unix)' tells
    the auth parser this is a PAM line; 'NetworkManager' keeps its case)."""
    names = _NAMES.get(tag)
    if names is None:
        service = service_of(tag)
        program = tag if "(" in tag or service == "networkmanager" else service
        # keystone-wsgi-public is keystone (its rules match keystone); its parser needs the tag
        names = ("keystone" if service in KEYSTONE_PROGRAMS else service, program)
        if len(_NAMES) >= 4096:
            _NAMES.clear()
        _NAMES[tag] = names
    return names


def _message_fields(program: str, tag: str, message: str, attrs: dict[str, Any]) -> dict[str, Any] | None:
    """What the program's message parser reads in ``message``, not to be changed (it may be
    shared); None without a parser. A parser that raises is recorded in attrs."""
    parser = _message_parser(program, tag, message)
    if parser is None:
        return None
    try:
        if _memoizable(parser):
            return _remembered_fields(parser, program, message)
        return parser.parse_message(program, message)
    except Exception as exc:  # the record is kept; the failure is visible on it
        attrs["message_parser_error"] = f"{parser.name}: {type(exc).__name__}: {exc}"[:300]
        return None


_MEMOIZABLE: Final[dict[type, bool]] = {}


def _memoizable(parser: Any) -> bool:
    """Does ``parser`` say it is memoizable (see base.MessageParser)? Read once per class:
    getattr of a missing attribute costs ~0.4 µs (it raises inside)."""
    memoizable = _MEMOIZABLE.get(parser.__class__)
    if memoizable is None:
        memoizable = _MEMOIZABLE[parser.__class__] = bool(getattr(parser, "memoizable", False))
    return memoizable


_REMEMBERED: Final[dict[tuple[Any, str, str], dict[str, Any] | None]] = {}


def _remembered_fields(parser: Any, program: str, message: str) -> dict[str, Any] | None:
    """``parser.parse_message`` once per distinct message, for a parser that says its result
    depends on its arguments only (``memoizable``). Programs repeat themselves word for word:
    cron's PAM sessions, sudo's, systemd's unit jobs (in the benchmark corpus 7,000 of 13,500
    syslog lines carry one of some 330 messages), and their parsing costs 2-4 µs."""
    key = (parser, program, message)
    try:
        return _REMEMBERED[key]
    except KeyError:
        fields = parser.parse_message(program, message)
        if len(_REMEMBERED) >= 2048:
            _REMEMBERED.clear()
        _REMEMBERED[key] = fields
        return fields


def _message_parser(program: str, tag: str, message: str) -> Any:
    if not program:
        return None
    if ("(pam" in tag or message.startswith(("pam_", "(pam_unix)", "PAM "))
            or "]: pam_" in message[:64]):
        return registry.message_parser_for("pam") or registry.message_parser_for(program)
    return registry.message_parser_for(program)


def parse_structured_data(text: str) -> tuple[dict[str, dict[str, str]], int]:
    """RFC 5424 STRUCTURED-DATA at the start of ``text`` -> ({sd-id: {param: value}}, end).

    Values may contain the escapes ``\\"`` ``\\\\`` ``\\]``; any other backslash is kept as
    written (RFC 5424 6.3.3). A ``]`` inside a quoted value is accepted even unescaped, as
    real senders write it. Raises ValueError on malformed input."""
    result: dict[str, dict[str, str]] = {}
    i, n = 0, len(text)
    while i < n and text[i] == "[":
        j = i + 1
        while j < n and text[j] not in " ]":
            j += 1
        sd_id = text[i + 1:j]
        if not sd_id:
            raise ValueError("empty SD-ID")
        params = result.setdefault(sd_id, {})
        i = j
        while i < n and text[i] == " ":
            eq = text.find("=", i + 1)
            if eq < 0 or text[eq + 1:eq + 2] != '"':
                raise ValueError(f"SD-PARAM without a quoted value in [{sd_id}]")
            name = text[i + 1:eq]
            i = eq + 2
            parts: list[str] = []
            while True:
                quote = text.find('"', i)
                if quote < 0:
                    raise ValueError(f"unterminated SD-PARAM value in [{sd_id}]")
                backslash = text.find("\\", i, quote)
                if backslash < 0:
                    parts.append(text[i:quote])
                    i = quote + 1
                    break
                parts.append(text[i:backslash])
                escaped = text[backslash + 1:backslash + 2]
                if escaped in ('"', "\\", "]"):
                    parts.append(escaped)
                    i = backslash + 2
                else:
                    parts.append("\\")
                    i = backslash + 1
            params[name] = "".join(parts)
        if text[i:i + 1] != "]":
            raise ValueError(f"SD-ELEMENT [{sd_id}] not closed")
        i += 1
    return result, i


PARSER = SyslogParser()
