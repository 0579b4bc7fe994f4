"""orphans: a keystone deletion with resources still alive raises identity.orphaned_resources."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackwatch.core.alert import CATEGORIES
from stackwatch.core.event import replace
from stackwatch.pipeline.analyze import analyze
from stackwatch.pipeline.engine import build_engine
from stackwatch.pipeline.reader import discover
from stackwatch.respond.orphans import CATEGORY, RULE_ID, Orphan, OrphanAwareEngine, OrphanDetector
from stackwatch.scenario import generate
from tests.respond.conftest import (
    floatingip_created,
    instance_created,
    keystone_basic,
    keystone_cadf,
    volume_attached,
)

P, U = "p" * 32, "u" * 32


def _detector_with_project() -> OrphanDetector:
    detector = OrphanDetector()
    for event in (instance_created("i-1", P, U, name="web-1", host="cmp2"),
                  volume_attached("v-1", "i-1", P, U), floatingip_created("fip-1", P, "172.24.4.7")):
        assert detector.process(event) == []
    return detector


def test_category_is_in_the_vocabulary():
    assert CATEGORY in CATEGORIES


@pytest.mark.parametrize("deletion", [keystone_cadf("deleted", "project", P),
                                      keystone_basic("deleted", "project", P)], ids=["cadf", "basic"])
def test_project_deleted_with_resources_raises_the_inventory(deletion):
    detector = _detector_with_project()
    (alert,) = detector.process(deletion)
    assert (alert.rule, alert.category, alert.key, alert.project) == (RULE_ID, CATEGORY, f"project:{P}", P)
    assert alert.severity == "high" and alert.host == "ctl2"
    assert alert.details["counts"] == {"instance": 1, "volume": 1, "floatingip": 1}
    inst, vol, fip = alert.details["resources"]
    assert (inst["id"], inst["name"], inst["host"]) == ("i-1", "web-1", "cmp2")
    assert inst["attachments"] == [{"volume": "v-1", "device": "/dev/vdb"}]
    assert vol["attachments"][0]["server"] == "i-1"
    assert fip["name"] == "172.24.4.7"
    assert alert.evidence[0].raw == deletion.raw


def test_user_deleted_lists_what_the_user_created():
    detector = _detector_with_project()
    detector.process(instance_created("i-2", P, "someone-else"))
    (alert,) = detector.process(keystone_cadf("deleted", "user", U))
    assert alert.key == f"user:{U}" and alert.user == U
    # the floating IP was allocated by another user (the request context says user-1)
    assert {r["id"] for r in alert.details["resources"]} == {"i-1", "v-1"}


def test_domain_deleted_lists_its_projects_resources():
    detector = _detector_with_project()
    detector.ledger.set_project_domain(P, "dom-1")
    (alert,) = detector.process(keystone_cadf("deleted", "domain", "dom-1"))
    assert alert.key == "domain:dom-1" and alert.details["counts"]["instance"] == 1


def test_disabled_project_never_triggers():
    detector = _detector_with_project()
    assert detector.process(keystone_cadf("updated", "project", P)) == []
    assert detector.process(keystone_basic("updated", "project", P)) == []
    assert len(detector.ledger.owned_by("project", P)) == 3


def test_failed_deletion_does_not_trigger():
    detector = _detector_with_project()
    assert detector.process(keystone_cadf("deleted", "project", P, outcome="failure")) == []


def test_a_deletion_named_only_by_its_event_type_still_triggers():
    # the detector's cheap gate looks at the action first: the event_type fallback must get through
    deletion = replace(keystone_cadf("deleted", "project", P), action="delete")
    (alert,) = _detector_with_project().process(deletion)
    assert alert.key == f"project:{P}"


def test_events_about_nothing_tracked_leave_the_ledger_alone():
    detector = _detector_with_project()
    untracked = replace(instance_created("i-9", P, U), action=None)
    for event in (keystone_cadf("authenticate", "user", U), untracked):
        assert detector.process(event) == []
    assert len(detector.ledger) == 3 and detector.deletions == 0


def test_deleted_project_without_resources_is_quiet():
    detector = _detector_with_project()
    assert detector.process(keystone_cadf("deleted", "project", "q" * 32)) == []
    assert detector.deletions == 1


def test_alert_round_trips_into_an_orphan():
    detector = _detector_with_project()
    (alert,) = detector.process(keystone_cadf("deleted", "project", P))
    orphan = Orphan.from_alert(alert)
    assert orphan is not None and orphan.key == f"project:{P}"
    assert [r.id for r in orphan.resources] == ["i-1", "v-1", "fip-1"]


def test_detector_persists_its_ledger(tmp_path):
    detector = _detector_with_project()
    detector.save(tmp_path)
    reopened = OrphanDetector.open(tmp_path)
    assert len(reopened.process(keystone_cadf("deleted", "project", P))) == 1


def test_build_engine_runs_the_detector():
    engine = build_engine()
    assert isinstance(engine, OrphanAwareEngine)
    for event in (instance_created("i-1", P, U), keystone_cadf("deleted", "project", P)):
        engine.process(event)
    engine.finish()
    assert [a.rule for a in engine.alerts()].count(RULE_ID) == 1
    assert not isinstance(build_engine(orphans=False), OrphanAwareEngine)


def test_analyze_scenario_raises_orphaned_resources_for_the_deleted_project(tmp_path: Path):
    manifest = generate(tmp_path, lines=6000)
    (incident,) = manifest.by_category(CATEGORY)
    result = analyze(discover([str(tmp_path)]), engine=build_engine())
    # the identity pack also records the deletion itself (same category, no inventory)
    found = [a for a in result.alerts if a.rule == RULE_ID]
    assert [a.project for a in found] == [incident.entity]
    (alert,) = found
    assert alert.host == incident.host
    assert alert.details["counts"] == {"instance": 2, "volume": 1}
    instances = [r for r in alert.details["resources"] if r["type"] == "instance"]
    assert sorted(r["name"] for r in instances) == ["legacy-app-1", "legacy-app-2"]
    assert sorted(r["host"] for r in instances) == ["cmp1", "cmp2"]
    (volume,) = [r for r in alert.details["resources"] if r["type"] == "volume"]
    assert volume["attachments"][0]["server"] in {r["id"] for r in instances}
