"""actions + reconcile: acting on confirmed orphans through openstacksdk against the local cloud."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from stackwatch.core.clock import FakeClock
from stackwatch.respond.actions import Executor
from stackwatch.respond.approvals import ApprovalQueue
from stackwatch.respond.openstack import Cloud
from stackwatch.respond.orphans import RULE_ID, OrphanDetector
from stackwatch.respond.policy import ResponsePolicy
from stackwatch.respond.reconcile import reconcile, run_due
from stackwatch.store import EventQuery, open_store
from tests.respond.conftest import (
    World,
    build_world,
    floatingip_created,
    instance_created,
    keystone_cadf,
    volume_attached,
)
from tests.respond.fake_openstack import FakeOpenStack

ACT = ResponsePolicy(instances="terminate", snapshot=True, volumes="delete", floating_ips="release",
                     ports="delete", grace=0, approval=False, retries=2, retry_delay=0)


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "data") as opened:
        yield opened


@pytest.fixture
def queue(tmp_path, store):
    with ApprovalQueue.open(tmp_path / "data", store=store) as opened:
        yield opened


def _alert_from_notifications(world: World):
    """What the engine raised when keystone's deletion notification arrived."""
    detector = OrphanDetector()
    for event in (instance_created(world.servers[0], world.project, world.user, "legacy-app-1"),
                  instance_created(world.servers[1], world.project, world.user, "legacy-app-2", "cmp2"),
                  volume_attached(world.volume, world.servers[0], world.project, world.user),
                  floatingip_created(world.fips[0], world.project, "172.24.4.10", world.ports[0]),
                  floatingip_created(world.fips[1], world.project, "172.24.4.11")):
        detector.process(event)
    (alert,) = detector.process(keystone_cadf("deleted", "project", world.project))
    return alert


def _response_events(store):
    return [s.event for s in store.search_events(EventQuery(kind="response", newest_first=False, limit=500))]


def _untouched_live_project(api: FakeOpenStack, world: World) -> bool:
    return world.live_server in api.servers and api.floatingips[world.live_fip]["port_id"] is not None


def test_project_deleted_with_instances_volumes_and_floating_ips(api, cloud, store, queue):
    world = build_world(api)
    alert = _alert_from_notifications(world)
    del api.projects[world.project]
    out = io.StringIO()
    report = reconcile(cloud, ACT, queue=queue, store=store, alerts=[alert], sweep=False, out=out)
    assert report.run is not None and report.run.complete, out.getvalue()
    assert not set(world.servers) & set(api.servers)
    assert world.volume not in api.volumes
    assert not set(world.fips) & set(api.floatingips)
    assert sorted(i["server"] for i in api.images.values()) == sorted(world.servers)  # snapshots first
    assert _untouched_live_project(api, world)
    actions = [e.action for e in _response_events(store)]
    assert actions.count("response.terminate_instance") == 2 and "response.delete_volume" in actions
    assert actions.index("response.snapshot_instance") < actions.index("response.terminate_instance")
    assert {item.status for item in queue.actions()} == {"done"}


def test_every_action_is_an_event_in_the_store(api, cloud, store, queue):
    world = build_world(api)
    del api.projects[world.project]
    reconcile(cloud, ACT, queue=queue, store=store, sweep=True, out=None)
    events = _response_events(store)
    assert events and all(e.kind == "response" and e.service == "stackwatch" for e in events)
    release = [e for e in events if e.action == "response.release_floating_ip"]
    assert {e.target.id for e in release} == set(world.fips)
    assert all(e.outcome == "success" and e.attrs["owner"] == f"project:{world.project}" for e in release)


def test_router_ports_are_left_to_neutron(api, cloud, queue):
    world = build_world(api)
    del api.projects[world.project]
    reconcile(cloud, ACT, queue=queue, out=None)
    assert world.router_port in api.ports and not set(world.ports) & set(api.ports)


def test_user_deleted_acts_on_that_users_resources_only(api, cloud, queue):
    world = build_world(api)
    del api.users[world.user]
    policy = ResponsePolicy(instances="terminate", volumes="delete", grace=0, approval=False, retry_delay=0,
                            owners=("project", "user", "domain"))
    report = reconcile(cloud, policy, queue=queue, out=None)
    assert report.run is not None and report.run.complete
    assert not set(world.servers) & set(api.servers) and world.volume not in api.volumes
    assert _untouched_live_project(api, world) and world.project in api.projects


def test_user_deletion_is_report_only_unless_the_policy_opts_in(api, cloud, queue):
    world = build_world(api)
    del api.users[world.user]
    report = reconcile(cloud, ACT, queue=queue, out=None)
    assert [o.key for o in report.orphans] == [f"user:{world.user}"] and report.planned == []
    assert api.mutations() == []


