"""Does re-parsing give back every record? (store/reparse.py; tests and benchmarks/reparse_bench.py)

``capture_inputs`` and ``capture_messages`` read inputs the way the pipeline does (the file
reader's framing, a live source's ``MessageDecoder``) with every record parser wrapped, so
each event comes with what a raw-only record would hold: its record's raw bytes and its
``RawHeader``. ``differences`` re-parses each and compares the format 2 record bytes
(store/integrity/records.py ``record_bytes``, what the store writes) with the stored event's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import msgspec

from stackwatch.core.event import Event
from stackwatch.parsers.base import ParseContext, RecordParser, is_multiline
from stackwatch.parsers.framing import Framer
from stackwatch.parsers.registry import record_parsers
from stackwatch.pipeline.reader import CutLine, InputFile, discover, open_input, read_line_batches
from stackwatch.sources.base import MessageDecoder, Record, mark_truncated
from stackwatch.store.integrity.records import stored_record
from stackwatch.store.narrow import NarrowEncoder
from stackwatch.store.reparse import AMQP, NO_PARSER, RawHeader, ReparseError, header_of, reparse
from stackwatch.store.rows import RowBuilder, clean_text, to_micros


class Captured(NamedTuple):
    """One event as the pipeline gave it, and what its raw-only record would hold."""

    event: Event
    raw: bytes  # the record's raw bytes (all its lines), what re-parsing reads
    header: RawHeader


@dataclass(slots=True)
class _Call:
    name: str
    raw: bytes
    ctx: ParseContext
    events: list[Any] | None  # None: the parser raised (the framing kept the record unparsed)


class _Recorder:
    """A record parser that notes each parse: its lines and the context as they were."""

    def __init__(self, parser: RecordParser, calls: list[_Call]) -> None:
        self.parser = parser
        self.name = parser.name
        self.multiline = is_multiline(parser)
        self.sniff = parser.sniff
        self.continues = parser.continues
        self._calls = calls

    def parse(self, lines: list[str], ctx: ParseContext) -> list[Any]:
        call = _Call(self.name, "\n".join(lines).encode("utf-8", "surrogateescape"), ctx.copy(), None)
        self._calls.append(call)
        call.events = self.parser.parse(lines, ctx)
        return call.events


def _recorders(calls: list[_Call]) -> tuple[RecordParser, ...]:
    return tuple(_Recorder(p, calls) for p in record_parsers())  # type: ignore[misc]


def _attribute(out: list[Event], calls: list[_Call], ctx: ParseContext,
               truncated: int = 0) -> Iterator[Captured]:
    """Pair the framing's output with the parses that gave it (in order; a record no parser
    sniffed gave one ``unparsed`` event no parse call stands for)."""
    pending = iter(calls)
    call = next(pending, None)
    taken = 0
    for event in out:
        if call is not None and call.events and taken < len(call.events) and event is call.events[taken]:
            yield Captured(event, call.raw, header_of(event, call.name, call.ctx, taken, truncated))
            taken += 1
        elif call is not None and not call.events and event.kind == "unparsed" \
                and str(event.attrs.get("reason", "")).startswith(call.name + ":"):
            yield Captured(event, call.raw, header_of(event, call.name, call.ctx, 0, truncated))
            taken = len(call.events or ()) + 1
        else:
            here = ctx.copy()
            here.ref = event.ref
            yield Captured(event, event.raw_bytes(), header_of(event, NO_PARSER, here, 0, truncated))
            continue
        if taken >= max(1, len(call.events or ())):
            call, taken = next(pending, None), 0
    calls.clear()


def capture_inputs(paths: Iterable[str], received: datetime | None = None) -> Iterator[Captured]:
    """Every event of these files / folders, as ``pipeline.reader.event_batches_of`` frames them."""
    for source in discover([str(p) for p in paths]):
        yield from capture_input(source, received)


def capture_input(source: InputFile, received: datetime | None = None) -> Iterator[Captured]:
    calls: list[_Call] = []
    ctx = ParseContext(host=source.host, origin=source.origin, received=received or datetime.now(UTC),
                       year=source.year, service=source.service)
    framer = Framer(ctx, ref_prefix=source.ref_prefix, parsers=_recorders(calls))
    handle = open_input(source)
    try:
        lineno = 1
        for batch in read_line_batches(handle):
            if type(batch) is CutLine:  # as event_batches_of: a cut line is a record of its own
                yield from _attribute(framer.flush(), calls, ctx)
                out = framer.feed_lines(batch, lineno)
                yield from _truncated(_attribute(out, calls, ctx, batch.original_bytes))
            else:
                yield from _attribute(framer.feed_lines(batch, lineno), calls, ctx)
            lineno += len(batch)
        yield from _attribute(framer.flush(), calls, ctx)
    finally:
        handle.close()


def capture_text(text: str, host: str = "", origin: str = "test", year: int | None = None) -> list[Captured]:
    """``framing.parse_text``'s events (the parser vectors' path), captured."""
    calls: list[_Call] = []
    ctx = ParseContext(host=host, origin=origin, year=year)
    framer = Framer(ctx, origin, parsers=_recorders(calls))
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out: list[Captured] = []
    for lineno, line in enumerate(lines, 1):
        out += _attribute(framer.feed(line.rstrip("\r"), lineno), calls, ctx)
    out += _attribute(framer.flush(), calls, ctx)
    return out


def capture_messages(records: Iterable[Record], origin: str, host: str = "") -> Iterator[Captured]:
    """Every event of these messages as a live source's ``MessageDecoder`` decodes them (the
    peer's address as host when ``host`` is empty; truncated records flagged)."""
    calls: list[_Call] = []
    decoder = MessageDecoder(origin, host)
    decoder.parsers = _recorders(calls)
    decoder.preferred = next(p for p in decoder.parsers if p.name == "syslog")
    for record in records:
        # decoded intact, then flagged as the decoder flags it (its flagged events are copies,
        # which _attribute could not pair with their parse)
        out = decoder.decode(record._replace(original_size=0))
        found = _attribute_message(out, calls, decoder.ctx, record.original_size)
        yield from _truncated(found) if record.original_size else found


