"""Re-parse: a record that holds its raw line and a header, not its parse, back to its Event.

Groundwork for the next record format (issue #16, docs/store.md "Next: records without
their parse"): today a record's bytes hold the raw line *and* its normalized fields (a JSON
array of 21 values), about 2x the line. A raw-only record would hold the raw bytes of its
*record* (the lines the framing joined, as one text) and a ``RawHeader``; this module gives
the Event back from those two, by running the record's parser again as the framing ran it.

The header holds what the store needs without parsing (time for ordering and windows; host,
service, severity, kind, origin, the record's ref), the parser's name, which of the record's
events this is (a record may give several: an AIDE report, auditd records), the size of a
record the reader or a source cut (``attrs.truncated``) and whether ingest clamped a future
time (``attrs.future_time``). It can also carry what the parser was given besides the lines
(``ParseContext``: default host and service, RFC 3164's year hint, the previous record's
time, ``live``), but the header's own event fields override what the parse gives (they are
stored anyway), and then none of those but ``live`` changes a single record:
tests/store/test_reparse.py proves it (``reparse_check.lean``) over every parser vector, the
shared corpus, the demo scenario, the benchmark generator, live messages and AMQP bodies,
comparing the format 2 record bytes of the re-parsed event with the stored one's.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Final, NamedTuple

import msgspec
import orjson

from stackwatch.core.event import Event
from stackwatch.parsers.base import MAX_PARSE_BYTES, ParseContext, parse_record, unparsed_event
from stackwatch.parsers.registry import record_parser
from stackwatch.store.rows import from_micros, to_micros

FRAMED: Final = "/line:0"
"""The parse ref's tail of a multi-line record a live source got in one message
(``sources.base.MessageDecoder``): the event of the first line then keeps the message's ref."""
NO_PARSER: Final = ""
"""``RawHeader.parser`` of a record no parser sniffed (kept ``unparsed``)."""
AMQP: Final = "amqp"
"""``RawHeader.parser`` of a message the AMQP notification source decoded (its body: an
oslo.messaging envelope or a plain notification; sources/amqp_notifications.py)."""


class RawHeader(NamedTuple):
    """What a raw-only record holds besides its raw bytes (times in µs since the epoch)."""

    time: int  # the event's time (the header's: the year hint and last time only move it)
    received: int
    host: str  # the event's host and service (its source)
    service: str
    severity: str
    kind: str
    origin: str
    ref: str  # the *record's* ref (its first line); events below it get theirs from the parse
    parser: str  # the record parser's name; NO_PARSER when none sniffed the record
    nth: int = 0  # which of the record's events (``index`` is a tuple method)
    ctx_host: str = ""  # the parse context's defaults: the file's / peer's host, the file's service
    ctx_service: str = ""
    year: int | None = None
    last_time: int | None = None  # the previous record's time in this stream
    live: bool = False
    truncated: int = 0  # the whole size of a record the reader or source cut (0: intact)
    clamped: bool = False  # the pipeline moved a future time to ``received`` (attrs.future_time)


class ReparseError(ValueError):
    """The record's parse gives no event ``nth`` (the header does not match the raw)."""


def context(header: RawHeader, received: datetime | None = None) -> ParseContext:
    """The parse context the framing had when it parsed the record (``received``: the
    header's, already converted)."""
    last = None if header.last_time is None else from_micros(header.last_time)
    received = from_micros(header.received) if received is None else received
    return ParseContext(host=header.ctx_host, origin=header.origin, received=received,
                        year=header.year, last_time=last, service=header.ctx_service, ref=header.ref,
                        live=header.live)


def parse_raw(raw: bytes, header: RawHeader, received: datetime | None = None) -> list[Event]:
    """Every event of the record ``raw``, as its parser gives them (the header not applied)."""
    text = raw.decode("utf-8", "surrogateescape")
    lines = text.split("\n")  # the framing joined the record's lines with "\n" (never in a line)
    ctx = context(header, received)
    if header.parser == NO_PARSER:
        return [unparsed_event(lines, ctx, _no_parser_reason(text, header.live))]
    if header.parser == AMQP:
        return _notification(text, ctx, header.truncated)
    return parse_record(_record_parser(header.parser), lines, ctx)[0]


_record_parser = cache(record_parser)  # a name -> its parser, without walking the registry each record


def reparse(raw: bytes, header: RawHeader) -> Event:
    """The Event a raw-only record stands for: its record's event ``header.nth``, with the
    header's fields (what the store keeps without the parse) in place."""
    received = from_micros(header.received)  # once: the context's and the event's
    events = parse_raw(raw, header, received)
    if header.nth >= len(events):
        raise ReparseError(f"{header.ref}: the record gives {len(events)} events, not {header.nth + 1}")
    event = events[header.nth]
    if header.ref.endswith(FRAMED) and event.ref == header.ref:
        event = msgspec.structs.replace(event, ref=header.ref.removesuffix(FRAMED))
    return apply_header(event, header, received)


def apply_header(event: Event, header: RawHeader, received: datetime | None = None) -> Event:
    received = from_micros(header.received) if received is None else received
    attrs = event.attrs
    # in the pipeline's order (the attrs' JSON keeps it): the source flags a cut record, then
    # ingest's clamp_future moves a future time (the parse gives the claimed time back)
    if header.truncated:
        attrs = {**attrs, "truncated": True, "original_bytes": header.truncated}
    if header.clamped:
        attrs = {**attrs, "future_time": event.time.isoformat()}
    time = received if header.time == header.received else from_micros(header.time)
    return msgspec.structs.replace(event, time=time, received=received, host=header.host,
                                   service=header.service, severity=header.severity,
                                   kind=header.kind, origin=header.origin, attrs=attrs)


def header_of(event: Event, parser: str, ctx: ParseContext, nth: int = 0, truncated: int = 0,
              clamped: bool = False) -> RawHeader:
    """The header of ``event``, event ``nth`` of a record ``parser`` parsed with ``ctx``
    (as it was before the parse: ``last_time`` is the previous record's)."""
    return RawHeader(time=to_micros(event.time), received=to_micros(event.received), host=event.host,
                     service=event.service, severity=event.severity, kind=event.kind, origin=event.origin,
                     ref=ctx.ref, parser=parser, nth=nth, ctx_host=ctx.host, ctx_service=ctx.service,
                     year=ctx.year, last_time=_micros(ctx.last_time), live=ctx.live, truncated=truncated,
                     clamped=clamped)


def _micros(value: datetime | None) -> int | None:
    return None if value is None else to_micros(value)


def _notification(text: str, ctx: ParseContext, truncated: int) -> list[Event]:
    """What ``AmqpNotificationSource.decode`` gives for one message body (its steps, in order)."""
    from stackwatch.parsers.notification import decode_envelope, normalize_notification

    try:
        message = decode_envelope(orjson.loads(text)) if not truncated else None
    except (orjson.JSONDecodeError, ValueError):
        message = None
    if not isinstance(message, dict):
        reason = "oversize notification" if truncated else "not an oslo.messaging notification"
        return [unparsed_event([text], ctx, reason)]
    try:
        events: list[Event] = normalize_notification(message, text, ctx)
    except Exception as exc:  # as the source: a bad payload is kept raw
        return [unparsed_event([text], ctx, f"notification: {type(exc).__name__}: {exc}"[:300])]
    return events


def _no_parser_reason(text: str, live: bool) -> str:
    # framing.Framer.feed_lines and sources.base.MessageDecoder.decode, which say it differently
    if live:
        return "no parser recognised the record" if text else "empty record"
    return "oversize" if len(text) > MAX_PARSE_BYTES else "no parser recognised the record"
