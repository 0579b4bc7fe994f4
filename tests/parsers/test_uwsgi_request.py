"""uWSGI's request log: the request-start time (asctime, no zone) and the client behind a proxy."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stackwatch.parsers.base import ParseContext
from stackwatch.parsers.uwsgi_request import PARSER, request_time

LINE = ("[pid: 30044|app: 0|req: 6/5] {addr} () {{30 vars in 399 bytes}} [Sun Dec  6 20:26:37 2026] "
        "POST /v3/auth/tokens => generated 109 bytes in {took} (HTTP/1.1 401) 5 headers in 228 bytes "
        "(2 switches on core 0)")


@pytest.mark.parametrize(("text", "expected"), [
    ("Sun Dec  6 20:26:37 2026", datetime(2026, 12, 6, 20, 26, 37, tzinfo=UTC)),
    ("Mon Dec 14 01:02:03 2026", datetime(2026, 12, 14, 1, 2, 3, tzinfo=UTC)),
])
def test_request_time(text: str, expected: datetime) -> None:
    assert request_time(text) == expected


@pytest.mark.parametrize(("addr", "client"), [
    ("127.0.0.2", "127.0.0.2"),
    ("203.0.113.66, 127.0.0.6", "127.0.0.6"),  # a forged header, then the address HAProxy added
    ("2001:db8::5", "2001:db8::5"),
])
def test_the_client_is_the_address_the_proxy_saw(addr: str, client: str) -> None:
    [event] = PARSER.parse([LINE.format(addr=addr, took="195 msecs")], ParseContext())
    assert event.initiator.source_ip == client


@pytest.mark.parametrize(("took", "seconds"), [("195 msecs", 0.195), ("1500 micros", 0.0015)])
def test_duration_in_either_unit(took: str, seconds: float) -> None:
    [event] = PARSER.parse([LINE.format(addr="127.0.0.2", took=took)], ParseContext())
    assert event.attrs["duration"] == pytest.approx(seconds)


def test_uwsgi_own_messages_are_not_requests() -> None:
    assert not PARSER.sniff("spawned uWSGI worker 1 (pid: 28504, cores: 4)")
    assert not PARSER.sniff("[pid: 28504|app: 0|req: 1/1] truncated line")
