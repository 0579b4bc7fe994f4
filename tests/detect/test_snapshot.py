"""A detection engine's state survives a checkpoint: an engine stopped half way through the
demo's records, snapshotted and loaded into a freshly built one, ends with the alerts of one
engine that saw every record (what a standby analyzer taking a partition over relies on)."""

from __future__ import annotations

import os
import pickle
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stackwatch.core.alert import Alert
from stackwatch.core.event import Event
from stackwatch.detect.engine import Engine
from stackwatch.detect.snapshot import SnapshotError, capture, restore
from stackwatch.pipeline.engine import build_engine
from stackwatch.pipeline.reader import discover, read_event_batches
from stackwatch.respond.orphans import RULE_ID as ORPHANS
from stackwatch.scenario import demo_dataset

RECEIVED = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo_events(tmp_path_factory: pytest.TempPathFactory) -> list[Event]:
    logs = demo_dataset(tmp_path_factory.mktemp("demo"), seed=7)
    return [e for batch in read_event_batches(discover([str(logs)]), received=RECEIVED) for e in batch]


def _engine() -> Engine:
    return build_engine(report=None)  # with the orphan detector, whose resource ledger is state too


def _summary(alerts: list[Alert]) -> list[tuple[object, ...]]:
    return sorted((a.rule, a.key, a.count, a.status, a.severity, a.time, a.last_seen,
                   tuple(e.ref for e in a.evidence), a.details.get("events")) for a in alerts)


def _straight(events: list[Event]) -> list[Alert]:
    engine = _engine()
    for event in events:
        engine.process(event)
    engine.finish()
    return engine.alerts()


@pytest.mark.parametrize("cut", [0.25, 0.5, 0.9])
def test_an_engine_restored_from_a_snapshot_ends_with_the_alerts_of_one_that_never_stopped(
        demo_events: list[Event], cut: float) -> None:
    at = int(len(demo_events) * cut)
    first = _engine()
    for event in demo_events[:at]:
        first.process(event)
    blob = capture(first)
    second = _engine()
    restore(second, blob)
    for event in demo_events[at:]:
        second.process(event)
    second.finish()
    expected = _straight(demo_events)
    assert len(expected) > 20, "the demo raises alerts of many rules"
    assert _summary(second.alerts()) == _summary(expected)


def test_without_the_snapshot_the_second_half_alone_misses_detections(demo_events: list[Event]) -> None:
    """The comparison above can fail: windows opened before the cut matter."""
    at = len(demo_events) // 2
    fresh = _engine()
    for event in demo_events[at:]:
        fresh.process(event)
    fresh.finish()
    assert _summary(fresh.alerts()) != _summary(_straight(demo_events))


def test_process_only_with_every_rule_gives_the_alerts_of_process(demo_events: list[Event]) -> None:
    engine = _engine()
    every = frozenset({*(rule.id for rule in engine.rules), ORPHANS})
    for event in demo_events:
        engine.process_only(event, every)
    engine.finish()
    assert _summary(engine.alerts()) == _summary(_straight(demo_events))


def test_process_only_runs_no_rule_it_is_not_given(demo_events: list[Event]) -> None:
    engine = _engine()
    for event in demo_events:
        engine.process_only(event, frozenset())
    engine.finish()
    timed = {rule.id for rule, detector in engine.detectors() if detector.time_driven}
    assert {alert.rule for alert in engine.alerts()} <= timed  # only ticks (absence) may fire


def test_a_snapshot_naming_another_class_is_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    with pytest.raises(SnapshotError, match="may not name"):
        restore(_engine(), pickle.dumps({"format": 1, "engine": Evil()}))
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("module", ["stackwatch.respond.ledger", "stackwatch.core.event"])
def test_a_snapshot_reaching_an_import_of_an_allowed_module_is_refused(tmp_path: Path, module: str) -> None:
    """Our own modules were allowed whole, and a protocol 4 name is a dotted path: the ledger's
    'os.system' (it imports os) ran a command; msgspec's decoders are reachable the same way."""
    name = "os.system" if module.endswith("ledger") else "msgspec.json.decode"
    argument = f"touch {tmp_path / 'ran'}" if name == "os.system" else '"x"'
    m, n, a = module.encode(), name.encode(), argument.encode()
    stream = (b"\x80\x04\x8c" + bytes([len(m)]) + m + b"\x94\x8c" + bytes([len(n)]) + n + b"\x94\x93"
              + b"\x8c" + bytes([len(a)]) + a + b"\x85R.")
    with pytest.raises(SnapshotError, match="may not name"):
        restore(_engine(), stream)
    assert not (tmp_path / "ran").exists()


def test_a_truncated_snapshot_is_a_clear_error(demo_events: list[Event]) -> None:
    engine = _engine()
    for event in demo_events[:100]:
        engine.process(event)
    with pytest.raises(SnapshotError, match="unreadable"):
        restore(_engine(), capture(engine)[:-20])


def test_what_a_new_value_rule_learned_and_when_its_learning_began_travel_in_the_snapshot() -> None:
    """A standby taking a partition over neither forgets the values seen nor starts learning
    again: the login-from-a-new-address rule (30 minutes of learning) after a takeover stays
    quiet for an address learned before it, and fires for a new one once the learning period
    counted from the first record, not from the takeover, is over."""
    from datetime import timedelta

    from stackwatch.testing import make_event

    rule = "ef6dd3a1-8240-4167-bc8f-5f9ea1c9456c"  # rules/os/login_from_new_address.yaml
    t0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

    def login(minutes: int, address: str) -> Event:
        return make_event(time=t0 + timedelta(minutes=minutes), host="cmp2", service="sshd",
                          action="authenticate", outcome="success",
                          initiator={"name": "alice", "source_ip": address})

    def fired(engine: Engine) -> set[str]:
        return {a.details.get("new_value") for a in engine.alerts() if a.rule == rule}

    first = _engine()
    for event in (login(0, "10.0.0.1"), login(10, "10.0.0.2")):
        first.process(event)
    second = _engine()
    restore(second, capture(first))
    for event in (login(20, "10.0.0.3"), login(31, "10.0.0.1"), login(32, "10.0.0.2"), login(33, "10.0.0.4")):
        second.process(event)
    assert fired(second) == {"10.0.0.4"}  # .3 came while still learning; .1 and .2 were learned before
