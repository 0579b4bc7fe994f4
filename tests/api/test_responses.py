"""Approving and rejecting planned responses over HTTP (API and the responses page), against
a queue seeded by the real respond planner, with decisions in the audit trail."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from stackwatch.api import Services
from stackwatch.api.audit import AuditLog
from stackwatch.api.settings import LoginRate
from stackwatch.api.users import UserStore
from stackwatch.respond.approvals import ApprovalQueue
from stackwatch.respond.ledger import Resource
from stackwatch.respond.orphans import Orphan
from stackwatch.respond.policy import ResponsePolicy
from stackwatch.store import open_store
from stackwatch.store.base import EventQuery
from tests.api.conftest import PASSWORDS, ROLES, log_in, make_app


@pytest.fixture()
def queue_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture()
def planned(queue_dir: Path) -> dict[str, int]:
    """A deleted project's instance and volume, planned by the default-approval policy:
    resource id -> queue id (all pending). Resource ids are unique per test, because the audit
    events land in the session-wide store."""
    tag = uuid.uuid4().hex[:8]
    orphan = Orphan("project", f"proj-{tag}", [
        Resource(type="instance", id=f"inst-{tag}", name="web", project=f"proj-{tag}"),
        Resource(type="volume", id=f"vol-{tag}", name="data", project=f"proj-{tag}"),
    ])
    policy = ResponsePolicy(instances="terminate", volumes="delete")
    plan = policy.plan(orphan)
    assert policy.approval
    assert [a.action for a in plan] == ["terminate_instance", "detach_volume", "delete_volume"]
    with ApprovalQueue.open(queue_dir) as queue:
        ids = queue.enqueue(plan, approval=policy.approval, grace=policy.grace)
        assert [item.id for item in queue.list_pending()] == ids
    return {f"{a.action}:{a.resource_id}": i for a, i in zip(plan, ids, strict=True)}


@pytest.fixture(scope="module")
def resp_services(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """Its own store, users and audit log (so these decisions do not show up in the shared
    store other tests count on); the rules are the session's."""
    data = tmp_path_factory.mktemp("responses-data")
    own = Services(store=open_store(data), users=UserStore.in_data_dir(data),
                   audit=AuditLog.for_data_dir(data), rules=services.rules, data_dir=data)
    for name in ("rex", "vic"):
        own.users.add(name, PASSWORDS[name], ROLES[name])
    yield own
    own.close()


@pytest.fixture()
def resp_app(resp_services: Services, queue_dir: Path):  # type: ignore[no-untyped-def]
    """The app over ``resp_services``, with its approval queue in ``queue_dir`` (one per test)."""
    own = Services(
        store=resp_services.store, users=resp_services.users, audit=resp_services.audit,
        rules=resp_services.rules, data_dir=queue_dir,
    )
    return make_app(own, login_rate=LoginRate(per_ip=1000, per_user=1000, window=60))


@pytest.fixture()
def viewer_token(resp_services: Services) -> str:
    return resp_services.users.create_token("vic", "tests")[0]


@pytest.fixture()
def responder_token(resp_services: Services) -> str:
    return resp_services.users.create_token("rex", "tests")[0]


def _client(app, name: str) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        yield log_in(client, name)


