"""Planned responses (e.g. cleaning up resources orphaned by a deleted project): the ones
awaiting approval, the decided/finished ones, and approve / reject (responder role).

Each decision is recorded once, as an audit event (``response.approve`` /
``response.reject``, actor, target ``response`` + the queue id) through the services'
AuditLog, like the alert actions; the queue is opened without a store so it does not append
its own ``kind: response`` event as well (see ``ApprovalDesk`` in api/services.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from stackwatch.api.audit import audit_event
from stackwatch.api.auth import Principal, client_ip, responder, viewer
from stackwatch.api.services import ApprovalConflict, ApprovalUnavailable
from stackwatch.core.errors import StackwatchError
from stackwatch.web.render import render

router = APIRouter()
MAX_REASON = 2000
DECISIONS = ("approve", "reject")


@router.get("/api/v1/responses/pending", tags=["responses"], summary="Responses awaiting approval")
def pending(request: Request, principal: Annotated[Principal, Depends(viewer)]) -> dict[str, Any]:
    return {"pending": request.app.state.services.approvals()}


@router.get(
    "/api/v1/responses/history",
    tags=["responses"],
    summary="Decided and finished responses (approved, rejected, done, failed, cancelled), newest first",
)
def history(request: Request, principal: Annotated[Principal, Depends(viewer)]) -> dict[str, Any]:
    return {"history": request.app.state.services.approvals.history()}


def decide(
    request: Request, principal: Principal, action_id: int, decision: str, reason: str | None
) -> dict[str, Any]:
    """Approve or reject queued action ``action_id`` and record it in the audit trail."""
    desk = request.app.state.services.approvals
    reason = (reason or "").strip()[:MAX_REASON] or None
    if decision == "reject" and not reason:
        raise HTTPException(400, "a rejection needs a reason")
    try:
        if decision == "approve":
            item = desk.approve(action_id, principal.name)
        else:
            item = desk.reject(action_id, principal.name, reason or "")
    except ApprovalUnavailable:
        raise HTTPException(404, f"no queued response {action_id}") from None
    except ApprovalConflict as exc:
        raise HTTPException(409, str(exc)) from None
    except StackwatchError as exc:
        raise HTTPException(400, str(exc)) from None
    what = f"{item['action']} {item['resource_type']} {item['resource_id']}"
    request.app.state.services.audit.record(
        audit_event(
            f"response.{decision}",
            actor=principal.name,
            source_ip=client_ip(request),
            target_type="response",
            target_id=str(action_id),
            target_name=what,
            message=f"{principal.name} {decision}d response {action_id} ({what})"
            + (f": {reason}" if reason else ""),
            attrs={
                "status": item["status"],
                "planned_action": item["action"],
                "resource_type": item["resource_type"],
                "resource_id": item["resource_id"],
                "owner": f"{item['owner_kind']}:{item['owner_id']}",
                **({"reason": reason} if reason else {}),
            },
        )
    )
    return item


@router.post(
    "/api/v1/responses/{action_id}/approve",
    tags=["responses"],
    summary="Approve a pending response (responder); 409 when it is no longer pending",
)
def approve(
    request: Request, action_id: int, principal: Annotated[Principal, Depends(responder)]
) -> dict[str, Any]:
    return decide(request, principal, action_id, "approve", None)


@router.post(
    "/api/v1/responses/{action_id}/reject",
    tags=["responses"],
    summary="Reject a pending response with a reason (responder); 409 when it is no longer pending",
)
def reject(
    request: Request,
    action_id: int,
    principal: Annotated[Principal, Depends(responder)],
    # Optional at the HTTP level so an unauthenticated call gets 401, not a body error.
    body: Annotated[dict[str, Any] | None, Body(examples=[{"reason": "project being restored"}])] = None,
) -> dict[str, Any]:
    reason = body.get("reason") if isinstance(body, dict) else None
    if reason is not None and not isinstance(reason, str):
        raise HTTPException(400, "reason must be text")
    return decide(request, principal, action_id, "reject", reason)


# -- pages ---------------------------------------------------------------------------------------


@router.get("/responses", include_in_schema=False)
def responses_page(request: Request, principal: Annotated[Principal, Depends(viewer)]) -> Response:
    desk = request.app.state.services.approvals
    return render(request, "responses.html", items=desk(), history=desk.history())


@router.post("/responses/{action_id}/{decision}", include_in_schema=False)
def response_form(
    request: Request,
    action_id: int,
    decision: str,
    principal: Annotated[Principal, Depends(responder)],
    reason: Annotated[str, Form(max_length=MAX_REASON)] = "",
) -> Response:
    if decision not in DECISIONS:
        raise HTTPException(404, "unknown decision")
    decide(request, principal, action_id, decision, reason)
    return RedirectResponse("/responses", status_code=303)
