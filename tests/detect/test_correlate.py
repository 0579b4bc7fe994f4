"""One failed keystone login seen in several places counts once; the log line is enriched."""

from __future__ import annotations

from detect_helpers import ev, failure, rule_from_yaml, run

from stackwatch.detect.correlate import Correlator

BRUTE = """
kind: threshold
condition: {action: authenticate, outcome: failure}
group_by: [initiator.source_ip]
threshold: 3
window: 1m
"""
SPRAY = """
kind: cardinality
category: auth.spraying
condition: {action: authenticate, outcome: failure}
group_by: [initiator.source_ip]
field: initiator.name
threshold: 2
window: 1m
"""
IP = "203.0.113.7"


def http_401(at: float):
    return ev(at, service="keystone", kind="httpd_access", action="authenticate", outcome="failure",
              initiator={"source_ip": IP}, attrs={"status": 401})


def cadf(at: float, name: str, rid: str | None = None):
    return ev(at, service="keystone", kind="cadf", action="authenticate", outcome="failure",
              initiator={"source_ip": IP, "name": name, "id": f"id-{name}"}, request_id=rid)


def attempt(at: float, name: str, rid: str) -> list:
    return [http_401(at), failure(at + 0.3, request_id=rid), cadf(at + 0.5, name, rid)]


def test_three_copies_of_one_attempt_count_once() -> None:
    events = attempt(0, "alice", "req-1") + attempt(10, "alice", "req-2")
    engine = run(rule_from_yaml(BRUTE), events)
    assert engine.alerts() == []
    assert engine.correlator.stats.duplicates == 4


def test_three_real_attempts_still_fire() -> None:
    events = attempt(0, "a", "req-1") + attempt(10, "a", "req-2") + attempt(20, "a", "req-3")
    [alert] = run(rule_from_yaml(BRUTE), events).alerts()
    assert alert.details["events"] == 3


def test_two_log_lines_of_one_channel_never_merge() -> None:
    engine = run(rule_from_yaml(BRUTE), [failure(0), failure(0.1), failure(0.2)])
    assert len(engine.alerts()) == 1


def test_log_line_is_enriched_with_the_cadf_user_name() -> None:
    correlator = Correlator()
    out = []
    for event in [failure(0, request_id="req-9"), cadf(0.4, "bob", "req-9"), ev(5, service="nova-api")]:
        out.extend(correlator.push(event, event.time.timestamp()))
    log_line = next(e for e in out if e.kind == "oslo_log")
    assert log_line.initiator.name == "bob"
    assert log_line.attrs["duplicate_of"] == out[1].ref
    assert "duplicate_of" not in out[1].attrs


def test_user_not_found_line_names_the_failure_of_the_same_request() -> None:
    correlator = Correlator()
    events = [ev(0, service="keystone", action="user.not_found", outcome="failure", request_id="req-5",
                 initiator={"name": "mallory"}), failure(0.1, request_id="req-5")]
    out = [e for event in events for e in correlator.push(event, event.time.timestamp())]
    out += correlator.release()
    assert out[-1].initiator.name == "mallory"


def test_spraying_counts_usernames_learned_from_cadf() -> None:
    events = attempt(0, "alice", "req-1") + attempt(5, "bob", "req-2")
    [alert] = run(rule_from_yaml(SPRAY), events).alerts()
    assert alert.details["values"] == ["alice", "bob"]


def test_copies_further_apart_than_the_window_are_separate() -> None:
    engine = run(rule_from_yaml(BRUTE), [http_401(0), failure(3), cadf(6, "x")])
    assert len(engine.alerts()) == 1


def test_events_are_held_at_most_the_window() -> None:
    correlator = Correlator(window=2.0)
    first = failure(0)
    assert correlator.push(first, 0 + first.time.timestamp()) == []
    later = ev(2.5, service="nova-api")
    assert correlator.push(later, later.time.timestamp()) == [first, later]


def haproxy_401(at: float, duration: float | None = None):
    attrs = {"status": 401, **({"duration": duration} if duration is not None else {})}
    return ev(at, service="keystone", kind="haproxy", action="authenticate", outcome="failure",
              initiator={"source_ip": IP}, attrs=attrs)


def test_four_copies_behind_haproxy_count_once() -> None:
    events = [haproxy_401(at) for at in (0, 10)]
    events += attempt(0.01, "alice", "req-1") + attempt(10.01, "alice", "req-2")
    engine = run(rule_from_yaml(BRUTE), sorted(events, key=lambda e: e.time))
    assert engine.alerts() == []
    assert engine.correlator.stats.duplicates == 6


def test_a_slow_answer_is_matched_at_the_access_lines_start_plus_duration() -> None:
    # a cold backend: the proxy and access lines say 0 s (request start), keystone answered at 12 s
    slow_http = ev(0, service="keystone", kind="uwsgi_request", action="authenticate", outcome="failure",
                   initiator={"source_ip": IP}, attrs={"status": 401, "duration": 12.4})
    events = [haproxy_401(0, duration=12.5), slow_http, failure(12.3, request_id="req-1"),
              cadf(12.35, "alice", "req-1"), *attempt(20, "alice", "req-2")]
    engine = run(rule_from_yaml(BRUTE), events)
    assert engine.alerts() == []
    assert engine.correlator.stats.duplicates == 5