@pytest.fixture()
def rex(resp_app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    yield from _client(resp_app, "rex")


@pytest.fixture()
def vic(resp_app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    yield from _client(resp_app, "vic")


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _status(queue_dir: Path, action_id: int) -> str:
    with ApprovalQueue.open(queue_dir) as queue:
        item = queue.get(action_id)
    assert item is not None
    return item.status


def _audit(services: Services, action: str, resource_id: str) -> list:  # type: ignore[type-arg]
    found = services.store.search_events(
        EventQuery(service="stackwatch", kind="stackwatch_audit", action=action, limit=500)
    )
    return [f.event for f in found if f.event.attrs.get("resource_id") == resource_id]


def _csrf(client: TestClient) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/responses").text)
    assert match
    return match.group(1)


def test_a_viewer_cannot_approve(resp_app, planned, queue_dir, viewer_token: str) -> None:  # type: ignore[no-untyped-def]
    action_id = next(iter(planned.values()))
    with TestClient(resp_app) as client:
        response = client.post(f"/api/v1/responses/{action_id}/approve", headers=_auth(viewer_token))
    assert response.status_code == 403
    assert _status(queue_dir, action_id) == "pending"


def test_a_viewer_session_cannot_approve_with_the_form(vic: TestClient, planned, queue_dir) -> None:  # type: ignore[no-untyped-def]
    action_id = next(iter(planned.values()))
    assert "Approve</button>" not in vic.get("/responses").text
    response = vic.post(
        f"/responses/{action_id}/approve", data={"csrf_token": _csrf(vic)}, follow_redirects=False
    )
    assert response.status_code == 403
    assert _status(queue_dir, action_id) == "pending"


def test_a_responder_approves_and_it_is_audited_once(  # type: ignore[no-untyped-def]
    resp_app, planned, queue_dir, responder_token: str, resp_services
) -> None:
    key, action_id = next((k, v) for k, v in planned.items() if k.startswith("terminate_instance"))
    resource_id = key.split(":", 1)[1]
    with TestClient(resp_app) as client:
        response = client.post(f"/api/v1/responses/{action_id}/approve", headers=_auth(responder_token))
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["id"], body["status"], body["decided_by"]) == (action_id, "approved", "rex")
        pending = client.get("/api/v1/responses/pending", headers=_auth(responder_token)).json()["pending"]
        pending_ids = [p["id"] for p in pending]
        history = client.get("/api/v1/responses/history", headers=_auth(responder_token)).json()["history"]
    assert action_id not in pending_ids and len(pending_ids) == 2
    assert [(h["id"], h["status"]) for h in history] == [(action_id, "approved")]
    assert _status(queue_dir, action_id) == "approved"
    (event,) = _audit(resp_services, "response.approve", resource_id)
    assert event.initiator.name == "rex" and event.initiator.source_ip == "testclient"
    assert (event.target.type, event.target.id) == ("response", str(action_id))
    assert event.attrs["planned_action"] == "terminate_instance" and event.attrs["status"] == "approved"
    # Recorded in one place only: the queue did not append its own kind=response event.
    own = resp_services.store.search_events(EventQuery(kind="response", action="response.approve", limit=500))
    assert not [f for f in own if f.event.target.id == resource_id]


def test_reject_with_a_reason(resp_app, planned, queue_dir, responder_token: str, resp_services) -> None:  # type: ignore[no-untyped-def]
    key, action_id = next((k, v) for k, v in planned.items() if k.startswith("delete_volume"))
    resource_id = key.split(":", 1)[1]
    with TestClient(resp_app) as client:
        url = f"/api/v1/responses/{action_id}/reject"
        for bad in (None, {}, {"reason": "   "}, {"reason": 42}):
            refused = client.post(url, headers=_auth(responder_token), json=bad)
            assert refused.status_code == 400, (bad, refused.text)
        assert _status(queue_dir, action_id) == "pending"
        response = client.post(url, headers=_auth(responder_token), json={"reason": "project being restored"})
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["reason"]) == ("rejected", "project being restored")
    assert _status(queue_dir, action_id) == "rejected"
    (event,) = _audit(resp_services, "response.reject", resource_id)
    assert event.attrs["reason"] == "project being restored" and event.target.id == str(action_id)


def test_unknown_id_is_404(resp_app, planned, responder_token: str) -> None:  # type: ignore[no-untyped-def]
    with TestClient(resp_app) as client:
        for url, body in (("/api/v1/responses/9999/approve", None), ("/api/v1/responses/9999/reject",
                                                                      {"reason": "x"})):
            assert client.post(url, headers=_auth(responder_token), json=body).status_code == 404


