"""absence: silent sources, declared sources, backoff, and resolution."""

from __future__ import annotations

from datetime import timedelta

from detect_helpers import T0, ev, rule_from_yaml, run

from stackwatch.detect.engine import Engine

RULE = """
kind: absence
category: logging.silence
severity: high
window: 10m
summary: "{host}/{service} silent for {silent_for}"
"""


def line(at: float, host: str = "ctl1", service: str = "keystone"):
    return ev(at, host=host, service=service)


def test_a_source_that_stops_is_reported() -> None:
    events = [line(0), line(60)] + [line(t, service="nova-api") for t in range(0, 1500, 60)]
    [alert] = run(rule_from_yaml(RULE), events).alerts()
    assert alert.key == "ctl1|keystone"
    assert alert.host == "ctl1"
    assert alert.service == "keystone"
    assert alert.summary.startswith("ctl1/keystone silent for ")


def test_quiet_while_every_source_keeps_writing() -> None:
    events = [line(t, service=s) for t in range(0, 3000, 120) for s in ("keystone", "nova-api")]
    assert run(rule_from_yaml(RULE), events).alerts() == []


def test_wall_clock_tick_finds_silence_without_events() -> None:
    engine = Engine([rule_from_yaml(RULE)])
    engine.process(line(0))
    assert engine.tick(T0 + timedelta(minutes=5)) == []
    [alert] = engine.tick(T0 + timedelta(minutes=11))
    assert alert.status == "open"


def test_declared_source_that_never_spoke_is_reported() -> None:
    engine = run(rule_from_yaml(RULE), [line(t) for t in range(0, 1500, 60)],
                 expected_sources=[("net1", "neutron-server")])
    [alert] = engine.alerts()
    assert alert.key == "net1|neutron-server"
    assert alert.details["never_seen"] is True


def test_a_declared_source_is_tracked_from_the_live_start_not_an_old_record() -> None:
    """The live service marks its start (pipeline.runner: Engine.live_from): a record then
    arriving with a stamp from months ago (year-less, replayed) does not make a declared source
    look silent since that stamp. Without it the first record's time starts the tracking."""
    now = T0 + timedelta(days=200)
    declared = [("mon1", "stackwatch")]
    heartbeat = RULE + "condition: {service: stackwatch}\ngroup_by: [host, service]\n"
    live = Engine([rule_from_yaml(heartbeat)], expected_sources=declared)
    live.live_from(now)  # the service starts
    live.process(line(0))  # a record stamped 200 days earlier
    assert live.tick(now + timedelta(seconds=2)) == []
    [alert] = live.tick(now + timedelta(minutes=11))  # and it does fire once truly silent
    assert alert.key == "mon1|stackwatch" and alert.details["never_seen"] is True
    replay = Engine([rule_from_yaml(heartbeat)], expected_sources=declared)
    replay.process(line(0))  # no start tick: the first record starts the clock (analyze)
    assert [a.key for a in replay.tick(now + timedelta(seconds=2))] == ["mon1|stackwatch"]


def test_realerts_with_backoff_fold_into_one_alert() -> None:
    engine = Engine([rule_from_yaml(RULE)])
    engine.process(line(0))
    for minutes in range(1, 200):
        engine.tick(T0 + timedelta(minutes=minutes))
    [alert] = engine.alerts()
    # silence found at 10m, re-raised after 20m, 40m, 80m more: 10, 30, 70, 150
    assert alert.count == 4


def test_source_returning_resolves_the_alert() -> None:
    engine = Engine([rule_from_yaml(RULE)])
    engine.process(line(0))
    engine.tick(T0 + timedelta(minutes=15))
    [resolved] = engine.process(line(16 * 60))
    assert resolved.status == "resolved"
    assert len(engine.alerts()) == 1
