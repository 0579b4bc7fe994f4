"""Framing: turn a stream of lines into records, choose a parser per record, and make
sure every record becomes at least one event.

The parser chosen for the previous record is tried first (a file is nearly always one
format), then the registry in order. Continuation lines (tracebacks, auditd records of
the same serial, AIDE report bodies) are joined to their record by the parser's own
``continues``. A parser that raises, or returns nothing, leaves the record as an
``unparsed`` event: raw kept, reason recorded, counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from stackwatch.core.event import Event
from stackwatch.parsers.base import MAX_PARSE_BYTES, ParseContext, RecordParser, unparsed_event
from stackwatch.parsers.registry import record_parsers

MAX_RECORD_LINES = 5000
"""A record that keeps growing past this is cut (the rest starts new records)."""


@dataclass(slots=True)
class FramingStats:
    lines: int = 0
    blank: int = 0
    records: int = 0
    parsed: int = 0  # records at least one parser understood
    unparsed: int = 0  # records kept raw as `unparsed` events
    events: int = 0  # events produced (a record may give several, e.g. an AIDE report)

    def add(self, other: FramingStats) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def choose_parser(line: str, preferred: RecordParser | None,
                  parsers: tuple[RecordParser, ...]) -> RecordParser | None:
    if preferred is not None and preferred.sniff(line):
        return preferred
    for parser in parsers:
        if parser is not preferred and parser.sniff(line):
            return parser
    return None


class Framer:
    """Frames one stream (a file, a connection). Not thread-safe; one per stream."""

    def __init__(self, ctx: ParseContext, ref_prefix: str = "",
                 parsers: tuple[RecordParser, ...] | None = None) -> None:
        self.ctx = ctx
        self.ref_prefix = ref_prefix or ctx.origin
        self.parsers = parsers if parsers is not None else record_parsers()
        self.stats = FramingStats()
        self._parser: RecordParser | None = None  # parser of the open record
        self._lines: list[str] = []
        self._first_lineno = 0
        self._size = 0
        self._preferred: RecordParser | None = None

    def feed(self, line: str, lineno: int) -> list[Event]:
        """Add one line (without its newline); returns the events of records it closed."""
        self.stats.lines += 1
        parser = self._parser
        if parser is not None and (len(self._lines) < MAX_RECORD_LINES and self._size < MAX_PARSE_BYTES
                                   and parser.continues(self._lines[0], line)):
            self._lines.append(line)
            self._size += len(line)
            return []
        if not line.strip():
            self.stats.blank += 1
            return []
        out = self.flush() if parser is not None else []
        chosen = choose_parser(line, self._preferred, self.parsers) if len(line) <= MAX_PARSE_BYTES else None
        if chosen is None:
            self.stats.records += 1
            self.stats.unparsed += 1
            self.stats.events += 1
            self.ctx.ref = f"{self.ref_prefix}:{lineno}"
            reason = "oversize" if len(line) > MAX_PARSE_BYTES else "no parser recognised the record"
            out.append(unparsed_event([line], self.ctx, reason))
            return out
        self._preferred = chosen
        self._parser = chosen
        self._lines = [line]
        self._first_lineno = lineno
        self._size = len(line)
        return out

    def flush(self) -> list[Event]:
        """Close the open record (end of input, or idle on a live stream)."""
        parser, lines = self._parser, self._lines
        if parser is None:
            return []
        self._parser, self._lines = None, []
        ctx = self.ctx
        ctx.ref = f"{self.ref_prefix}:{self._first_lineno}"
        self.stats.records += 1
        try:
            events = parser.parse(lines, ctx)
        except Exception as exc:  # a bad record must never stop the stream
            events = [unparsed_event(lines, ctx, f"{parser.name}: {type(exc).__name__}: {exc}"[:300])]
            self.stats.unparsed += 1
        else:
            if not events:
                events = [unparsed_event(lines, ctx, f"{parser.name}: nothing recognised")]
                self.stats.unparsed += 1
            elif events[0].kind == "unparsed":
                self.stats.unparsed += 1
            else:
                self.stats.parsed += 1
        self.stats.events += len(events)
        ctx.last_time = events[-1].time
        return events


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
