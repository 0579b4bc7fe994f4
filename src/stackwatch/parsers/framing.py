"""Framing: turn a stream of lines into records, choose a parser per record, and make
sure every record becomes at least one event.

The parser chosen for the previous record is tried first (a file is nearly always one
format), then the registry in order. Continuation lines (tracebacks, auditd records of
the same serial, AIDE report bodies) are joined to their record by the parser's own
``continues``. A parser that raises, or returns nothing, leaves the record as an
``unparsed`` event: raw kept, reason recorded, counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from mypy_extensions import mypyc_attr

from stackwatch.core.event import Event
from stackwatch.parsers.base import (
    MAX_PARSE_BYTES,
    ParseContext,
    RecordGate,
    RecordHeader,
    RecordParser,
    is_multiline,
    parse_record,
    unparsed_event,
)
from stackwatch.parsers.registry import record_parsers

MAX_RECORD_LINES: Final = 5000
"""A record that keeps growing past this is cut (the rest starts new records)."""


FRAMING_COUNTERS: Final = ("lines", "blank", "records", "parsed", "unparsed", "events")
"""FramingStats' counters by name, spelled out: a compiled (mypyc) dataclass has no __slots__."""


@dataclass(slots=True)
class FramingStats:
    lines: int = 0
    blank: int = 0
    records: int = 0
    parsed: int = 0  # records at least one parser understood
    unparsed: int = 0  # records kept raw as `unparsed` events
    events: int = 0  # events produced (a record may give several, e.g. an AIDE report)

    def add(self, other: FramingStats) -> None:
        for name in FRAMING_COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def choose_parser(line: str, preferred: RecordParser | None,
                  parsers: tuple[RecordParser, ...], *, tried: bool = False) -> RecordParser | None:
    """The parser for a record starting with ``line``: ``preferred`` first (a stream is
    nearly always one format; ``tried``: the caller already asked it), then the registry."""
    if not tried and preferred is not None and preferred.sniff(line):
        return preferred
    for parser in parsers:
        if parser is not preferred and parser.sniff(line):
            return parser
    return None


def _joiner(parser: RecordParser | None) -> RecordParser | None:
    """``parser`` if its records may span lines, else None (see Framer.feed_lines)."""
    return parser if parser is not None and is_multiline(parser) else None