def test_domain_deleted(api, cloud, queue):
    api.add_domain("dom-x")
    project = api.add_project("9" * 32, domain="dom-x")
    server = api.add_server(project, "someone", "in-domain")
    detector = OrphanDetector()
    detector.ledger.set_project_domain(project, "dom-x")
    detector.process(instance_created(server, project, "someone"))
    (alert,) = detector.process(keystone_cadf("deleted", "domain", "dom-x"))
    del api.domains["dom-x"], api.projects[project]
    report = reconcile(cloud, ACT, queue=queue, alerts=[alert], sweep=False, out=None)
    assert [o.key for o in report.orphans] == ["domain:dom-x"]
    assert server not in api.servers


def test_disabled_project_is_never_touched(api, cloud, queue):
    world = build_world(api)
    alert = _alert_from_notifications(world)  # even with a (wrong) deletion alert in hand
    api.projects[world.project]["enabled"] = False
    report = reconcile(cloud, ACT, queue=queue, alerts=[alert], out=None)
    assert report.orphans == [] and report.dismissed[0].note.endswith("still exists")
    assert api.mutations() == []


def test_missed_notification_is_found_by_the_sweep_and_raised(api, cloud, store, queue):
    world = build_world(api)
    del api.projects[world.project]
    report = reconcile(cloud, ResponsePolicy(), queue=queue, store=store, out=None)
    (alert,) = report.alerts
    assert (alert.rule, alert.key) == (RULE_ID, f"project:{world.project}")
    assert report.planned == [] and api.mutations() == []  # the default policy reports only
    assert [s.alert.key for s in store.alerts()] == [alert.key]


def test_dry_run_prints_the_plan_and_changes_nothing(api, cloud, tmp_path):
    world = build_world(api)
    del api.projects[world.project]
    out = io.StringIO()
    report = reconcile(cloud, ACT, queue=None, store=None, dry_run=True, out=out)
    text = out.getvalue()
    assert api.mutations() == []
    assert report.run is not None and report.run.dry_run and len(report.run.results) == len(report.planned)
    assert f"would snapshot_instance instance {world.servers[0]}" in text
    assert text.index("would terminate_instance") < text.index("would detach_volume") \
        < text.index("would delete_volume")
    assert "dry run:" in text and not (tmp_path / "data").exists()


def test_approval_flow(api, cloud, store, queue):
    world = build_world(api)
    del api.projects[world.project]
    policy = ResponsePolicy(instances="terminate", floating_ips="release", grace=0, approval=True,
                            retry_delay=0)
    report = reconcile(cloud, policy, queue=queue, store=store, out=None)
    assert report.run is not None and report.run.results == [] and api.mutations() == []
    pending = queue.list_pending()
    assert {p.planned.action for p in pending} == {"terminate_instance", "release_floating_ip"}
    terminate = [p for p in pending if p.planned.action == "terminate_instance"]
    for item in terminate:
        queue.approve(item.id, "alice")
    spare = next(p for p in pending if p.planned.resource_id == world.fips[1])
    queue.reject(spare.id, "alice", "the customer wants to keep the address")
    run = run_due(cloud, policy, queue, store=store, out=None)
    assert {r.planned.action for r in run.results} == {"terminate_instance"} and run.complete
    assert not set(world.servers) & set(api.servers)
    assert set(world.fips) <= set(api.floatingips)  # one rejected, one still pending
    decisions = [e for e in _response_events(store) if e.action in ("response.approve", "response.reject")]
    assert [e.initiator.name for e in decisions] == ["alice"] * 3
    assert decisions[-1].attrs["reason"] == "the customer wants to keep the address"
    reconcile(cloud, policy, queue=queue, store=store, out=None)  # a later sweep does not re-queue
    assert queue.get(spare.id).status == "rejected" and len(queue.actions()) == len(pending)


def test_grace_period_delays_actions(api, cloud, tmp_path):
    world = build_world(api)
    del api.projects[world.project]
    clock = FakeClock(datetime.now(UTC))
    policy = ResponsePolicy(instances="terminate", grace=3600, approval=False, retry_delay=0)
    with ApprovalQueue.open(tmp_path / "data", clock=clock) as queue:
        reconcile(cloud, policy, queue=queue, out=None)
        assert world.servers[0] in api.servers
        clock.advance(3601)
        assert run_due(cloud, policy, queue, out=None).complete
    assert not set(world.servers) & set(api.servers)


