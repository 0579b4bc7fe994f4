"""The two kinds of parser, and what they are given.

* A **record parser** knows a record format: how a record starts (``sniff``), which
  following lines belong to it (``continues``: tracebacks, auditd records of one serial,
  an AIDE report) and how to turn the joined lines into events (``parse``).
  Examples: oslo_log, syslog, auditd, json (CADF / notifications / eve.json), httpd_access.
* A **message parser** knows what one program writes inside a carrier format. The syslog
  record parser hands ``(program, message)`` to the message parser registered for that
  program (sshd -> auth, systemd -> systemd, kernel -> kernel_net, clamd -> clamav...).
  It returns the extra Event fields it recognised, or None.

Parsers may raise any exception on bad input: the framing catches it and keeps the
record as an ``unparsed`` event (raw kept, counted). They must never return an event
without ``raw`` set to the verbatim record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from stackwatch.core.event import Event
from stackwatch.core.types import MessageParser as MessageParser  # the seams (core/types.py), re-exported
from stackwatch.core.types import RecordParser as RecordParser

MAX_PARSE_BYTES: Final = 64 * 1024
"""Records longer than this are not parsed (kept raw as ``unparsed``, reason ``oversize``)."""


@dataclass(slots=True)
class ParseContext:
    """What a parser knows besides the record itself."""

    host: str = ""  # default host when the record carries none
    origin: str = ""  # file:/path, syslog:udp, stdin...
    received: datetime = field(default_factory=lambda: datetime.now(UTC))
    year: int | None = None  # year hint for formats without one (file mtime, receive time)
    last_time: datetime | None = None  # time of the previous record of this stream
    service: str = ""  # default service (e.g. from the file name: keystone.log -> keystone)
    ref: str = ""  # locator of the record being parsed ('ctl1/keystone.log:12'); set by the framing
    live: bool = False  # records arrive as written (serve): the receive time anchors year-less stamps

    def copy(self) -> ParseContext:
        """This context as it is now (a header event's deferred parse needs the record's own
        ``ref`` and ``last_time``, which the framing moves on)."""
        return ParseContext(self.host, self.origin, self.received, self.year, self.last_time, self.service,
                            self.ref, self.live)


def ref_at(ref: str, offset: int) -> str:
    """The ref of the line ``offset`` lines below a multi-line record's first line."""
    head, _, lineno = ref.rpartition(":")
    return f"{head}:{int(lineno) + offset}" if offset and lineno.isdigit() else ref


def unparsed_event(lines: list[str], ctx: ParseContext, reason: str) -> Event:
    """The event for a record no parser could read: raw kept verbatim, reason recorded."""
    raw = "\n".join(lines)
    return Event(
        time=ctx.last_time or ctx.received,
        received=ctx.received,
        host=ctx.host,
        service=ctx.service,
        kind="unparsed",
        message=raw[:4096],
        attrs={"reason": reason},
        raw=raw,
        origin=ctx.origin,
        ref=ctx.ref,
    )


def parse_record(parser: RecordParser, lines: list[str], ctx: ParseContext) -> tuple[list[Event], bool]:
    """(events, parsed) of one complete record: ``parser.parse``, with a record it refuses
    (raises) or finds nothing in kept as an ``unparsed`` event (``parsed`` False)."""
    try:
        events = parser.parse(lines, ctx)
    except Exception as exc:  # a bad record must never stop the stream
        return [unparsed_event(lines, ctx, f"{parser.name}: {type(exc).__name__}: {exc}"[:300])], False
    if not events:
        return [unparsed_event(lines, ctx, f"{parser.name}: nothing recognised")], False
    return events, events[0].kind != "unparsed"


RecordHeader = tuple[str, str, str | None, frozenset[str], tuple[tuple[str, str], ...]]
"""What ``HeaderParser.header`` says of a record: (kind, service, message or None when the
header does not give it, the actions its full parse may give, other fields the full event
will have with these exact values, as (dotted path, value) pairs, e.g. auditd's
``attrs.type``)."""

RecordGate = Callable[[str, str, str | None, frozenset[str], tuple[tuple[str, str], ...]], bool]
"""Given a RecordHeader: does anything (a rule, the correlator, the ledger) need this
record's full parse? (detect/prefilter.py)"""


def is_multiline(parser: RecordParser) -> bool:
    """May a record of ``parser`` span lines (see RecordParser)? True unless it says not."""
    return bool(getattr(parser, "multiline", True))


class HeaderParser(Protocol):
    """A record parser that can also read a record's header alone (see parsers/lazy.py).

    ``header`` returns a RecordHeader, or None when the record is not one it can vouch for,
    or one it cannot tell the actions of (the full parse then runs). Its contract, for every
    record it answers: the full parse gives exactly one event, of that kind and service,
    with that message (when given) and those known fields, an action in ``actions`` or
    None (no action when ``actions`` is empty), and the fields of ``HEADER_FIELDS`` equal to
    those ``header_event`` gives; its outcome, target and attrs are the full parse's own
    (the prefilter parses a record for any rule that may read them). ``header_event``
    builds that event (a ``HeaderEvent`` carrying ``record``) from the record and what
    ``header`` said of it; it may raise where the full parse would (the framing then parses
    the record)."""

    def header(self, lines: list[str], ctx: ParseContext) -> RecordHeader | None: ...

    def header_event(self, lines: list[str], ctx: ParseContext, record: Any, head: RecordHeader) -> Event: ...
