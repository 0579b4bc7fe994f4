"""Framer.feed_lines keeps the open record in locals for a whole batch: the events, the
counters and the open record must be exactly those of the plain one-record-at-a-time framing,
whatever the batch boundaries."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackwatch.core.event import Event
from stackwatch.parsers.base import MAX_PARSE_BYTES, ParseContext, RecordParser, is_multiline
from stackwatch.parsers.framing import MAX_RECORD_LINES, Framer, choose_parser
from stackwatch.parsers.registry import record_parsers

BASE = datetime(2026, 3, 2, tzinfo=UTC)


class PlainFramer(Framer):
    """The framing rules spelled out line by line, each record closed by ``_close``."""

    def feed_lines(self, lines: Iterable[str], lineno: int) -> list[Event]:
        out: list[Event] = []
        for line in lines:
            self.stats.lines += 1
            parser = self._parser
            if parser is not None and (len(self._lines) < MAX_RECORD_LINES and self._size < MAX_PARSE_BYTES
                                       and parser.continues(self._lines[0], line)):
                self._lines.append(line)
                self._size += len(line)
            elif not line.strip():
                self.stats.blank += 1
            else:
                if parser is not None:
                    out += self._close(parser, self._lines, self._first_lineno)
                    self._parser = None
                chosen = None if len(line) > MAX_PARSE_BYTES else choose_parser(line, self._preferred,
                                                                                self.parsers)
                if chosen is None:
                    self.stats.records += 1
                    self.stats.unparsed += 1
                    self.stats.events += 1
                    self.ctx.ref = f"{self.ref_prefix}:{lineno}"
                    reason = "oversize" if len(line) > MAX_PARSE_BYTES else "no parser recognised the record"
                    out.append(self._unparsed([line], reason))
                else:
                    self._preferred = self._parser = chosen
                    self._lines, self._first_lineno, self._size = [line], lineno, len(line)
            lineno += 1
        return out

    def _unparsed(self, lines: list[str], reason: str) -> Event:
        from stackwatch.parsers.base import unparsed_event

        return unparsed_event(lines, self.ctx, reason)


class Toy:
    """A multi-line format whose records can fail in every way a parser can."""

    name = "toy"

    def sniff(self, line: str) -> bool:
        return line.startswith("T")

    def continues(self, first: str, line: str) -> bool:
        return line.startswith(" ")

    def parse(self, lines: list[str], ctx: ParseContext) -> list[Event]:
        text = "\n".join(lines)
        if "boom" in text:
            raise ValueError("boom")
        if "none" in text:
            return []
        kind = "unparsed" if "raw" in text else "toy"
        count = 2 if "twice" in text else 1
        return [Event(time=BASE + timedelta(seconds=len(text)), received=BASE, kind=kind, message=text,
                      raw=text, ref=ctx.ref) for _ in range(count)]


class Single:
    name = "single"

    def sniff(self, line: str) -> bool:
        return line.startswith("S")

    def continues(self, first: str, line: str) -> bool:
        return False

    def parse(self, lines: list[str], ctx: ParseContext) -> list[Event]:
        return [Event(time=BASE, received=BASE, kind="single", message=lines[0], raw=lines[0], ref=ctx.ref)]


TOY_LINES = ["T start", " more", " twice", "T boom", " x", "T none", "T raw", "S one", "", "   ", " orphan",
             "junk", "T ok", " ", "S two", "x" * (MAX_PARSE_BYTES + 1), "T big", " " + "y" * MAX_PARSE_BYTES,
             " after the size cap"]


def frame(framer_type: type[Framer], lines: list[str], cuts: list[int],
          parsers: tuple[RecordParser, ...] | None) -> tuple[bytes, object, tuple[object, ...]]:
    ctx = ParseContext(host="h", origin="test", received=BASE, year=2026)
    framer = framer_type(ctx, ref_prefix="f", parsers=parsers)
    events: list[Event] = []
    start = 0
    for cut in [*cuts, len(lines)]:
        events += framer.feed_lines(lines[start:cut], start + 1)
        start = cut
    state = (framer._parser, list(framer._lines), framer._first_lineno, framer._size, framer._preferred)
    events += framer.flush()
    return msgspec.json.encode(events), framer.stats, state


def random_cuts(rng: random.Random, count: int) -> list[int]:
    return sorted(rng.sample(range(count + 1), rng.randint(0, min(count, 6))))


@pytest.mark.parametrize("seed", range(60))
def test_toy_records_frame_as_plain_framing_does(seed: int):
    rng = random.Random(seed)
    lines = [rng.choice(TOY_LINES) for _ in range(rng.randint(0, 40))]
    cuts = random_cuts(rng, len(lines))
    parsers = (Toy(), Single())
    assert frame(Framer, lines, cuts, parsers) == frame(PlainFramer, lines, [], parsers)


def test_a_record_is_cut_at_max_record_lines():
    lines = ["T long"] + [" x"] * (MAX_RECORD_LINES + 3) + ["S end"]
    parsers = (Toy(), Single())
    assert frame(Framer, lines, [7, 5000], parsers) == frame(PlainFramer, lines, [], parsers)


REAL_LINES = [
    "2017-05-16 00:00:00.008 25746 INFO nova.osapi_compute.wsgi.server [-] line",
    "2017-05-16 00:00:01.008 25746 ERROR nova.api [req-1 - - - - -] failed",
    "2017-05-16 00:00:01.008 25746 ERROR nova.api Traceback (most recent call last):",
    "  File \"x.py\", line 1, in <module>",
    "ValueError: bad",
    "Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for root from 10.0.0.1 port 22 ssh2",
    '{"event_type": "identity.authenticate", "payload": {}}',
    '{"truncated": ',
    "type=SYSCALL msg=audit(1364481363.243:24287): arch=c000003e syscall=2 success=no",
    "type=CWD msg=audit(1364481363.243:24287):  cwd=\"/root\"",
    "",
    "not a log line at all",
    "\x1b[31m",
]


@pytest.mark.parametrize("seed", range(40))
def test_real_parsers_frame_as_plain_framing_does(seed: int):
    rng = random.Random(seed)
    lines = [rng.choice(REAL_LINES) for _ in range(rng.randint(0, 30))]
    cuts = random_cuts(rng, len(lines))
    parsers = record_parsers()
    assert frame(Framer, lines, cuts, parsers) == frame(PlainFramer, lines, [], parsers)


class OneLine(Single):
    """A single-line parser that says so: the framing must never ask its ``continues``."""

    name = "one_line"
    multiline = False

    def __init__(self) -> None:
        self.asked = 0

    def sniff(self, line: str) -> bool:
        return line.startswith("O")

    def continues(self, first: str, line: str) -> bool:
        self.asked += 1
        return False


ONE_LINE_LINES = [*TOY_LINES, "O one", "O two", " not joined to O"]


@pytest.mark.parametrize("seed", range(40))
def test_a_single_line_parser_frames_as_plain_framing_does_without_being_asked(seed: int):
    rng = random.Random(seed)
    lines = [rng.choice(ONE_LINE_LINES) for _ in range(rng.randint(0, 40))]
    cuts = random_cuts(rng, len(lines))
    one_line = OneLine()
    parsers = (Toy(), Single(), one_line)
    framed = frame(Framer, lines, cuts, parsers)
    assert one_line.asked == 0
    assert framed == frame(PlainFramer, lines, [], parsers)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(REAL_LINES), st.text(max_size=200), st.text(max_size=200))
def test_parsers_declared_single_line_never_continue(prefix: str, first: str, line: str):
    single_line = [parser for parser in record_parsers() if not is_multiline(parser)]
    assert {parser.name for parser in single_line} >= {"syslog", "pkg", "suricata_fast"}
    for parser in single_line:
        assert parser.continues(prefix + first, line) is False
        assert parser.continues(prefix, prefix + line) is False
