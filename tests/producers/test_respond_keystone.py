"""disable_account against the real keystone (the session's keystone_server fixture), through
openstacksdk: the user is disabled and its token stops validating at once (keystone revokes a
disabled user's tokens), a new login is refused; undo enables it again (the old token stays
revoked); allowlisted accounts (the admin break-glass account, service users) are refused and
keep working; report-only changes nothing."""

from __future__ import annotations

import io
import secrets
from datetime import UTC, datetime
from pathlib import Path

from stackwatch.core.alert import Alert
from stackwatch.respond.applied import AppliedLedger
from stackwatch.respond.approvals import ApprovalQueue
from stackwatch.respond.counter_exec import CountermeasureExecutor
from stackwatch.respond.counter_run import countermeasure_pass
from stackwatch.respond.openstack import Cloud
from stackwatch.respond.policy import ResponsePolicy
from stackwatch.store import EventQuery, open_store
from stackwatch.store.verify import verify_store
from tests.producers.keystone_server import Keystone


def _cloud(keystone: Keystone) -> Cloud:
    creds = keystone.admin_credentials
    return Cloud.connect(auth_url=keystone.url, username=creds.name, password=creds.password,
                         project_name=creds.project, user_domain_id="default", project_domain_id="default",
                         region_name="RegionOne")


def _user(keystone: Keystone, prefix: str) -> tuple[str, str, str]:
    name, password = f"{prefix}-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    return name, password, keystone.admin().create_user(name, password)


def _token(keystone: Keystone, name: str, password: str) -> tuple[int, str]:
    status, headers, _ = keystone.client()._password_login(name, password, "default", None)
    return status, headers.get("x-subject-token", "")


def _validates(keystone: Keystone, token: str) -> int:
    headers = {"X-Subject-Token": token}
    status, _, _ = keystone.admin().client.request("GET", "/v3/auth/tokens", headers=headers)
    return status


def _alert(category: str, user: str) -> Alert:
    now = datetime.now(UTC)
    return Alert(rule="r-" + category, title=category, category=category, severity="critical", time=now,
                 last_seen=now, key=user, user=user, source_ip="203.0.113.9")


def _pass(keystone: Keystone, data: Path, mode: str, alerts: list[Alert]):
    policy = ResponsePolicy.from_mapping({"respond": {"approval": False, "grace": 0, "countermeasures": {
        "disable_account": {"mode": mode}}}})
    with open_store(data) as store, ApprovalQueue.open(data, store=store) as queue, \
            AppliedLedger.open(data) as ledger:
        return countermeasure_pass(policy, cloud=_cloud(keystone), store=store, queue=queue, ledger=ledger,
                                   alerts=alerts, out=io.StringIO(), own=set())


def test_disable_account_revokes_the_users_tokens_and_undo_restores_it(keystone: Keystone,
                                                                       tmp_path: Path) -> None:
    data = tmp_path / "data"
    name, password, user_id = _user(keystone, "mallory")
    status, token = _token(keystone, name, password)
    assert status == 201 and _validates(keystone, token) == 200

    _pass(keystone, data, "report", [_alert("auth.success_after_failures", name)])  # never fires
    assert _validates(keystone, token) == 200

    report = _pass(keystone, data, "act", [_alert("auth.success_after_failures", name),
                                            _alert("auth.targeted_account", "admin")])
    (result,) = report.run.results
    assert result.status == "done", result.detail
    assert _validates(keystone, token) == 404  # revoked: it no longer validates
    assert _token(keystone, name, password)[0] == 401  # and no new one is issued
    assert keystone.admin().client.request("GET", f"/v3/users/{user_id}")[2]["user"]["enabled"] is False
    assert [r.planned.resource_id for r in report.refused] == ["admin"]
    assert _token(keystone, "admin", keystone.admin_credentials.password)[0] == 201  # break-glass intact

    with AppliedLedger.open(data) as ledger, open_store(data) as store:
        undo = CountermeasureExecutor(_cloud(keystone), ledger=ledger, store=store, out=io.StringIO()).undo(
            ledger.find(result.queue_id))
    assert undo.status == "done", undo.detail
    assert _token(keystone, name, password)[0] == 201  # enabled again
    assert _validates(keystone, token) == 404  # the revoked token stays revoked

    with open_store(data) as store:
        events = [s.event for s in store.search_events(EventQuery(kind="response", newest_first=False))]
    assert [(e.action, e.attrs["result"]) for e in events] == [
        ("response.disable_account", "refused"), ("response.disable_account", "done"),
        ("response.undo_disable_account", "done")]
    assert verify_store(data).ok(allow_unsealed_tail=True)


def test_an_unknown_account_is_cancelled_not_failed(keystone: Keystone, tmp_path: Path) -> None:
    alerts = [_alert("auth.success_after_failures", "nobody-here")]
    report = _pass(keystone, tmp_path / "data", "act", alerts)
    assert [(r.status, r.detail) for r in report.run.results] == [
        ("cancelled", "no keystone user nobody-here")]