def test_no_queue_at_all_is_404_and_creates_nothing(  # type: ignore[no-untyped-def]
    resp_services, tmp_path, responder_token: str
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    own = Services(store=resp_services.store, users=resp_services.users, audit=resp_services.audit,
                   rules=resp_services.rules, data_dir=empty)
    with TestClient(make_app(own)) as client:
        response = client.post("/api/v1/responses/1/approve", headers=_auth(responder_token))
    assert response.status_code == 404
    assert not (empty / "respond").exists()


def test_an_already_decided_action_is_409(  # type: ignore[no-untyped-def]
    resp_app, planned, queue_dir, responder_token: str, resp_services
) -> None:
    key, action_id = next(iter(planned.items()))
    with TestClient(resp_app) as client:
        headers = _auth(responder_token)
        assert client.post(f"/api/v1/responses/{action_id}/approve", headers=headers).status_code == 200
        again = client.post(f"/api/v1/responses/{action_id}/approve", headers=headers)
        rejected = client.post(
            f"/api/v1/responses/{action_id}/reject", headers=headers, json={"reason": "late"}
        )
    assert again.status_code == 409 and "approved" in again.json()["detail"]
    assert rejected.status_code == 409
    assert _status(queue_dir, action_id) == "approved"
    assert len(_audit(resp_services, "response.approve", key.split(":", 1)[1])) == 1
    assert not _audit(resp_services, "response.reject", key.split(":", 1)[1])


def test_the_form_post_needs_the_csrf_token(rex: TestClient, planned, queue_dir) -> None:  # type: ignore[no-untyped-def]
    action_id = next(iter(planned.values()))
    for data in ({}, {"csrf_token": "forged"}):
        response = rex.post(f"/responses/{action_id}/approve", data=data, follow_redirects=False)
        assert response.status_code == 403
    # The JSON API with the session cookie needs the header just the same.
    assert rex.post(f"/api/v1/responses/{action_id}/approve").status_code == 403
    assert _status(queue_dir, action_id) == "pending"


def test_the_page_approves_and_rejects_and_shows_history(rex: TestClient, planned, queue_dir) -> None:  # type: ignore[no-untyped-def]
    approve_id, reject_id, left_id = planned.values()
    page = rex.get("/responses").text
    assert f'action="/responses/{approve_id}/approve"' in page and 'name="reason"' in page
    assert "No decided or finished responses yet." in page
    token = _csrf(rex)
    done = rex.post(f"/responses/{approve_id}/approve", data={"csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/responses"
    no_reason = rex.post(f"/responses/{reject_id}/reject", data={"csrf_token": token}, follow_redirects=False)
    assert no_reason.status_code == 400
    rejected = rex.post(f"/responses/{reject_id}/reject", data={"csrf_token": token, "reason": "keep <it>"},
                        follow_redirects=False)
    assert rejected.status_code == 303
    assert (_status(queue_dir, approve_id), _status(queue_dir, reject_id), _status(queue_dir, left_id)) == \
        ("approved", "rejected", "pending")
    with ApprovalQueue.open(queue_dir) as queue:
        queue.mark(approve_id, "done", "terminated", 1)
    page = rex.get("/responses").text
    pending_part, history_part = page.split("<h2>History</h2>")
    assert f'id="response-{left_id}"' in pending_part and f'id="response-{approve_id}"' not in pending_part
    assert f'id="response-{approve_id}"' in history_part and f'id="response-{reject_id}"' in history_part
    assert "status-done" in history_part and "status-rejected" in history_part
    assert "keep &lt;it&gt;" in history_part and "keep <it>" not in page  # escaped
    assert rex.post(f"/responses/{left_id}/explode", data={"csrf_token": token}).status_code == 404


def test_unauthenticated_callers_are_refused(resp_app, planned, queue_dir) -> None:  # type: ignore[no-untyped-def]
    action_id = next(iter(planned.values()))
    with TestClient(resp_app) as anon:
        for path in (f"/api/v1/responses/{action_id}/approve", f"/api/v1/responses/{action_id}/reject"):
            assert anon.post(path, json={"reason": "x"}).status_code == 401
        form = anon.post(f"/responses/{action_id}/approve", follow_redirects=False)
        assert form.status_code == 303 and form.headers["location"].startswith("/login")
    assert _status(queue_dir, action_id) == "pending"
