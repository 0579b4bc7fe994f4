"""Arbitrary bytes never crash format detection or any parser, and never lose a record."""

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackwatch.parsers.base import ParseContext
from stackwatch.parsers.framing import Framer
from stackwatch.parsers.registry import message_parsers, record_parsers

PREFIXES = [
    "", "<13>", "<34>1 ", "2017-05-16 00:00:00.008 25746 INFO nova.api [", "type=SYSCALL msg=audit(",
    "Dec 10 06:55:48 LabSZ sshd[24200]: ", '{"oslo.version": "2.0", "oslo.message": ', "{",
    '10.0.0.1 - - [16/May/2017:00:00:00 +0000] "POST ', "AIDE found differences", "[12:00:01] Warning: ",
    "** Alert 1.2: ", "2024-01-02 10:00:00 upgrade ",
]

lines_strategy = st.lists(
    st.tuples(st.sampled_from(PREFIXES), st.binary(max_size=300)).map(
        lambda t: (t[0].encode() + t[1]).replace(b"\n", b" ").decode("utf-8", "surrogateescape")),
    min_size=1, max_size=12,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines_strategy)
def test_framing_never_raises_and_accounts_every_record(lines):
    framer = Framer(ParseContext(host="h", origin="fuzz", received=datetime(2026, 1, 1, tzinfo=UTC)))
    events = []
    for n, line in enumerate(lines, 1):
        events.extend(framer.feed(line, n))
    events.extend(framer.flush())
    stats = framer.stats
    assert stats.parsed + stats.unparsed == stats.records
    assert stats.records + stats.blank >= 1
    for event in events:
        assert event.time.tzinfo is not None
        assert event.raw or event.kind != "unparsed"


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PREFIXES), st.text(max_size=200), st.text(max_size=200))
def test_sniff_and_continues_never_raise(prefix, first, line):
    for parser in record_parsers():
        parser.sniff(prefix + first)
        parser.continues(prefix + first, line)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_message_parsers_never_raise(message):
    for program, parser in message_parsers().items():
        parser.parse_message(program, message)
