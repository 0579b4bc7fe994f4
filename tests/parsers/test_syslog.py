"""Syslog record parser: loghub oracles, year inference, dispatch safety, sniffing."""

from __future__ import annotations

import csv
from datetime import UTC, datetime

import pytest

from stackwatch.parsers import syslog
from stackwatch.parsers.base import ParseContext
from stackwatch.parsers.framing import frame_lines, parse_text
from stackwatch.parsers.syslog import PARSER, parse_structured_data, parse_syslog_line

# loghub structured CSV column names differ per file: (month, day, time, host, program, pid)
ORACLES = {
    "OpenSSH_2k.log": ("Date", "Day", "Time", "Component", None, "Pid"),
    "Linux_2k.log": ("Month", "Date", "Time", "Level", "Component", "PID"),
}


@pytest.mark.parametrize("name", sorted(ORACLES))
def test_loghub_lines_match_structured_oracle(corpus, name):
    directory = corpus / "linux-auth" / "loghub"
    events = parse_text((directory / name).read_text(), year=2005)
    with (directory / f"{name}_structured.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(events) == len(rows) == 2000
    month, day, clock, host, program, pid = ORACLES[name]
    mismatches = []
    for event, row in zip(events, rows, strict=True):
        content = row["Content"].strip()
        if content.startswith("message repeated "):  # we unwrap rsyslog's reduction on purpose
            content = content.split(": [ ", 1)[1].removesuffix("]")
            assert event.attrs["repeated"] == 5
        got = (event.kind, event.time.strftime("%b"), str(event.time.day), event.time.strftime("%H:%M:%S"),
               event.host, event.attrs.get("program", event.service), str(event.attrs.get("pid", "")),
               event.message)
        want = ("syslog", row[month], row[day], row[clock], row[host], row[program] if program else "sshd",
                row[pid], content)
        if got != want:
            mismatches.append((row["LineId"], got, want))
    assert mismatches == []


def ctx_at(received: datetime, year: int | None = None) -> ParseContext:
    return ParseContext(received=received, year=year)


def test_december_read_in_january_is_last_year():
    event = parse_syslog_line("Dec 30 23:00:00 h sshd[1]: x", ctx_at(datetime(2027, 1, 2, tzinfo=UTC)))
    assert event.time == datetime(2026, 12, 30, 23, tzinfo=UTC)


def test_year_hint_in_the_future_of_received_is_rolled_back():
    # the caller took the year from a file written on Jan 2 2027; the line is from Dec 2026
    event = parse_syslog_line("Dec 30 23:00:00 h sshd[1]: x", ctx_at(datetime(2027, 1, 2, tzinfo=UTC), 2027))
    assert event.time.year == 2026


def test_explicit_future_year_is_kept():
    event = parse_syslog_line("Jun  1 00:00:00 h sshd[1]: x", ctx_at(datetime(2026, 1, 2, tzinfo=UTC), 2030))
    assert event.time.year == 2030


def test_same_day_is_not_rolled_back():
    event = parse_syslog_line("Jan  2 10:00:00 h sshd[1]: x", ctx_at(datetime(2027, 1, 2, 9, tzinfo=UTC)))
    assert event.time.year == 2027


def test_year_rolls_over_inside_one_stream():
    events = parse_text("Dec 31 23:59:59 h a: x\nJan  1 00:00:01 h a: y\nJan  1 00:00:02 h a: z", year=2025)
    assert [e.time.year for e in events] == [2025, 2026, 2026]


def test_feb_29_in_a_non_leap_year_takes_the_previous_leap_year():
    event = parse_syslog_line("Feb 29 12:00:00 h a: x", ctx_at(datetime(2027, 3, 1, tzinfo=UTC)))
    assert event.time == datetime(2024, 2, 29, 12, tzinfo=UTC)


def test_time_is_utc_aware():
    event = parse_syslog_line("2026-11-27T08:40:44+02:00 h a: x", ctx_at(datetime(2026, 11, 27, tzinfo=UTC)))
    assert event.time == datetime(2026, 11, 27, 6, 40, 44, tzinfo=UTC)
    assert event.time.tzinfo is UTC


class Exploding:
    name = "exploding"
    programs = frozenset({"sshd"})

    def parse_message(self, program, message):
        raise RuntimeError("boom")


def test_message_parser_error_keeps_the_syslog_event(monkeypatch):
    monkeypatch.setattr(syslog.registry, "message_parser_for", lambda program: Exploding())
    line = "Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for root from 1.2.3.4 port 1 ssh2"
    event = parse_syslog_line(line, ctx_at(datetime(2015, 12, 11, tzinfo=UTC)))
    assert event.kind == "syslog"
    assert event.service == "sshd"
    assert event.action is None
    assert event.attrs["message_parser_error"] == "exploding: RuntimeError: boom"


def test_malformed_structured_data_keeps_the_header():
    event = parse_syslog_line('<13>1 2026-01-01T00:00:00Z h app 1 - [id a="unterminated] msg',
                              ctx_at(datetime(2026, 1, 1, tzinfo=UTC)))
    assert event.kind == "syslog"
    assert event.service == "app"
    assert "unterminated" in event.attrs["sd_error"]


@pytest.mark.parametrize(("text", "sd", "end"), [
    ('[a b="1"]', {"a": {"b": "1"}}, 9),
    ('[a b="x\\"y\\\\z\\]w"] m', {"a": {"b": 'x"y\\z]w'}}, 18),
    ('[a b="c:\\d"]', {"a": {"b": "c:\\d"}}, 12),  # other backslashes are kept (RFC 5424 6.3.3)
    ('[a][b c="1" d="2"]', {"a": {}, "b": {"c": "1", "d": "2"}}, 18),
])
def test_structured_data(text, sd, end):
    assert parse_structured_data(text) == (sd, end)


@pytest.mark.parametrize("text", ['[a b=1]', '[a b="1"', '[ b="1"]', '[a b="1" c]'])
def test_structured_data_errors(text):
    with pytest.raises(ValueError):
        parse_structured_data(text)


@pytest.mark.parametrize("line", [
    "Dec 10 06:55:46 LabSZ sshd[24200]: x",
    "<13>Dec 10 06:55:46 LabSZ sshd: x",
    "<13>1 - - - - - -",
    "2026-11-27T08:40:44.123456+00:00 h tag: x",
    "2015 Nov 13 13:40:01 ether rsyslogd-2177: x",
    "2016-06-29T11:00:00.123Z|00001|bridge|INFO|x",
    "srv sshd[13709]: x",
    "2020-03-23 06:47:42.801612-0700  localhost sshd[3186]: x",
])
def test_sniff_accepts_syslog_shapes(line):
    assert PARSER.sniff(line)


@pytest.mark.parametrize("line", [
    "2017-05-16 00:00:00.008 25746 INFO nova.osapi_compute.wsgi.server [-] x",
    '{"event_type": "identity.authenticate"}',
    "type=SYSCALL msg=audit(1364481363.243:24287): arch=c000003e",
    "<html>",
    "just some text",
])
def test_sniff_rejects_other_formats(line):
    assert not PARSER.sniff(line)


DEC_6 = datetime(2026, 12, 6, 12, tzinfo=UTC)


def _after(previous: datetime, line: str, received: datetime = DEC_6, live: bool = False) -> datetime:
    """The time of ``line`` parsed in a stream whose previous record was at ``previous``."""
    return parse_syslog_line(line, ParseContext(received=received, last_time=previous, live=live)).time


@pytest.mark.parametrize("live", [False, True])
def test_a_new_year_that_would_be_in_the_future_is_not_chosen(live: bool):
    # the case: on Dec 6, a `Jan  1` line was stored as next year and moved the clock
    assert _after(DEC_6, "Jan  1 00:00:00 h a: x", live=live) == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("live", [False, True])
def test_a_stamp_later_this_year_than_its_receipt_is_last_years(live: bool):
    assert _after(DEC_6, "Dec 25 10:00:00 h a: x", live=live) == datetime(2025, 12, 25, 10, tzinfo=UTC)


@pytest.mark.parametrize("live", [False, True])
def test_a_stamp_a_time_zone_ahead_of_its_receipt_keeps_its_year(live: bool):
    assert _after(DEC_6, "Dec  6 23:30:00 h a: x", live=live) == datetime(2026, 12, 6, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize("live", [False, True])
def test_new_year_at_midnight_still_rolls_over(live: bool):
    received = datetime(2027, 1, 1, 0, 0, 5, tzinfo=UTC)
    previous = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    new_year = datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert _after(previous, "Jan  1 00:00:01 h a: x", received, live) == new_year


def test_a_live_stream_is_anchored_by_the_receive_time_not_a_bogus_previous_record():
    bogus_previous = datetime(2026, 1, 1, tzinfo=UTC)
    stamp = datetime(2026, 12, 6, 11, 59, tzinfo=UTC)
    assert _after(bogus_previous, "Dec  6 11:59:00 h a: x", live=True) == stamp


def test_the_remembered_minute_is_not_reused_when_it_would_be_in_the_future():
    previous, later = DEC_6.replace(day=1), datetime(2027, 6, 1, tzinfo=UTC)
    assert _after(previous, "Dec 20 10:00:00 h a: x", later) == datetime(2026, 12, 20, 10, tzinfo=UTC)
    # the same minute, now received before it: the year before
    assert _after(previous, "Dec 20 10:00:07 h a: x") == datetime(2025, 12, 20, 10, 0, 7, tzinfo=UTC)


def test_a_step_back_across_new_year_is_last_years():
    previous = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    assert _after(previous, "Dec 31 23:59:58 h a: x") == datetime(2025, 12, 31, 23, 59, 58, tzinfo=UTC)


def test_records_after_a_wrong_new_year_stamp_keep_their_year():
    """`Jan  1` on Dec 6 is kept in this January (not next year's); the file's next record,
    Dec 6, is this year's too, not put a year back by that odd predecessor."""
    lines = ["Dec  6 10:00:00 h a: x", "Jan  1 00:00:00 h a: forged", "Dec  6 10:00:01 h a: y"]
    odd = list(frame_lines(lines, ParseContext(received=DEC_6, year=2026)))
    assert [e.time.year for e in odd] == [2026, 2026, 2026]