@mypyc_attr(allow_interpreted_subclasses=True)  # compiled by mypyc; tests derive from it
class Framer:
    """Frames one stream (a file, a connection). Not thread-safe; one per stream."""

    def __init__(self, ctx: ParseContext, ref_prefix: str = "",
                 parsers: tuple[RecordParser, ...] | None = None, gate: RecordGate | None = None) -> None:
        """``gate``: the record prefilter (detect/prefilter.py). With one, a record whose
        parser can read its header alone (parsers/base.py HeaderParser) and that nothing
        can care about becomes a header event (parsers/lazy.py), its full parse deferred."""
        self.ctx = ctx
        self.gate = gate
        self.ref_prefix = ref_prefix or ctx.origin
        self.parsers = parsers if parsers is not None else record_parsers()
        # each parser's ``header`` method, looked up once: getattr on a compiled parser that
        # has none raises and clears an AttributeError, about a microsecond a record
        self._headers: dict[object, Callable[[list[str], ParseContext], RecordHeader | None]] = {
            parser: parser.header for parser in self.parsers if hasattr(parser, "header")}  # type: ignore[attr-defined]
        self.stats = FramingStats()
        self._parser: RecordParser | None = None  # parser of the open record
        self._lines: list[str] = []
        self._first_lineno = 0
        self._size = 0
        self._preferred: RecordParser | None = None

    def feed(self, line: str, lineno: int) -> list[Event]:
        """Add one line (without its newline); returns the events of records it closed."""
        return self.feed_lines((line,), lineno)

    def feed_lines(self, lines: Iterable[str], lineno: int) -> list[Event]:
        """Add consecutive lines, the first being line ``lineno``; returns the events of the
        records they closed. The same as ``feed`` line by line, with the per-line overhead
        (attribute look-ups and stores, a call and a list per line) paid once per batch:
        the open record lives in locals and is written back at the end.

        ``joiner``: the open record's parser when it may join lines; None without an open
        record or for a single-line parser, whose ``continues`` is then never asked."""
        out: list[Event] = []
        stats = self.stats
        parser, record, first_lineno, size = self._parser, self._lines, self._first_lineno, self._size
        preferred = self._preferred
        joiner = _joiner(parser)
        preferred_joiner = _joiner(preferred)
        close = self._close
        start = lineno
        lineno -= 1
        try:
            for line in lines:
                lineno += 1
                if joiner is not None and (len(record) < MAX_RECORD_LINES and size < MAX_PARSE_BYTES
                                           and joiner.continues(record[0], line)):
                    record.append(line)
                    size += len(line)
                    continue
                if not line or line.isspace():  # `not line.strip()` without a copy
                    stats.blank += 1
                    continue
                if parser is not None:
                    out += close(parser, record, first_lineno)
                    parser = joiner = None
                if len(line) > MAX_PARSE_BYTES:
                    chosen = None
                elif preferred is not None and preferred.sniff(line):
                    chosen = preferred
                    joiner = preferred_joiner
                else:
                    chosen = choose_parser(line, preferred, self.parsers, tried=True)
                    if chosen is not None:  # it becomes the preferred parser below
                        joiner = preferred_joiner = _joiner(chosen)
                if chosen is None:
                    stats.records += 1
                    stats.unparsed += 1
                    stats.events += 1
                    self.ctx.ref = f"{self.ref_prefix}:{lineno}"
                    reason = "oversize" if len(line) > MAX_PARSE_BYTES else "no parser recognised the record"
                    out.append(unparsed_event([line], self.ctx, reason))
                    continue
                preferred = parser = chosen
                record = [line]
                first_lineno = lineno
                size = len(line)
        finally:
            self._parser, self._lines, self._first_lineno, self._size = parser, record, first_lineno, size
            self._preferred = preferred
            stats.lines += lineno - start + 1
        return out

    def flush(self) -> list[Event]:
        """Close the open record (end of input, or idle on a live stream)."""
        parser, lines = self._parser, self._lines
        if parser is None:
            return []
        self._parser, self._lines = None, []
        return self._close(parser, lines, self._first_lineno)

    def _close(self, parser: RecordParser, lines: list[str], first_lineno: int) -> list[Event]:
        """The events of one complete record."""
        ctx = self.ctx
        ctx.ref = f"{self.ref_prefix}:{first_lineno}"
        stats = self.stats
        stats.records += 1
        gate = self.gate
        if gate is not None and (header := self._headers.get(parser)) is not None:
            event = _header_only(parser, header, lines, ctx, gate)
            if event is not None:
                stats.parsed += 1
                stats.events += 1
                ctx.last_time = event.time
                return [event]
        events, parsed = parse_record(parser, lines, ctx)
        if parsed:
            stats.parsed += 1
        else:
            stats.unparsed += 1
        stats.events += len(events)
        ctx.last_time = events[-1].time
        return events


def _header_only(parser: RecordParser, header: Callable[[list[str], ParseContext], RecordHeader | None],
                 lines: list[str], ctx: ParseContext, gate: RecordGate) -> Event | None:
    """The header event of a record nothing needs parsed in full, else None (parse it)."""
    try:
        found = header(lines, ctx)
    except Exception:  # the full parse decides what the record is (and keeps it raw if bad)
        return None
    if found is None or gate(found[0], found[1], found[2], found[3], found[4]):
        return None
    try:
        event: Event = parser.header_event(lines, ctx, (parser, lines, ctx.copy()), found)  # type: ignore[attr-defined]
    except Exception:  # as above: the full parse says what is wrong with the record
        return None
    return event


def frame_lines(lines: Iterable[str], ctx: ParseContext, ref_prefix: str = "",
                stats: FramingStats | None = None) -> Iterator[Event]:
    """Events of a whole stream of lines (line numbers start at 1)."""
    framer = Framer(ctx, ref_prefix)
    for lineno, line in enumerate(lines, 1):
        yield from framer.feed(line, lineno)
    yield from framer.flush()
    if stats is not None:
        stats.add(framer.stats)


def parse_text(text: str, host: str = "", origin: str = "test", year: int | None = None) -> list[Event]:
    """Parse a block of text (tests, vectors, stdin snippets)."""
    ctx = ParseContext(host=host, origin=origin, year=year)
    # split on "\n" only: str.splitlines() would also split on \x1d (auditd's ENRICHED separator)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return list(frame_lines((line.rstrip("\r") for line in lines), ctx, ref_prefix=origin))
