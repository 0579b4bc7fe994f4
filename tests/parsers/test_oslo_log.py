"""oslo_log: loghub as an oracle, context blocks, record joining, wrappers, the syslog form."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackwatch.core.event import Initiator
from stackwatch.parsers.base import ParseContext
from stackwatch.parsers.framing import parse_text
from stackwatch.parsers.httpd_access import http_fields, split_request
from stackwatch.parsers.oslo_log import (
    MESSAGE_FIELD_KEYS,
    MESSAGE_PARSER,
    PARSER,
    context_fields,
    message_fields,
    parse_context,
    service_for_logger,
    wsgi_fields,
)

LOGHUB = "openstack/loghub/OpenStack_2k.log"


@pytest.fixture(scope="module")
def loghub(corpus):
    """(events, oracle rows) for the whole loghub sample, parsed once."""
    events = parse_text((corpus / LOGHUB).read_text(), origin="loghub")
    with (corpus / (LOGHUB + "_structured.csv")).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return events, rows


def test_loghub_every_line_is_one_oslo_event(loghub):
    events, rows = loghub
    assert len(rows) == 2000
    assert len(events) == len(rows)
    assert {event.kind for event in events} == {"oslo_log"}


@pytest.mark.parametrize("field", ["time", "pid", "level", "logger", "content", "request_id", "service"])
def test_loghub_matches_structured_oracle(loghub, field):
    events, rows = loghub
    mismatches = []
    for event, row in zip(events, rows, strict=True):
        want, got = {
            "time": (datetime.fromisoformat(f"{row['Date']} {row['Time']}").replace(tzinfo=UTC), event.time),
            "pid": (int(row["Pid"]), event.attrs["pid"]),
            "level": (row["Level"].lower(), event.severity),
            "logger": (row["Component"], event.attrs["logger"]),
            "content": (row["Content"], event.message),
            "request_id": (row["ADDR"].split()[0] if row["ADDR"].startswith("req-") else None,
                           event.request_id),
            "service": (row["Logrecord"].partition(".log")[0], event.service),
        }[field]
        if want != got:
            mismatches.append((row["LineId"], want, got))
    assert mismatches == []


def test_loghub_wsgi_lines_carry_http_fields(loghub):
    events, _ = loghub
    wsgi = [e for e in events if "status: " in e.message]
    assert len(wsgi) > 1000
    for event in wsgi:
        status = int(re.search(r"status: (\d+)", event.message).group(1))
        assert event.action == "http.request"
        assert event.attrs["status"] == status
        assert event.attrs["method"] in ("GET", "POST", "DELETE")
        assert event.initiator.source_ip and event.initiator.source_ip[0].isdigit()
        assert event.outcome == ("success" if status < 400 else "failure")


def test_loghub_instance_uuid_extracted_wherever_it_appears(loghub):
    events, _ = loghub
    with_instance = [e for e in events if "[instance: " in e.message]
    assert with_instance
    for event in with_instance:
        assert event.attrs["instance"] == re.search(r"\[instance: ([0-9a-f-]{36})\]", event.message).group(1)


@pytest.mark.parametrize(("block", "expected"), [
    ("-", {}),
    ("req-38101a0b 113d 54fa - - -", {"request_id": "req-38101a0b", "user": "113d", "project": "54fa"}),
    ("req-1 294c - - default -", {"request_id": "req-1", "user": "294c", "user_domain": "default"}),
    ("None req-4cf5 1c6d 123e - - 756f 756f",
     {"request_id": "req-4cf5", "user": "1c6d", "project": "123e", "user_domain": "756f",
      "project_domain": "756f"}),
    ("req-aaaa req-969b 5f1e 9a8b - - default default",
     {"global_request_id": "req-aaaa", "request_id": "req-969b", "user": "5f1e", "project": "9a8b",
      "user_domain": "default", "project_domain": "default"}),
])
def test_parse_context_forms(block, expected):
    assert parse_context(block) == expected


def assert_context_fields_agree(block: str) -> None:
    """context_fields (cached) gives what parse_context reads, as event fields."""
    context = parse_context(block)
    request_id, initiator, attrs = context_fields(block)
    assert request_id == context.get("request_id")
    assert initiator == Initiator(id=context.get("user"), project=context.get("project"),
                                  domain=context.get("domain"))
    assert dict(attrs) == {k: v for k, v in context.items()
                           if k in ("global_request_id", "user_domain", "project_domain", "system_scope")}


@pytest.mark.parametrize("block", [
    "-", "req-1 - - - - -", "req-38101a0b 113d 54fa - - -", "req-1 294c - - default -",
    "req-2 294c - - default -",  # same identity as the one before: served from the cache
    "None req-4cf5 1c6d 123e - - 756f 756f", "req-aaaa req-969b 5f1e 9a8b - - default default",
    "req-3 u p d scope ud pd", "req-4  u\tp - - -", "req-5 u\xa0p - - -", "req-6 ", "u p - - -",
    # the new form without a global request id: one cached identity read in both forms
    "None req-7 1c6d 123e - - 756f 756f", "req-8 1c6d 123e - - 756f 756f",
    "None req-9 - - - - - -", "None req-10", "None req-11 req-12 u p - - -", "None - u p - - -",
    "None  req-13 u p - - -", "None req-14 u\tp - - -", "None req-15 ",
])
def test_context_fields_is_parse_context_as_event_fields(block):
    """The cached reading agrees with parse_context, whatever the whitespace."""
    assert_context_fields_agree(block)


@pytest.mark.parametrize("line", [
    "<134>May 16 00:00:00 host nova-compute[2931]: INFO nova.compute.manager [-] x",
    "2025-06-17T10:23:40.242+00:00 ctl1 keystone[1]: hello",
    '127.0.0.1 - - [29/Sep/2025:09:46:23 +0000] "GET /v3/auth/tokens HTTP/1.1" 404 558 "-" "x"',
    "2017-05-16 00:00:00.008 notapid INFO nova.api [-] x",
    "2017-05-16 junk",
    "nova-api.log.1 not a date",
    '{"a": 1}',
])
def test_sniff_rejects_other_formats(line):
    assert not PARSER.sniff(line)


@pytest.mark.parametrize(("first", "line", "joined"), [
    ("2024-03-01 10:00:00.100 42 ERROR a.b [-] x", "Traceback (most recent call last):", True),
    ("2024-03-01 10:00:00.100 42 ERROR a.b [-] x", '  File "x.py", line 1', True),
    ("2024-03-01 10:00:00.100 42 ERROR a.b [-] x", "2024-03-01 10:00:00.100 42 ERROR a.b Traceback (", True),
    ("2024-03-01 10:00:00.100 42 ERROR a.b [-] x", "2024-03-01 10:00:00.100 42 ERROR a.b [instance: "
     "b9000564-fe1a-409b-b8cc-1e88b294cd1d]   File", True),
    ("2024-03-01 10:00:00.100 42 ERROR a.b [-] x", "2024-03-01 10:00:00.100 43 ERROR a.b Traceback", False),
    ("2024-03-01 10:00:00.100 42 ERROR a.b [-] x", "2024-03-01 10:00:00.100 42 ERROR a.c Traceback", False),
    ("2024-03-01 10:00:00.100 42 ERROR a.b [-] x", "2024-03-01 10:00:00.200 42 INFO a.b [-] next", False),
    ("2024-03-01 10:00:00.100 42 ERROR a.b [-] x", "   ", False),
    ("2024-03-01 10:00:00.100 42 ERROR a.b [-] x", "oslo_db.exception.DBError: boom", True),
    ("2024-03-01 10:00:00.100 42 ERROR a.b [-] x", "{'a': 1, 'b': 2}", True),  # a dict in the message
    # another format's record in a mixed stream starts a record of its own
    ("2024-03-01 10:00:00.100 42 ERROR a.b [-] x", "Mar  1 10:00:01 cmp1 sshd[77]: Accepted publickey for "
     "root from 10.0.0.9 port 50022 ssh2", False),
    ("2024-03-01 10:00:00.100 42 ERROR a.b [-] x", "<38>Mar  1 10:00:01 cmp1 sshd[77]: x", False),
    ("2024-03-01 10:00:00.100 42 ERROR a.b [-] x", "2024-03-01T10:00:01.000+00:00 cmp1 sshd[77]: x", False),
    ("2024-03-01 10:00:00.100 42 ERROR a.b [-] x", "type=USER_LOGIN msg=audit(1709287201.000:12): pid=7",
     False),
    ("2024-03-01 10:00:00.100 42 ERROR a.b [-] x", '{"event_type": "identity.authenticate"}', False),
    ("2024-03-01 10:00:00.100 42 ERROR a.b [-] x", '10.0.0.9 - - [01/Mar/2024:10:00:01 +0000] "GET / '
     'HTTP/1.1" 200 1 "-" "x"', False),
])
def test_continues(first, line, joined):
    assert PARSER.continues(first, line) is joined


def test_a_mixed_stream_keeps_each_formats_records_apart():
    text = ("2024-03-01 10:00:00.100 42 ERROR nova.compute.manager [-] failed\n"
            "Traceback (most recent call last):\n"
            "ValueError: boom\n"
            "Mar  1 10:00:01 cmp1 sshd[77]: Accepted publickey for root from 10.0.0.9 port 50022 ssh2\n")
    oslo, sshd = parse_text(text)
    assert oslo.kind == "oslo_log" and oslo.message.endswith("ValueError: boom")
    assert (sshd.service, sshd.action, sshd.outcome, sshd.initiator.source_ip) == (
        "sshd", "authenticate", "success", "10.0.0.9")


def test_exception_prefix_lines_are_stripped_in_the_joined_message():
    text = ("2024-03-01 10:00:00.100 42 ERROR a.b [req-1 - - - - -] failed\n"
            "2024-03-01 10:00:00.100 42 ERROR a.b Traceback (most recent call last):\n"
            "2024-03-01 10:00:00.100 42 ERROR a.b ValueError: boom\n")
    (event,) = parse_text(text)
    assert event.message == "failed\nTraceback (most recent call last):\nValueError: boom"
    assert event.raw == text.rstrip("\n")


def test_a_record_starting_in_exception_prefix_form_parses():
    line = "2024-03-01 10:00:00.100 42 ERROR nova.compute.manager Traceback (most recent call last):"
    (event,) = parse_text(line)
    assert event.kind == "oslo_log"
    assert event.message == "Traceback (most recent call last):"
    assert event.request_id is None


@pytest.mark.parametrize(("logger", "service"), [
    ("nova.compute.manager", "nova-compute"),
    ("nova.virt.libvirt.driver", "nova-compute"),
    ("nova.osapi_compute.wsgi.server", "nova-api"),
    ("nova.api.openstack.wsgi", "nova-api"),
    ("nova.scheduler.host_manager", "nova-scheduler"),
    ("nova.conductor.manager", "nova-conductor"),
    ("keystone.server.flask.application", "keystone"),
    ("neutron.wsgi", "neutron-server"),
    ("neutron.agent.dhcp.agent", "neutron-dhcp-agent"),
    ("cinder.volume.manager", "cinder-volume"),
    ("glance.api.v2.images", "glance-api"),
    ("eventlet.wsgi.server", ""),
    ("oslo_messaging.rpc.server", ""),
])
def test_service_for_logger(logger, service):
    assert service_for_logger(logger) == service


def test_context_service_wins_over_logger_guess():
    ctx = ParseContext(service="nova-api-metadata")
    (event,) = PARSER.parse(["2017-05-16 00:00:16.806 25783 INFO nova.metadata.wsgi.server [-] hi"], ctx)
    assert event.service == "nova-api-metadata"


@pytest.mark.parametrize("message", [
    "2378 WARNING keystone.server.flask.application [req-1 - - - - -] Authorization failed. x from 10.0.0.9",
    "WARNING keystone.server.flask.application [req-1 - - - - -] Authorization failed. x from 10.0.0.9",
    "2020-07-09 15:47:30.541 2378 WARNING keystone.server.flask.application [req-1 - - - - -] "
    "Authorization failed. x from 10.0.0.9",
])
def test_message_parser_reads_oslo_bodies_written_through_syslog(message):
    fields = MESSAGE_PARSER.parse_message("keystone", message)
    assert fields is not None
    assert fields["action"] == "authenticate"
    assert fields["outcome"] == "failure"
    assert fields["initiator"].source_ip == "10.0.0.9"
    assert fields["request_id"] == "req-1"
    assert fields["severity"] == "warning"
    assert fields["attrs"]["logger"] == "keystone.server.flask.application"


def test_message_parser_programs_cover_the_openstack_services():
    assert {"keystone", "nova-api", "nova-compute", "neutron-server", "cinder-volume", "glance-api"} <= (
        MESSAGE_PARSER.programs)


def test_message_parser_ignores_non_oslo_messages():
    assert MESSAGE_PARSER.parse_message("nova-compute", "Starting OpenStack Compute...") is None


def test_message_parser_normalises_a_log_driver_notification():
    body = ('2378 INFO oslo.messaging.notification.identity.project.deleted [-] {"message_id": "m1", '
            '"publisher_id": "identity.ctl1", "event_type": "identity.project.deleted", "priority": "INFO", '
            '"payload": {"resource_info": "p9"}, "timestamp": "2024-01-01 00:00:00.000000"}')
    fields = MESSAGE_PARSER.parse_message("keystone", body)
    assert fields["kind"] == "notification"
    assert fields["action"] == "deleted.project"
    assert fields["target"].id == "p9"


_REQUEST_TOKENS = st.sampled_from(["GET", "POST", "FOO", "get", "/v2.1/servers", "/a?b=c", "", "HTTP/1.1",
                                   "HTTP/", "HTTPS/1.1", "x y", "é"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_REQUEST_TOKENS, max_size=5), st.sampled_from(["wsgi", "eventlet"]))
def test_wsgi_request_is_read_as_split_request_reads_it(tokens, form):
    """The WSGI regexes pre-split the usual 'METHOD path HTTP/x' request; any request must
    still give the fields split_request and http_fields give."""
    request = " ".join(tokens)
    message = (f'10.0.0.1 "{request}" status: 200  len: 12 time: 0.5' if form == "wsgi"
               else f'10.0.0.1 - - [30/Sep/2025 02:36:23] "{request}" 200 12 0.5')
    method, path, _ = split_request(request)
    assert wsgi_fields(message) == http_fields(method, path, 200, 12, 0.5, "10.0.0.1")


@pytest.mark.parametrize(("logger", "message"), [
    ("keystone.common.wsgi", "Authorization failed. The request you have made requires authentication. "
                             "from 10.0.0.9: Unauthorized: locked"),
    ("keystone.common.wsgi", "Authorization failed. The account is locked for user: 3c5f from 10.0.0.9"),
    ("keystone.common.wsgi", "Could not find user: alice."),
    ("keystone.common.wsgi", "The password is expired and must be changed for user: 3c5f"),
    ("keystone.middleware.auth", "Failed to validate token"),
    ("keystone.common.wsgi", "POST http://controller:5000/v3/auth/tokens"),
    ("nova.osapi_compute.wsgi.server", '10.0.0.1,10.0.0.2 "GET /v2.1/servers HTTP/1.1" status: 200 len: 9 '
                                       "time: 0.1"),
    ("eventlet.wsgi.server", '10.0.0.1 - - [30/Sep/2025 02:36:23] "POST /v3/auth/tokens HTTP/1.1" 401 9 0.1'),
])
def test_message_fields_returns_only_the_keys_parse_reads(logger, message):
    """OsloLogParser.parse reads message_fields' result key by key: a key outside
    MESSAGE_FIELD_KEYS would be dropped silently."""
    fields = message_fields(logger, message)
    assert fields and fields.keys() <= MESSAGE_FIELD_KEYS


_CONTEXT_TOKENS = st.sampled_from(["None", "req-1", "req-2", "-", "u", "p", "default", "", " ", "\t",
                                   "None None", "req-3\t", "req-\x00", "u\xa0"])


@settings(max_examples=400, deadline=None)
@given(st.lists(_CONTEXT_TOKENS, max_size=9), st.sampled_from([" ", "  "]))
def test_context_fields_agrees_with_parse_context(tokens, sep):
    """Whatever was cached before (hypothesis runs many blocks in one process)."""
    assert_context_fields_agree(sep.join(tokens))


def test_repeated_keystone_messages_give_equal_events_with_their_own_attrs():
    """keystone's message fields are read once per distinct text and shared: each event must
    still be what a first reading gives, and own its attrs."""
    line = ("2026-03-02 09:31:16.341 3155964 INFO keystone.common.wsgi [req-{} - - - - -] "
            "POST http://10.20.0.10:5000/v3/auth/tokens")
    first, second = (PARSER.parse([line.format(n)], ParseContext(service="keystone"))[0] for n in (1, 2))
    assert first.attrs == second.attrs and first.attrs is not second.attrs
    assert (first.action, first.request_id, second.request_id) == ("http.request", "req-1", "req-2")
    assert first.attrs["path"] == "/v3/auth/tokens"
