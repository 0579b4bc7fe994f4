"""HAProxy's HTTP log: the real client, the accept time in milliseconds, timers and aborts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stackwatch.parsers.haproxy import MESSAGE_PARSER

LOGIN = ('127.0.0.6:52959 [06/Dec/2026:20:35:56.494] keystone_front keystone_back/ks1 '
         '0/0/0/129/{total} {status} 332 - - {term} 1/1/0/0/0 0/0 {captured}"POST /v3/auth/tokens HTTP/1.1"')


def _fields(total: str = "129", status: str = "401", term: str = "----", captured: str = "") -> dict:
    fields = MESSAGE_PARSER.parse_message("haproxy", LOGIN.format(total=total, status=status, term=term,
                                                                   captured=captured))
    assert fields is not None
    return fields


def test_a_refused_login_is_a_keystone_authenticate_failure_from_the_tcp_client() -> None:
    fields = _fields()
    assert (fields["action"], fields["outcome"], fields["service"]) == ("authenticate", "failure", "keystone")
    assert fields["initiator"].source_ip == "127.0.0.6"
    assert fields["kind"] == "haproxy"


def test_the_accept_time_keeps_its_milliseconds() -> None:
    assert _fields()["time"] == datetime(2026, 12, 6, 20, 35, 56, 494000, tzinfo=UTC)


def test_the_total_time_is_the_duration() -> None:
    assert _fields(total="+1290")["attrs"]["duration"] == pytest.approx(1.29)


def test_captured_headers_before_the_request_are_skipped() -> None:
    assert _fields(captured="{keystone.example.org} ")["attrs"]["path"] == "/v3/auth/tokens"


def test_an_aborted_request_has_no_status_and_no_outcome() -> None:
    fields = _fields(total="-1", status="-1", term="CD--")
    assert "status" not in fields["attrs"] and "outcome" not in fields
    assert fields["attrs"]["termination_state"] == "CD--"


@pytest.mark.parametrize("message", [
    "Proxy keystone_front started.",
    "Server keystone_back/ks1 is DOWN, reason: Layer4 connection problem",
    "127.0.0.1:4000 [06/Dec/2026:20:35:56.494] tcp_front tcp_back/s1 1/0/5 212 -- 1/1/0/0/0 0/0",
])
def test_other_messages_say_nothing(message: str) -> None:
    assert MESSAGE_PARSER.parse_message("haproxy", message) is None
