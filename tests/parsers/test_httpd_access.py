"""httpd_access: Apache access logs in front of keystone and the other APIs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackwatch.parsers.framing import parse_text
from stackwatch.parsers.httpd_access import PARSER, client_ip, http_fields, parse_clf_time

REFERENCES = "cadf/canonical-smoke-alerts/references.md"


def test_every_openstack_access_line_in_the_smoke_alerts_references_parses(corpus):
    text = (corpus / REFERENCES).read_text().split("## Canonical K8s")[0]  # the OpenStack part
    lines = [line for line in text.splitlines() if re.match(r'^(\d+\.\d+\.\d+\.\d+ - - \[|"GET )', line)]
    assert len(lines) >= 8
    for line in lines:
        (event,) = parse_text(line)
        assert event.kind == "httpd_access", line
        assert event.attrs["status"] == int(re.search(r'" (\d{3}) ', line).group(1))


@pytest.mark.parametrize(("method", "path", "status", "action", "outcome"), [
    ("POST", "/v3/auth/tokens", 401, "authenticate", "failure"),
    ("POST", "/identity/v3/auth/tokens", 201, "authenticate", "success"),
    ("POST", "/v3/auth/tokens?nocatalog", 401, "authenticate", "failure"),
    ("POST", "/v3/auth/tokens", 400, "http.request", "failure"),
    ("GET", "/v3/auth/tokens", 401, "http.request", "failure"),
    ("POST", "/v2.1/servers", 401, "http.request", "failure"),
    ("GET", "/v2.1/servers", 200, "http.request", "success"),
])
def test_http_fields_authenticate_mapping(method, path, status, action, outcome):
    fields = http_fields(method, path, status, 10, 0.1, "10.0.0.1")
    assert (fields["action"], fields["outcome"]) == (action, outcome)
    assert fields["attrs"] == {"method": method, "path": path, "status": status, "bytes": 10, "duration": 0.1}


@pytest.mark.parametrize(("text", "expected"), [
    ("29/Sep/2025:09:46:23 +0000", datetime(2025, 9, 29, 9, 46, 23, tzinfo=UTC)),
    ("29/Sep/2025:09:46:23 -0230", datetime(2025, 9, 29, 12, 16, 23, tzinfo=UTC)),
    ("01/Jan/2026:00:30:00 +0100", datetime(2025, 12, 31, 23, 30, tzinfo=UTC)),
])
def test_parse_clf_time(text, expected):
    assert parse_clf_time(text) == expected


@pytest.mark.parametrize(("text", "ip"), [
    ("10.0.0.1", "10.0.0.1"),
    ('"127.0.0.1"', "127.0.0.1"),
    ("::ffff:10.17.2.199", "10.17.2.199"),
    ("2001:db8::1", "2001:db8::1"),
    ("203.0.113.9, 10.0.0.1", "10.0.0.1"),  # the address the proxy saw, not the forgeable first
])
def test_client_ip(text, ip):
    assert client_ip(text) == ip


@pytest.mark.parametrize("line", [
    "2017-05-16 00:00:00.008 25746 INFO nova.osapi_compute.wsgi.server [-] x",
    "<134>May 16 00:00:00 host sshd[1]: Accepted password for root from 10.0.0.1 port 22 ssh2",
    '"quoted text without a request" 200',
    "10.0.0.1 - - [not a time] \"GET / HTTP/1.1\" 200 1",
])
def test_sniff_rejects_other_lines(line):
    assert not PARSER.sniff(line)


_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 31), st.integers(0, 23), st.integers(0, 1), st.integers(0, 60),
                          st.sampled_from(["", " +0000", " +0100", " -0230"])), min_size=1, max_size=20))
def test_parse_clf_time_is_the_stamp_whatever_was_cached_before(stamps):
    """Times are cached per text and per minute: each must still be exactly the stamp's
    instant (the minute cache must never serve a second it has not checked: 60 is refused)."""
    for day, hour, minute, second, offset in stamps:
        text = f"{day:02d}/Feb/2024:{hour:02d}:{minute:02d}:{second:02d}{offset}"
        sign = -1 if offset[1:2] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(offset[2:4] or 0), minutes=int(offset[4:6] or 0)))
        try:
            expected = datetime(2024, 2, day, hour, minute, second, tzinfo=tz).astimezone(UTC)
        except ValueError:  # Feb 30, second 60
            with pytest.raises(ValueError):
                parse_clf_time(text)
            continue
        assert parse_clf_time(text) == expected
        assert parse_clf_time(text).tzinfo is UTC


_ACCESS_PREFIXES = st.sampled_from(["", "keystone:5000 ", "a.b-c:80 ", "::1 ", "::ffff:10.0.0.1 ", "h:x ",
                                    "10.0.0.1:5000 ", "10.0.0.1, 10.0.0.2 "])
_ACCESS_RESTS = st.sampled_from([
    '10.0.0.1 - - [29/Sep/2025:09:46:23 +0000] "GET / HTTP/1.1" 200 12',
    '- - [29/Sep/2025:09:46:23] "POST /v3/auth/tokens HTTP/1.1" 401 9 "-" "curl/8" 1234',
    'u - bob [29/Sep/2025:09:46:23 -0100] "GET /x HTTP/1.1" - - 77 tail',
    '10.0.0.1 - - [bad] "GET / HTTP/1.1" 200 12',
])


@settings(max_examples=300, deadline=None)
@given(_ACCESS_PREFIXES, _ACCESS_RESTS)
def test_the_vhost_less_regex_is_taken_only_where_no_vhost_can_match(prefix, rest):
    """_match skips the optional vhost when the first word has no ':'; it must find what
    _LINE finds, vhost included."""
    from stackwatch.parsers import httpd_access

    line = prefix + rest
    expected = httpd_access._LINE.match(line)
    got = httpd_access.HttpdAccessParser()._match(line)
    assert (got is None) == (expected is None)
    if got is not None:
        groups = got.groups() if got.re is httpd_access._LINE else (None, *got.groups())
        assert groups == expected.groups()