def test_transient_api_error_is_retried(api, cloud, queue):
    world = build_world(api)
    del api.projects[world.project]
    api.fail("DELETE", f"/servers/{world.servers[0]}$", 503, times=1)
    sleeps: list[float] = []
    report = reconcile(cloud, ACT, queue=queue, out=None, sleep=sleeps.append)
    assert report.run is not None and report.run.complete
    (result,) = [r for r in report.run.results if r.planned.resource_id == world.servers[0]
                 and r.planned.action == "terminate_instance"]
    assert result.attempts == 2 and sleeps == [0.0]


def test_error_mid_way_reports_partial_completion_and_a_rerun_finishes(api, cloud, store, queue):
    world = build_world(api)
    del api.projects[world.project]
    api.fail("POST", f"/volumes/{world.volume}/action$", 500, times=0)  # unused path stays harmless
    api.fail("DELETE", f"/volumes/{world.volume}$", 503, times=3)  # outlasts 1 try + 2 retries
    out = io.StringIO()
    first = reconcile(cloud, ACT, queue=queue, store=store, out=out, sleep=lambda s: None)
    assert first.run is not None and first.run.partial and not first.run.complete
    (failed,) = [r for r in first.run.results if r.status == "failed"]
    assert failed.planned.action == "delete_volume" and failed.attempts == 3 and "503" in failed.detail
    assert "PARTIAL" in out.getvalue()
    assert world.volume in api.volumes and api.volumes[world.volume]["status"] == "available"
    assert not set(world.servers) & set(api.servers)  # the rest of the plan went on
    failures = [e for e in _response_events(store) if e.outcome == "failure"]
    assert [e.action for e in failures] == ["response.delete_volume"]
    second = run_due(cloud, ACT, queue, store=store, out=None)
    assert [(r.planned.action, r.status) for r in second.results] == [("delete_volume", "done")]
    assert world.volume not in api.volumes
    third = run_due(cloud, ACT, queue, store=store, out=None)
    assert third.results == []  # nothing left: safe to rerun


def test_failed_detach_skips_the_delete_of_that_volume(api, cloud, queue):
    world = build_world(api)
    del api.projects[world.project]
    policy = ResponsePolicy(volumes="delete", grace=0, approval=False, retries=0, retry_delay=0)
    api.fail("DELETE", "/os-volume_attachments/", 409, times=1)
    report = reconcile(cloud, policy, queue=queue, out=None)
    assert report.run is not None
    assert [(r.planned.action, r.status) for r in report.run.results] == [("detach_volume", "failed"),
                                                                          ("delete_volume", "skipped")]
    assert world.volume in api.volumes


def test_owner_reappearing_before_the_action_cancels_it(api, cloud, queue):
    world = build_world(api)
    del api.projects[world.project]
    policy = ResponsePolicy(instances="terminate", grace=0, approval=True, retry_delay=0)
    reconcile(cloud, policy, queue=queue, out=None)
    for item in queue.list_pending():
        queue.approve(item.id, "alice")
    api.add_project(world.project, name="legacy")  # e.g. restored before the action ran
    report = run_due(cloud, policy, queue, out=None)
    assert {r.status for r in report.results} == {"cancelled"}
    assert set(world.servers) <= set(api.servers) and api.mutations() == []


def test_404_on_delete_of_an_already_gone_resource_counts_as_done(api, cloud, queue):
    world = build_world(api)
    del api.projects[world.project]
    target = world.servers[1]
    api.fail("DELETE", f"/servers/{target}$", 404, then=lambda: api.servers.pop(target))
    report = reconcile(cloud, ResponsePolicy(instances="terminate", grace=0, approval=False), queue=queue,
                       out=None)
    (result,) = [r for r in report.run.results if r.planned.resource_id == target]
    assert result.status == "already_done" and "404" in result.detail


def test_404_on_delete_while_the_resource_is_still_there_is_a_failure(api, cloud):
    world = build_world(api)
    del api.projects[world.project]
    (orphan,) = cloud.sweep()
    plan = [a for a in ResponsePolicy(instances="terminate").plan(orphan)]
    api.fail("DELETE", f"/servers/{world.servers[0]}$", 404)
    report = Executor(cloud, retries=0, out=None).run(plan)
    statuses = {r.planned.resource_id: r.status for r in report.results}
    assert statuses[world.servers[0]] == "failed" and statuses[world.servers[1]] == "done"


def test_executor_needs_a_cloud_except_for_dry_runs():
    with pytest.raises(RuntimeError):
        from stackwatch.respond.policy import PlannedAction

        action = PlannedAction("terminate_instance", "instance", "i", None, "project", "p")
        Executor(None, out=None).run([action])


def test_cloud_connects_with_explicit_auth(api):
    assert Cloud.connect(**api.auth()).owner_exists("domain", "default")
