"""The syslog parser's remembered work (minute times, headers, repeated messages) gives exactly
what reading every line afresh gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackwatch.parsers import syslog
from stackwatch.parsers.base import ParseContext
from stackwatch.parsers.framing import parse_text

RECEIVED = datetime(2026, 3, 5, tzinfo=UTC)


def fresh_time(rest: str, ctx: ParseContext) -> tuple[datetime, int]:
    """The stamp read as before any memory: the regex, then infer_time."""
    match = syslog._TS3164.match(rest)
    if match is None:
        raise ValueError("not an RFC 3164 timestamp")
    mon, day, hh, mm, ss, frac = match.groups()
    micro = int(frac.ljust(6, "0")) if frac else 0
    return syslog.infer_time(syslog.MONTHS[mon], int(day), int(hh), int(mm), int(ss), micro, ctx), match.end()


def outcome(function: Any, *args: Any) -> Any:
    try:
        return function(*args)
    except Exception as exc:  # the same error is part of the same behaviour
        return type(exc), str(exc)


stamps = st.builds(
    lambda month, gap, day, hour, minute, second, frac, spaces, tail: (
        f"{month}{gap}{day} {hour:02d}:{minute:02d}:{second:02d}{frac}{spaces}{tail}"),
    st.sampled_from(["Jan", "Feb", "Mar", "Jun", "Jul", "Dec"]),
    st.sampled_from([" ", "  "]),
    st.sampled_from(["1", " 2", "02", "12", "28", "29", "30", "31", "9"]),
    st.integers(0, 25), st.integers(0, 60), st.integers(0, 61),
    st.sampled_from(["", "", "", ".5", ".123456"]),
    st.sampled_from([" ", " ", " ", "  ", "   "]),
    st.sampled_from(["h a: x", " h a: x", "", "x"]),
)
lasts = st.one_of(
    st.none(),
    st.datetimes(min_value=datetime(990, 1, 1), max_value=datetime(9010, 12, 31),
                 timezones=st.sampled_from([UTC, timezone(timedelta(hours=2))])),
    st.sampled_from([datetime(2026, m, d, h, tzinfo=UTC) for m in (1, 3, 6, 9, 12) for d in (1, 2, 30)
                     for h in (0, 12, 23)]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(stamps, lasts), min_size=1, max_size=20), st.sampled_from([None, 2026]))
def test_remembered_minutes_give_infer_times(cases: list[tuple[str, datetime | None]], year: int | None):
    syslog._MINUTE_TIMES.clear()
    for rest, last in cases * 2:  # the second round finds every minute remembered
        ctx = ParseContext(received=RECEIVED, year=year, last_time=last)
        assert outcome(syslog._rfc3164_time, rest, ctx) == outcome(fresh_time, rest, ctx)


BOUNDARY_STEPS = [timedelta(days=days, seconds=seconds) for days in (-1, 0, 1)
                  for seconds in (-61, -59, -30, -1, 0, 1, 29, 59)]


@pytest.mark.parametrize("stamp", ["Jan  1 00:00:30", "Jan  1 00:00:00", "Dec 31 23:59:59", "Feb 29 12:00:45",
                                   "Jul  2 12:00:10", "Mar  1 00:00:59"])
def test_remembered_minutes_hold_at_the_half_year_bounds(stamp: str):
    """Previous times within a minute and a day of where infer_time changes the year, seen in
    any order: each minute is remembered with one previous time and reused for the others."""
    rest = stamp + " h a: x"
    hour, minute, second = map(int, stamp[7:].split(":"))
    month, day = syslog.MONTHS[stamp[:3]], int(stamp[4:6])
    lasts = []
    for year in (2023, 2024, 2025, 2026):
        when = syslog._make(year, month, day, hour, minute, second, 0)
        for bound in (when - syslog.HALF_YEAR, when + syslog.HALF_YEAR):
            lasts += [bound + step for step in BOUNDARY_STEPS]
    for order in (lasts, lasts[::-1], lasts[::2] + lasts[1::2]):
        syslog._MINUTE_TIMES.clear()
        for last in order:
            ctx = ParseContext(received=RECEIVED, last_time=last)
            assert syslog._rfc3164_time(rest, ctx) == fresh_time(rest, ctx), last


header_text = st.one_of(
    st.builds(lambda host, gap, tag, colon: host + gap + tag + colon,
              st.sampled_from(["h", "cmp1", "", "a:b", "[x]", "a:"]), st.sampled_from([" ", "  ", ""]),
              st.sampled_from(["sshd", "sshd[1]", "a b", "a:b", "x[1:2]", "[t]", "s[1 2]", "s(pam)[3]"]),
              st.sampled_from([":", ": ", ":  ", " :", ": :"])),
    st.text(alphabet="ab1 :[]-.\t()", max_size=24),
)
tails = st.sampled_from(["", "x", " x", "  x", "y: z", ":", " "])


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(header_text, tails), min_size=1, max_size=6), tails)
def test_remembered_headers_split_as_afresh(headers: list[tuple[str, str]], other: str):
    # each header twice, with another message: the second finds it remembered
    bodies = [header + tail for header, tail in headers] + [header + other for header, _ in headers]
    syslog._HEADERS.clear()
    for body in bodies:
        ctx = ParseContext(received=RECEIVED, year=2026)
        line = "Mar  2 08:00:00 " + body
        assert outcome(syslog.parse_syslog_line, line, ctx) == outcome(parse_afresh, line, ctx)


def parse_afresh(line: str, ctx: ParseContext) -> Any:
    """parse_syslog_line of 'Mar  2 08:00:00 <body>' without the remembered headers."""
    body = line[fresh_time(line, ctx)[1]:]
    host, tag, pid, start = syslog._split_header(body)
    time = datetime(2026, 3, 2, 8, tzinfo=UTC)
    return syslog._event(line, ctx, None, time, host, tag, pid, body[start:], {})


def test_remembered_headers_keep_host_tag_pid_and_message():
    text = "\n".join(["Mar  2 08:00:00 cmp1 sshd[12]: Accepted publickey for a from 10.0.0.1 port 1 ssh2",
                      "Mar  2 08:00:01 cmp1 sshd[12]:  two spaces",
                      "Mar  2 08:00:02 cmp1 sshd[12]: Accepted publickey for b from 10.0.0.2 port 2 ssh2",
                      "Mar  2 08:00:03 [sshd]: bracketed",
                      "Mar  2 08:00:04 [sshd]: again"])
    syslog._HEADERS.clear()
    events = parse_text(text, year=2026)
    assert [(e.host, e.service, e.attrs.get("pid"), e.message) for e in events] == [
        ("cmp1", "sshd", 12, "Accepted publickey for a from 10.0.0.1 port 1 ssh2"),
        ("cmp1", "sshd", 12, "two spaces"),
        ("cmp1", "sshd", 12, "Accepted publickey for b from 10.0.0.2 port 2 ssh2"),
        ("", "sshd", None, "bracketed"),
        ("", "sshd", None, "again"),
    ]
    assert events[2].initiator.name == "b"


CRON = ("Mar  2 08:00:{:02d} cmp1 CRON[{}]: pam_unix(cron:session): session opened for user root(uid=0)"
        " by (uid=0)")


def test_a_repeated_message_gives_equal_events_with_their_own_attrs():
    syslog._REMEMBERED.clear()
    first, second = parse_text(CRON.format(1, 100) + "\n" + CRON.format(2, 101), year=2026)
    assert (first.action, first.outcome, first.target, first.initiator) == (
        second.action, second.outcome, second.target, second.initiator)
    assert first.attrs == {**second.attrs, "pid": 100}
    assert first.attrs is not second.attrs
    syslog._REMEMBERED.clear()
    afresh = parse_text(CRON.format(2, 101), year=2026)[0]
    assert msgspec.structs.replace(afresh, received=second.received, ref=second.ref) == second


def test_a_repeated_message_without_attrs_of_its_own_does_not_share_the_parsers():
    line = "Mar  2 08:00:01 cmp1 CRON: pam_unix(cron:session): session closed for user root"
    first, second = parse_text(line + "\n" + line, year=2026)
    assert first.attrs == second.attrs == {"pam_module": "pam_unix", "pam_service": "cron",
                                           "pam_type": "session"}
    assert first.attrs is not second.attrs


def test_a_user_manager_does_not_change_the_remembered_fields_of_pid_1():
    lines = ["Mar  2 08:00:00 h systemd[1234]: Reached target Shutdown.",
             "Mar  2 08:00:01 h systemd[1]: Reached target Shutdown.",
             "Mar  2 08:00:02 h systemd[1234]: Reached target Shutdown."]
    events = parse_text("\n".join(lines), year=2026)
    assert [e.action for e in events] == [None, "system.shutdown", None]
    assert [e.attrs.get("user_manager") for e in events] == [True, None, True]


class Fixed:
    """A message parser answering the same fields for every message."""

    name = "fixed"
    programs = frozenset({"app"})

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def parse_message(self, program: str, message: str) -> dict[str, Any]:
        return dict(self.fields)


def parse_with(monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any], line: str) -> Any:
    monkeypatch.setattr(syslog.registry, "message_parser_for", lambda program: Fixed(fields))
    return syslog.parse_syslog_line(line, ParseContext(received=RECEIVED, year=2026))


def test_a_message_parser_may_set_any_event_field(monkeypatch: pytest.MonkeyPatch):
    event = parse_with(monkeypatch, {"kind": "suricata", "service": "ids", "request_id": "req-1",
                                     "severity": "critical", "attrs": {"a": 1}},
                       "Mar  2 08:00:00 h app[7]: x")
    assert (event.kind, event.service, event.request_id, event.severity) == ("suricata", "ids", "req-1",
                                                                             "critical")
    assert event.attrs == {"pid": 7, "a": 1}


def test_the_senders_pri_keeps_its_severity(monkeypatch: pytest.MonkeyPatch):
    event = parse_with(monkeypatch, {"severity": "critical", "action": "x"}, "<13>Mar  2 08:00:00 h app: x")
    assert (event.severity, event.action) == ("notice", "x")


def test_an_unknown_field_fails_as_the_event_constructor_does(monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(TypeError, match="Unexpected keyword argument 'bogus'"):
        parse_with(monkeypatch, {"bogus": 1, "action": "x"}, "Mar  2 08:00:00 h app: x")
