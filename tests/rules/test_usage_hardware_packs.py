"""The usage and hardware packs against the generated cloud and against benign baselines: the
leaked credential and the failing disk of the scenario raise alerts on their project and host
and nothing else does; a steady CI project creating and deleting 200 instances a day raises
nothing, its first day (no baseline: the learning period) included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stackwatch.core.alert import Alert
from stackwatch.core.event import Event
from stackwatch.detect.engine import Engine
from stackwatch.detect.loader import builtin_rules
from stackwatch.pipeline.reader import discover, read_events
from stackwatch.scenario import Manifest, attacks_usage, generate
from stackwatch.scenario.world import World
from stackwatch.testing import make_event

ALL_RULES = [r for r in builtin_rules() if r.enabled]
PACKS = ("usage", "hardware")
T0 = datetime(2026, 3, 2, tzinfo=UTC)


def _alerts(events: list[Event]) -> list[Alert]:
    engine = Engine(ALL_RULES)
    for event in events:
        engine.process(event)
    engine.finish()
    return engine.alerts()


def _ci_day(day: int, per_hour: list[int], project: str = "p-ci", user: str = "u-ci") -> list[Event]:
    """One day of a CI project: per_hour[h] instances created in hour h, each deleted 5 minutes later."""
    events = []
    for hour, count in enumerate(per_hour):
        for i in range(count):
            at = T0 + timedelta(days=day, hours=hour, seconds=i * 3600 / max(count, 1) + 7)
            for action, when in (("compute.instance.create.end", at),
                                 ("compute.instance.delete.end", at + timedelta(minutes=5))):
                events.append(make_event(time=when, service="nova-compute", kind="notification",
                                         action=action, host="cmp1",
                                         initiator={"project": project, "id": user},
                                         target={"type": "instance", "id": f"{day}-{hour}-{i}"},
                                         attrs={"payload": {"instance_type": "m1.small", "memory_mb": 2048,
                                                            "vcpus": 1, "image_ref_url": "img-ci"}}))
    return sorted(events, key=lambda e: e.time)


STEADY = [8, 9, 8, 8, 9, 8, 8, 9, 8, 8, 9, 8, 8, 9, 8, 8, 9, 8, 8, 9, 8, 8, 9, 8]  # 200 a day


def test_a_steady_ci_project_raises_nothing_in_a_week() -> None:
    assert sum(STEADY) == 200
    events = [e for day in range(7) for e in _ci_day(day, STEADY)]
    assert _alerts(events) == []


def test_its_first_day_is_learning_bursts_below_the_learning_threshold_are_quiet() -> None:
    # no baseline yet: a CI project that starts with 25 jobs an hour (3x its later rate) is quiet
    first_day = [25] * 8 + [0] * 16
    assert _alerts(_ci_day(0, first_day)) == []


def test_after_learning_the_same_project_bursting_far_above_its_baseline_alerts() -> None:
    events = [e for day in range(2) for e in _ci_day(day, STEADY)] + _ci_day(2, [60])
    alerts = [a for a in _alerts(events) if a.category == "usage.anomaly"]
    assert {a.title for a in alerts} == {"A project creates resources far above its own baseline",
                                         "A user creates resources far above their own baseline"}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> tuple[Manifest, list[Alert]]:
    out = tmp_path_factory.mktemp("scenario") / "logs"
    manifest = generate(out, seed=7, lines=12_000)
    return manifest, _alerts(list(read_events(discover([str(out)]))))


def test_the_leaked_credential_raises_usage_alerts_on_its_project_only(
        scenario: tuple[Manifest, list[Alert]]) -> None:
    manifest, alerts = scenario
    [incident] = manifest.by_category("usage.anomaly")
    usage = [a for a in alerts if a.category == "usage.anomaly"]
    leaked_user = incident.markers[-1]
    assert all(a.project == incident.entity or a.user == leaked_user for a in usage)
    titles = {a.title for a in usage}
    assert {"A project creates resources far above its own baseline",
            "A user creates resources far above their own baseline",
            "A project launches a GPU flavor it never used",
            "A project launches a very large flavor it never used",
            "Quota errors bursting for a project",
            "A new application credential launches servers at once from outside",
            "A new keystone user logs in and launches servers at once from outside"} <= titles
    [sequence] = [a for a in usage if a.title.startswith("A new application credential")]
    assert sequence.source_ip == attacks_usage.ATTACKER_IP
    # the user the leaked account created: keyed by the new user, not by its creator
    [new_user] = [a for a in usage if a.title.startswith("A new keystone user")]
    assert new_user.source_ip == attacks_usage.ATTACKER_IP
    assert new_user.project == incident.entity
    assert new_user.user != leaked_user and new_user.key == new_user.user
    ci = {p.name: p.id for p in World.build(7, 0).projects}["ci-runners"]
    assert not [a for a in alerts if a.project == ci or ci in a.key]


def test_the_failing_disk_raises_hardware_alerts_on_its_host_only(
        scenario: tuple[Manifest, list[Alert]]) -> None:
    manifest, alerts = scenario
    [incident] = manifest.by_category("hardware.fault")
    hardware = [a for a in alerts if a.category == "hardware.fault"]
    assert {a.host for a in hardware} == {incident.host}
    assert {a.title for a in hardware} >= {"SMART failure reported by smartd",
                                           "Disk I/O or filesystem error on a node",
                                           "Hardware errors cluster on one host"}
    [cluster] = [a for a in hardware if a.title == "Hardware errors cluster on one host"]
    assert cluster.severity == "critical"


def test_every_usage_and_hardware_rule_has_vectors() -> None:
    rules = [r for r in ALL_RULES if r.source.split("/")[1] in PACKS]
    assert len(rules) == 18
    assert all(r.tests and r.tests.get("fire") and r.tests.get("quiet") for r in rules)
    assert {r.category for r in rules} == {"usage.anomaly", "hardware.fault"}

