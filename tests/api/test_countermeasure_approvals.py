"""Countermeasures wait in the same approval queue as the orphan actions: the API and the
responses page list them with the alert they answer, and a responder approves them there."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from stackwatch.core.alert import Alert
from stackwatch.respond.approvals import ApprovalQueue
from stackwatch.respond.countermeasures import plan_countermeasures
from stackwatch.respond.policy import ResponsePolicy
from tests.api.conftest import log_in
from tests.api.test_responses import (  # noqa: F401 - its fixtures
    _auth,
    queue_dir,
    resp_app,
    resp_services,
    responder_token,
)


def test_a_planned_countermeasure_is_listed_and_approved(  # type: ignore[no-untyped-def]
    resp_app, queue_dir: Path, responder_token: str  # noqa: F811
) -> None:
    address = f"203.0.113.{uuid.uuid4().int % 250 + 1}"
    now = datetime.now(UTC)
    brute = Alert(rule="brute", title="brute force", category="auth.bruteforce", severity="high", time=now,
                  last_seen=now, key=address, source_ip=address)
    policy = ResponsePolicy.from_mapping({"respond": {"countermeasures": {"deny_address": {"mode": "act"}}}})
    planned, _ = plan_countermeasures(policy.countermeasures, [brute], own=set())
    with ApprovalQueue.open(queue_dir) as queue:
        (action_id,) = queue.enqueue(planned, approval=policy.approval, grace=policy.grace)
    with TestClient(resp_app) as client:
        pending = client.get("/api/v1/responses/pending", headers=_auth(responder_token)).json()["pending"]
        assert [(p["id"], p["action"], p["resource_id"], p["owner_kind"]) for p in pending] == [
            (action_id, "deny_address", address, "alert")]
        page = log_in(client, "rex").get("/responses").text
        assert "deny_address" in page and address in page
        response = client.post(f"/api/v1/responses/{action_id}/approve", headers=_auth(responder_token))
    assert response.status_code == 200, response.text
    with ApprovalQueue.open(queue_dir) as queue:
        assert queue.get(action_id).status == "approved"
