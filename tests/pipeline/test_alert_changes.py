"""The engine says which alerts it created (``created``), and ``AlertChanges`` (pipeline/ingest.py)
takes its word: new, update or resolved is never guessed from what a batch saw before, so an
engine restored from a snapshot (a standby analyzer taking a partition over) delivers its
updates to the alerts it restored as updates."""

from __future__ import annotations

from stackwatch.core.alert import Alert
from stackwatch.core.event import Event
from stackwatch.detect.engine import Engine
from stackwatch.detect.snapshot import capture, restore
from stackwatch.pipeline.ingest import AlertChanges
from stackwatch.pipeline.tenants import TenantPartitionedEngine
from stackwatch.respond.orphans import RULE_ID, OrphanAwareEngine
from stackwatch.store.scope import TENANT_ATTR
from tests.detect.detect_helpers import ev, rule_from_yaml
from tests.respond.conftest import instance_created, keystone_cadf

MATCH = """
condition: {action: privilege.escalate, target.name: root}
category: os.privilege
group_by: [host, initiator.name]
realert: 10m
"""


def sudo(at: float, user: str = "alice", **fields: object) -> Event:
    return ev(at, host="cmp-1", service="sudo", action="privilege.escalate", initiator={"name": user},
              target={"name": "root"}, **fields)


def _engine() -> Engine:
    return Engine([rule_from_yaml(MATCH)])


def _add(changes: AlertChanges, engine: Engine, alerts: list[Alert]) -> None:
    changes.add(alerts, [engine.created(alert) for alert in alerts])


def test_the_engine_says_it_created_an_alert_once_and_updated_it_after() -> None:
    engine = _engine()
    [first] = engine.process(sudo(0))
    assert engine.created(first)
    [again] = engine.process(sudo(60))
    assert again is first and not engine.created(first)
    assert engine.process(ev(120, action="other")) == [] and not engine.created(first)


def test_a_new_alert_then_its_update_across_two_batches() -> None:
    engine, changes = _engine(), AlertChanges()
    _add(changes, engine, engine.process(sudo(0)))
    [new] = changes.take()
    _add(changes, engine, engine.process(sudo(60)))
    [update] = changes.take()
    assert (new.change, new.snapshot.count) == ("new", 1)
    assert (update.change, update.snapshot.count) == ("update", 2)


def test_an_alert_created_and_updated_within_one_batch_is_new_with_its_latest_snapshot() -> None:
    engine, changes = _engine(), AlertChanges()
    _add(changes, engine, engine.process(sudo(0)))
    _add(changes, engine, engine.process(sudo(60)))
    [change] = changes.take()
    assert (change.change, change.snapshot.count) == ("new", 2)


def test_a_restored_engines_update_is_delivered_as_an_update() -> None:
    """A takeover: the alert was created (and delivered as new) by the engine before; the one
    restored from its snapshot updates it. Before the engine said which, an alert the batch had
    not seen was guessed new, and delivered as new a second time."""
    before = _engine()
    [alert] = before.process(sudo(0))
    assert before.created(alert)
    after = _engine()
    restore(after, capture(before))
    changes = AlertChanges()
    _add(changes, after, after.process(sudo(60)))
    [change] = changes.take()
    assert (change.change, change.snapshot.count) == ("update", 2)
    _add(changes, after, after.process(sudo(60 + 3600)))  # past realert: another alert
    [change] = changes.take()
    assert (change.change, change.snapshot.count) == ("new", 1)


def test_the_orphan_detectors_alerts_are_created_by_the_engine_that_carries_it() -> None:
    engine = OrphanAwareEngine([rule_from_yaml(MATCH)])
    project, user = "p" * 32, "u" * 32
    assert engine.process(instance_created("i-1", project, user)) == []
    [alert] = engine.process(keystone_cadf("deleted", "project", project))
    assert alert.rule == RULE_ID and engine.created(alert)


def test_a_project_engines_alerts_are_answered_for_by_that_engine() -> None:
    engine = TenantPartitionedEngine(_engine(), _engine)
    [infra] = engine.process(sudo(0))
    assert engine.created(infra)
    [tenant] = engine.process(sudo(0, attrs={TENANT_ATTR: "p1"}))
    assert tenant.project == "p1" and engine.created(tenant)
    [tenant_again] = engine.process(sudo(60, attrs={TENANT_ATTR: "p1"}))
    assert tenant_again is tenant and not engine.created(tenant)