def _attribute_message(out: list[Event], calls: list[_Call], ctx: ParseContext,
                       truncated: int) -> list[Captured]:
    """The events of one message: its one parse's, by position (the decoder gives a multi-line
    record's first event the message's ref, a copy), else one no-parser event."""
    if not calls:
        return list(_attribute(out, calls, ctx, truncated))
    (call,) = calls
    calls.clear()
    return [Captured(event, call.raw, header_of(event, call.name, call.ctx, index, truncated))
            for index, event in enumerate(out)]


def capture_amqp(records: Iterable[Record], host: str = "", service: str = "") -> Iterator[Captured]:
    """Every event of these message bodies as the AMQP notification source decodes them (its
    own ``decode``; ``Record.peer`` is the exchange). A message decoded again (same ref) gives none."""
    import asyncio

    from stackwatch.sources.amqp_notifications import AmqpNotificationSource, AmqpSettings
    from stackwatch.sources.base import SourceContext

    context = SourceContext(queue_size=16, wake=asyncio.Event(), state_dir="", hostname="")
    source = AmqpNotificationSource(AmqpSettings(type="amqp", host=host, service=service), context)
    for record in records:
        events = source.decode([record])
        for index, event in enumerate(events):
            # the parse context's ref is the message's (``<exchange>:<message id>``): its first event's
            ctx = ParseContext(host=host, origin=event.origin, service=service, received=event.received,
                               ref=events[0].ref)
            yield Captured(event, record.text.encode("utf-8", "surrogateescape"),
                           header_of(event, AMQP, ctx, index, record.original_size))


