"""Countermeasures: the policy, the plan from alerts (allowlists refuse), report-only never
fires, and quarantine_instance / release against the local API through openstacksdk, with a
half-done run retried idempotently. Every result is an event the store's verification covers."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stackwatch.core.alert import Alert
from stackwatch.core.errors import ConfigError
from stackwatch.respond.applied import AppliedLedger
from stackwatch.respond.approvals import ApprovalQueue
from stackwatch.respond.counter_exec import CountermeasureExecutor
from stackwatch.respond.counter_run import countermeasure_pass
from stackwatch.respond.countermeasures import CountermeasurePolicy, plan_countermeasures
from stackwatch.respond.openstack import Cloud
from stackwatch.respond.policy import ResponsePolicy
from stackwatch.store import EventQuery, open_store
from stackwatch.store.verify import verify_store
from tests.respond.fake_openstack import FakeOpenStack

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def alert(category: str, key: str, **fields: object) -> Alert:
    return Alert(rule=f"rule-{category}", title=category, category=category, severity="high", time=NOW,
                 last_seen=NOW, key=key, **fields)  # type: ignore[arg-type]


def policy(**countermeasures: dict) -> ResponsePolicy:
    return ResponsePolicy.from_mapping({"respond": {"approval": False, "grace": 0, "retries": 1,
                                                    "retry_delay": 0, "countermeasures": countermeasures}})


# ---------------------------------------------------------------------------- policy and plan


def test_the_default_is_report_only_and_plans_nothing() -> None:
    default = ResponsePolicy.from_mapping({"respond": {"countermeasures": {"deny_address": {}}}})
    assert default.countermeasures.report_only
    brute = alert("auth.bruteforce", "k", source_ip="203.0.113.9")
    planned, refused = plan_countermeasures(default.countermeasures, [brute], own=set())
    assert planned == [] and refused == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"block_user": {}}, "unknown countermeasure 'block_user'"),
        ({"deny_address": {"allowlist": ["10.0.0.0/33"]}}, "10.0.0.0/33"),
        ({"deny_address": {"mode": "yes"}}, "must be one of report, act"),
        ({"quarantine_instance": {"lock": "maybe"}}, "must be true or false"),
        ({"deny_address": {"expiry": "soon"}}, "not a duration"),
        ({"disable_account": {"socket": "/x"}}, "unknown setting 'socket'"),
    ],
)
def test_bad_policies_are_config_errors(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ResponsePolicy.from_mapping({"respond": {"countermeasures": data}})


def test_plan_from_alerts_with_allowlists() -> None:
    counter = policy(
        disable_account={"mode": "act"},
        deny_address={"mode": "act", "allowlist": ["10.20.0.0/16"], "expiry": "1h"},
        quarantine_instance={"mode": "act", "lock": False},
    ).countermeasures
    alerts = [
        alert("auth.success_after_failures", "k1", user="mallory", source_ip="203.0.113.9"),
        alert("auth.targeted_account", "k2", user="admin", source_ip="203.0.113.10"),  # break-glass
        alert("auth.targeted_account", "k3", user="nova"),  # a service user
        alert("auth.bruteforce", "k4", source_ip="203.0.113.9"),
        alert("auth.bruteforce", "k5", source_ip="10.20.3.4"),  # management network
        alert("auth.spraying", "k6", source_ip="192.0.2.50"),  # the monitor's own address
        alert("ids.alert", "k7", source_ip="198.51.100.1", details={"dest_ip": "10.0.0.5"}),
        alert("malware.detected", "k8", host="cmp1"),  # no address: nothing to quarantine
        alert("auth.bruteforce", "k9", source_ip="203.0.113.77", status="resolved"),
    ]
    planned, refused = plan_countermeasures(counter, alerts, own={"192.0.2.50"})
    assert sorted((p.action, p.resource_id) for p in planned) == [
        ("deny_address", "203.0.113.9"), ("disable_account", "mallory"),
        ("quarantine_instance", "198.51.100.1")]
    deny = next(p for p in planned if p.action == "deny_address")
    assert deny.params["expiry"] == 3600 and deny.owner_kind == "alert"
    assert deny.owner_id == "rule-auth.bruteforce:k4"
    assert sorted((r.action, r.target, r.reason) for r in refused) == [
        ("deny_address", "10.20.3.4", "10.20.3.4 is in the allowlist"),
        ("deny_address", "192.0.2.50", "192.0.2.50 is the monitor's own address"),
        ("disable_account", "admin", "account admin is in the allowlist"),
        ("disable_account", "nova", "account nova is in the allowlist"),
    ]
    # a policy that names its own allowlist may let the admin account be disabled
    own_list = policy(disable_account={"mode": "act", "allowlist": ["nova"]}).countermeasures
    planned, _ = plan_countermeasures(own_list, alerts[1:2], own=set())
    assert [p.resource_id for p in planned] == ["admin"]


# ---------------------------------------------------------------------------- quarantine


@pytest.fixture
def api():
    fake = FakeOpenStack().start()
    yield fake
    fake.stop()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def _instance(api: FakeOpenStack) -> tuple[str, str, str, list[str]]:
    project = api.add_project("a" * 32, name="web")
    user = api.add_user("b" * 32, name="dev", project=project)
    server = api.add_server(project, user, "web-1")
    groups = [api.add_security_group(project, "default"), api.add_security_group(project, "web")]
    port = api.add_port(project, device_id=server, device_owner="compute:nova", ip="10.0.0.5")
    api.ports[port]["security_groups"] = list(groups)
    return project, server, port, groups


def _pass(pol: ResponsePolicy, api: FakeOpenStack, data: Path, alerts: list[Alert], **options: object):
    with open_store(data) as store, ApprovalQueue.open(data, store=store) as queue, \
            AppliedLedger.open(data) as ledger:
        return countermeasure_pass(pol, cloud=Cloud.connect(**api.auth()), store=store, queue=queue,
                                   ledger=ledger, alerts=alerts, out=io.StringIO(), own=set(), **options)


def _events(data: Path) -> list:
    with open_store(data) as store:
        return [s.event for s in store.search_events(EventQuery(kind="response", newest_first=False,
                                                                limit=100))]


def test_report_only_never_fires(api: FakeOpenStack, data: Path) -> None:
    _project, _server, port, groups = _instance(api)
    report_only = policy(quarantine_instance={"mode": "report"}, deny_address={"mode": "report"},
                         disable_account={})
    ids = alert("ids.alert", "k", source_ip="10.0.0.5", user="dev")
    report = _pass(report_only, api, data, [ids])
    assert report.planned == [] and report.queued == [] and report.run is None
    assert api.mutations() == [] and api.ports[port]["security_groups"] == groups
    assert _events(data) == []


def test_quarantine_then_release_restores_the_recorded_groups(api: FakeOpenStack, data: Path) -> None:
    project, server, port, groups = _instance(api)
    pol = policy(quarantine_instance={"mode": "act", "group": "sw-quarantine", "lock": True})
    dry = io.StringIO()
    with open_store(data) as store:
        countermeasure_pass(pol, cloud=None, store=store, queue=None, ledger=None, dry_run=True, out=dry,
                            alerts=[alert("ids.alert", "k", source_ip="10.0.0.5")], own=set())
    assert "would quarantine_instance instance_address 10.0.0.5" in dry.getvalue()
    assert api.mutations() == []  # the dry run calls nothing that changes the cloud

    report = _pass(pol, api, data, [alert("ids.alert", "k", source_ip="10.0.0.5")])
    (result,) = report.run.results
    assert result.status == "done", result.detail
    (quarantine,) = [g for g in api.security_groups.values() if g["name"] == "sw-quarantine"]
    assert quarantine["project_id"] == project
    assert not [r for r in api.security_group_rules.values() if r["security_group_id"] == quarantine["id"]]
    assert api.ports[port]["security_groups"] == [quarantine["id"]]
    assert api.servers[server]["locked"] is True

    again = _pass(pol, api, data, [alert("ids.alert", "k", source_ip="10.0.0.5")])  # idempotent
    assert again.queued == [] and again.run.results == []

    with AppliedLedger.open(data) as ledger, open_store(data) as store:
        item = ledger.find(result.queue_id)
        undo = CountermeasureExecutor(Cloud.connect(**api.auth()), ledger=ledger, store=store,
                                      out=io.StringIO()).undo(item)
    assert undo.status == "done", undo.detail
    assert api.ports[port]["security_groups"] == groups and api.servers[server]["locked"] is False
    actions = [(e.action, e.attrs["result"]) for e in _events(data)]
    assert actions == [("response.quarantine_instance", "done"),
                       ("response.undo_quarantine_instance", "done")]
    assert verify_store(data).ok(allow_unsealed_tail=True)


def test_a_half_done_quarantine_is_reported_and_finished_by_the_retry(api: FakeOpenStack, data: Path) -> None:
    _project, server, port, groups = _instance(api)
    pol = policy(quarantine_instance={"mode": "act"})
    api.fail("POST", r"/compute/v2.1/servers/[^/]+/action$", status=409)  # the lock fails, once
    first = _pass(pol, api, data, [alert("malware.detected", "k", source_ip="10.0.0.5")])
    (result,) = first.run.results
    assert result.status == "failed" and result.detail.startswith("partial (quarantined)")
    assert api.servers[server]["locked"] is False and api.ports[port]["security_groups"] != groups

    second = _pass(pol, api, data, [alert("malware.detected", "k", source_ip="10.0.0.5")])
    assert [r.status for r in second.run.results] == ["done"] and api.servers[server]["locked"] is True
    with AppliedLedger.open(data) as ledger:
        state = ledger.find(result.queue_id).state
    assert state["ports"] == {port: groups}  # the groups before the first change, not the retry's view
    events = _events(data)
    assert [(e.action, e.attrs["result"]) for e in events] == [
        ("response.quarantine_instance", "failed"), ("response.quarantine_instance", "done")]


def test_the_instance_may_be_the_alerts_destination(api: FakeOpenStack, data: Path) -> None:
    _project, server, port, groups = _instance(api)
    ids = alert("ids.alert", "k", source_ip="142.11.240.191", details={"dest_ip": "10.0.0.5"})
    report = _pass(policy(quarantine_instance={"mode": "act"}), api, data, [ids])
    assert [r.status for r in report.run.results] == ["done"]
    assert api.ports[port]["security_groups"] != groups and api.servers[server]["locked"] is True


def test_an_address_no_instance_holds_is_cancelled(api: FakeOpenStack, data: Path) -> None:
    _instance(api)
    report = _pass(policy(quarantine_instance={"mode": "act"}), api, data,
                   [alert("ids.alert", "k", source_ip="198.51.100.7")])
    (result,) = report.run.results
    assert (result.status, result.detail) == ("cancelled", "no instance port has address 198.51.100.7")
    with AppliedLedger.open(data) as ledger:  # undoing what was never applied changes nothing
        undo = CountermeasureExecutor(Cloud.connect(**api.auth()), ledger=ledger, out=io.StringIO()).undo(
            ledger.find(result.queue_id))
    assert (undo.status, undo.detail) == ("already_done", "nothing was applied")
    assert api.mutations() == []


def test_approval_holds_the_action_until_approved(api: FakeOpenStack, data: Path) -> None:
    _project, _server, port, groups = _instance(api)
    pol = ResponsePolicy.from_mapping({"respond": {"approval": True, "grace": 0, "countermeasures": {
        "quarantine_instance": {"mode": "act", "lock": False}}}})
    first = _pass(pol, api, data, [alert("ids.alert", "k", source_ip="10.0.0.5")])
    assert len(first.queued) == 1 and first.run.results == [] and api.ports[port]["security_groups"] == groups
    with open_store(data) as store, ApprovalQueue.open(data, store=store) as queue:
        (pending,) = queue.list_pending()
        assert pending.planned.describe().startswith("quarantine_instance instance_address 10.0.0.5")
        queue.approve(pending.id, "alice")
    second = _pass(pol, api, data, [alert("ids.alert", "k", source_ip="10.0.0.5")])
    assert [r.status for r in second.run.results] == ["done"]
    assert [e.action for e in _events(data)] == ["response.approve", "response.quarantine_instance"]


def test_refusals_are_events_recorded_once(api: FakeOpenStack, data: Path) -> None:
    pol = policy(disable_account={"mode": "act"})
    alerts = [alert("auth.targeted_account", "k", user="admin")]
    for _ in range(2):
        report = _pass(pol, api, data, alerts)
    assert report.refused == []  # the second pass does not repeat it
    (event,) = _events(data)
    assert event.action == "response.disable_account" and event.attrs["result"] == "refused"
    assert event.attrs["detail"] == "account admin is in the allowlist" and event.target.id == "admin"
    assert api.mutations() == []
    assert verify_store(data).ok(allow_unsealed_tail=True)


def test_countermeasure_policy_from_mapping_keeps_defaults() -> None:
    counter = CountermeasurePolicy.from_mapping({"deny_address": {"mode": "act"}})
    rules = counter.get("deny_address")
    assert rules.on == ("auth.bruteforce", "auth.spraying") and rules.expiry == 0
    assert "admin" in counter.get("disable_account").allowlist


def test_the_orphan_sweep_of_serve_runs_countermeasures_for_stored_open_alerts(
        api: FakeOpenStack, data: Path) -> None:
    """``reconcile`` (what serve's periodic sweep calls) plans from the store's open alerts,
    queues, and its run_due runs the countermeasure with the orphan actions."""
    from stackwatch.respond.reconcile import reconcile

    _project, server, port, groups = _instance(api)
    pol = policy(quarantine_instance={"mode": "act"})
    with open_store(data) as store:
        store.upsert_alerts([alert("ids.alert", "k", source_ip="10.0.0.5"),
                             alert("ids.alert", "old", source_ip="10.0.0.5", status="resolved")])
        store.flush()
        with ApprovalQueue.open(data, store=store) as queue:
            report = reconcile(Cloud.connect(**api.auth()), pol, queue=queue, store=store, sweep=False,
                               out=io.StringIO())
    assert [(r.planned.action, r.status) for r in report.run.results] == [("quarantine_instance", "done")]
    assert api.ports[port]["security_groups"] != groups and api.servers[server]["locked"] is True


def test_a_bad_countermeasure_in_a_file_names_its_line(tmp_path: Path) -> None:
    from stackwatch.respond.policy import load_policy

    path = tmp_path / "policy.yaml"
    path.write_text("respond:\n  countermeasures:\n    deny_address:\n      mode: act\n      expiry: soon\n")
    with pytest.raises(ConfigError) as caught:
        load_policy(str(path))
    message = str(caught.value)
    assert f"{path}:5:" in message and "respond.countermeasures.deny_address.expiry" in message


# ---------------------------------------------------------------------------- IDS: the victim side


def _eve(sid: int, source: str, dest: str) -> str:
    """One alert record as Suricata's eve.json writes it (an inbound attack on ``dest``)."""
    record = {"timestamp": "2026-12-06T09:58:01.120000+0000", "flow_id": sid * 7, "in_iface": "eth1",
              "event_type": "alert", "src_ip": source, "src_port": 51514, "dest_ip": dest, "dest_port": 22,
              "proto": "TCP", "alert": {"action": "allowed", "gid": 1, "signature_id": sid, "rev": 3,
                                        "signature": f"ET SCAN Potential SSH Scan {sid}",
                                        "category": "Attempted Information Leak", "severity": 2}}
    return json.dumps(record) + "\n"


def test_an_ids_alert_quarantines_the_instance_it_targets(api: FakeOpenStack, tmp_path: Path) -> None:
    """eve.json through `stackwatch analyze` (the real parser and the built-in Suricata rule):
    the alerts carry the destination; one outside attacker hitting two instances gives each
    victim its own quarantine, through openstacksdk against the API fixture."""
    from tests.producers.hosttools import analyze, host_logs

    project, _server, port, groups = _instance(api)
    other_server = api.add_server(project, api.add_user("c" * 32, project=project), "web-2")
    other_port = api.add_port(project, device_id=other_server, device_owner="compute:nova", ip="10.0.0.6")
    api.ports[other_port]["security_groups"] = list(groups)
    attacker = "198.51.100.23"
    eve = _eve(2001, attacker, "10.0.0.5") + _eve(2002, attacker, "10.0.0.6")
    data = tmp_path / "data"
    result = analyze(host_logs(tmp_path / "logs", "ids1", {"eve.json": eve}), data)
    assert sorted((a["source_ip"], a["details"]["dest_ip"]) for a in result.alerts) == [
        (attacker, "10.0.0.5"), (attacker, "10.0.0.6")]

    source_only = policy(quarantine_instance={"mode": "act", "side": "source", "lock": False})
    with open_store(data) as store, ApprovalQueue.open(tmp_path / "q1", store=store) as queue, \
            AppliedLedger.open(tmp_path / "q1") as ledger:
        report = countermeasure_pass(source_only, cloud=Cloud.connect(**api.auth()), store=store, queue=queue,
                                     ledger=ledger, out=io.StringIO(), own=set())
    assert [(r.planned.resource_id, r.status) for r in report.run.results] == [(attacker, "cancelled")]
    assert api.mutations() == []  # the attacker is no instance: nothing changes

    report = _pass(policy(quarantine_instance={"mode": "act", "lock": False}), api, data, alerts=None)
    assert sorted((r.planned.resource_id, r.status) for r in report.run.results) == [
        ("10.0.0.5", "done"), ("10.0.0.6", "done")]
    (quarantine,) = [g for g in api.security_groups.values() if g["name"] == "stackwatch-quarantine"]
    assert api.ports[port]["security_groups"] == [quarantine["id"]]
    assert api.ports[other_port]["security_groups"] == [quarantine["id"]]
    report = _pass(policy(quarantine_instance={"mode": "act", "side": "destination"}), api, data, alerts=None)
    assert report.queued == []  # the same two actions: already done, nothing new
    assert verify_store(data).ok(allow_unsealed_tail=True)
