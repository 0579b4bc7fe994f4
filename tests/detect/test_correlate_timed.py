"""The engine's timed feed of the correlator gives what push/release give, with each event's
own time as epoch seconds (the engine uses it instead of converting the datetime again)."""

from __future__ import annotations

from detect_helpers import ev, failure

from stackwatch.core.event import Event
from stackwatch.detect.correlate import Correlator

IP = "203.0.113.9"


def _stream() -> list[Event]:
    http = [ev(at, service="keystone", kind="httpd_access", action="authenticate", outcome="failure",
               initiator={"source_ip": IP}) for at in (0, 5, 9)]
    cadf = [ev(at + 0.2, service="keystone", kind="cadf", action="authenticate", outcome="failure",
               initiator={"source_ip": IP, "name": "eve"}, request_id=f"req-{at}") for at in (0, 5)]
    logs = [failure(at + 0.1, request_id=f"req-{at}") for at in (0, 5, 30)]
    lone = [ev(at, service="keystone", kind="cadf", action="authenticate", outcome="success",
               initiator={"source_ip": f"198.51.100.{at}", "name": "ann"}) for at in (1, 2, 40)]
    other = [ev(at, service="nova-api") for at in (3, 50)]
    return sorted(http + cadf + logs + lone + other, key=lambda e: e.time)


def test_timed_feed_matches_push_and_release() -> None:
    plain, timed = Correlator(), Correlator()
    expected: list[Event] = []
    got: list[tuple[Event, float]] = []
    for event in _stream():
        ts = event.time.timestamp()
        expected += plain.push(event, ts)
        got += timed.push_timed(event, ts)
    expected += plain.release(None)
    got += timed.release_timed(None)
    assert [e for e, _ in got] == expected
    assert all(ts == e.time.timestamp() for e, ts in got)
    assert timed.stats == plain.stats
    assert not timed.pending and not timed.by_ip and not timed.by_request


def test_release_at_a_time_keeps_younger_groups() -> None:
    correlator = Correlator(window=2.0)
    events = _stream()
    for event in events[:4]:
        correlator.push_timed(event, event.time.timestamp())
    released = correlator.release_timed(events[3].time.timestamp() + 2.5)
    assert released and all(ts <= events[3].time.timestamp() for _, ts in released)