def clamped(items: Iterable[Captured], tolerance: timedelta = timedelta(0)) -> Iterator[Captured]:
    """``items`` through ``pipeline.ingest.clamp_future`` (their headers flag the clamped ones)."""
    from stackwatch.pipeline.ingest import clamp_future

    for item in items:
        event = clamp_future(item.event, tolerance)
        if event is not item.event:
            item = Captured(event, item.raw, item.header._replace(time=to_micros(event.time), clamped=True))
        yield item


def _truncated(items: Iterable[Captured]) -> Iterator[Captured]:
    for item in items:
        yield item._replace(event=mark_truncated(item.event, item.header.truncated))


def stored_bytes(event: Event, seq: int = 1) -> bytes:
    """The record bytes the store writes for ``event`` (format 2: raw + normalized fields)."""
    names: dict[int, tuple[str, str]] = {}

    def new_source(host: str, service: str) -> int:
        names[0] = (clean_text(host), clean_text(service))
        return 0

    row = RowBuilder({}, new_source).rows([event], seq)[0]
    return stored_record(row, names)[1]


def lean(header: RawHeader) -> RawHeader:
    """``header`` without the parse context (default host and service, year hint, last
    time): what they give is in the header's own fields, which override the parse."""
    return header._replace(ctx_host="", ctx_service="", year=None, last_time=None)


def sniffed(header: RawHeader, raw: bytes) -> RawHeader:
    """``header`` with its parser found again by sniffing the record's first line (the
    registry's order, without the framing's preference for the stream's previous parser)."""
    from stackwatch.parsers.base import MAX_PARSE_BYTES
    from stackwatch.parsers.framing import choose_parser

    first = raw.decode("utf-8", "surrogateescape").split("\n", 1)[0]
    parser = choose_parser(first, None, record_parsers()) if len(first) <= MAX_PARSE_BYTES else None
    return header._replace(parser=parser.name if parser is not None else NO_PARSER)


class Difference(NamedTuple):
    ref: str
    parser: str
    kind: str
    fields: tuple[str, ...]  # the Event fields that differ ('error: ...' when re-parsing failed)


def differ(item: Captured, header: RawHeader | None = None) -> Difference | None:
    """None when re-parsing ``item`` (with ``header``, default its own) gives its record bytes."""
    header = header or item.header
    try:
        again = reparse(item.raw, header)
    except (ReparseError, KeyError) as exc:
        return Difference(item.event.ref, header.parser, item.event.kind, (f"error: {exc}",))
    if stored_bytes(again) == stored_bytes(item.event):
        return None
    was, now = msgspec.structs.asdict(item.event), msgspec.structs.asdict(again)
    fields = tuple(name for name in was if was[name] != now[name])
    return Difference(item.event.ref, header.parser, item.event.kind, fields or ("bytes",))


def differences(items: Iterable[Captured],
                lean: Callable[[RawHeader], RawHeader] | None = None) -> list[Difference]:
    """The records whose re-parse (with ``lean(header)`` when given) is not byte-identical."""
    out = []
    for item in items:
        found = differ(item, lean(item.header) if lean else None)
        if found is not None:
            out.append(found)
    return out


def writer_records(events: Sequence[Event], batch: int = 20_000) -> list[bytes]:
    """Format 2 record bytes of ``events`` numbered from 1, as the writer's encoder makes them
    (``narrow.NarrowEncoder``, sources named in order of first sight), ``batch`` at a time."""
    sources: dict[tuple[str, str], int] = {}
    names: dict[int, tuple[str, str]] = {}

    def source_id(host: str, service: str) -> int:
        sources[(host, service)] = len(names)
        names[len(names)] = (host, service)
        return len(names) - 1

    encoder = NarrowEncoder(sources, names, source_id, RowBuilder(sources, source_id).rows)
    out: list[bytes] = []
    for start in range(0, len(events), batch):
        out += encoder.encode(events[start:start + batch], start + 1)[1]
    return out
