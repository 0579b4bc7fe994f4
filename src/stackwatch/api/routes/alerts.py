"""Alerts: list and filter, one alert with its evidence (raw lines) and history,
acknowledge / resolve / comment (responder role; each one recorded as an audit event)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from stackwatch.api.audit import audit_event
from stackwatch.api.auth import Principal, client_ip, responder, viewer
from stackwatch.api.params import opt, parse_time, store_now
from stackwatch.api.serialize import alert_dict
from stackwatch.core.alert import ALERT_SEVERITIES, CATEGORIES
from stackwatch.store.base import ALERT_STATUSES, AlertQuery, NotFoundError, StoredAlert
from stackwatch.web.render import render

router = APIRouter()
MAX_COMMENT = 2000
ACTIONS = {"acknowledge": "acknowledged", "resolve": "resolved", "reopen": "open", "comment": None}


def _query(
    request: Request,
    status: str | None,
    category: str | None,
    severity: str | None,
    host: str | None,
    ip: str | None,
    user: str | None,
    rule: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    offset: int,
    evidence: bool,
) -> AlertQuery:
    store = request.app.state.services.store
    now = store_now(store) if (since or until) else None
    if status and status not in ALERT_STATUSES:
        raise HTTPException(400, f"status must be one of {', '.join(ALERT_STATUSES)}")
    return AlertQuery(
        status=opt(status),
        category=opt(category),
        severity=opt(severity),
        host=opt(host),
        source_ip=opt(ip),
        user=opt(user),
        rule=opt(rule),
        since=parse_time(since, now, name="since"),
        until=parse_time(until, now, name="until"),
        with_evidence=evidence,
        limit=limit,
        offset=offset,
    )


@router.get("/api/v1/alerts", tags=["alerts"], summary="List alerts, newest first")
def list_alerts(
    request: Request,
    principal: Annotated[Principal, Depends(viewer)],
    status: str | None = None,
    category: str | None = None,
    severity: str | None = None,
    host: str | None = None,
    ip: str | None = None,
    user: str | None = None,
    rule: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> dict[str, Any]:
    query = _query(
        request, status, category, severity, host, ip, user, rule, since, until, limit, offset, False
    )
    found = request.app.state.services.store.alerts(query)
    return {"alerts": [alert_dict(a, evidence=False) for a in found], "limit": limit, "offset": offset}


def _get(request: Request, alert_id: int) -> StoredAlert:
    found = request.app.state.services.store.get_alert(alert_id)
    if found is None:
        raise HTTPException(404, f"no alert {alert_id}")
    return found


@router.get("/api/v1/alerts/{alert_id}", tags=["alerts"], summary="One alert with evidence and history")
def get_alert(
    request: Request, alert_id: int, principal: Annotated[Principal, Depends(viewer)]
) -> dict[str, Any]:
    return alert_dict(_get(request, alert_id))


def change_alert(
    request: Request, principal: Principal, alert_id: int, action: str, comment: str | None
) -> StoredAlert:
    """Apply ``action`` (acknowledge, resolve, reopen, comment) and record it in the audit trail."""
    services = request.app.state.services
    comment = (comment or "").strip()[:MAX_COMMENT] or None
    if action == "comment" and not comment:
        raise HTTPException(400, "a comment needs text")
    current = _get(request, alert_id)
    status = ACTIONS[action] or current.alert.status
    try:
        changed = services.store.set_alert_status(alert_id, status, actor=principal.name, comment=comment)
    except NotFoundError:
        raise HTTPException(404, f"no alert {alert_id}") from None
    services.audit.record(
        audit_event(
            f"alert.{action}",
            actor=principal.name,
            source_ip=client_ip(request),
            target_type="alert",
            target_id=str(alert_id),
            target_name=current.alert.title,
            message=f"{principal.name} {action}d alert {alert_id} ({current.alert.title})"
            if action != "comment"
            else f"{principal.name} commented on alert {alert_id}",
            attrs={"status": status, **({"comment": comment} if comment else {})},
        )
    )
    return changed


@router.post(
    "/api/v1/alerts/{alert_id}/{action}",
    tags=["alerts"],
    summary="Acknowledge, resolve, reopen or comment on an alert (responder)",
)
def post_change(
    request: Request,
    alert_id: int,
    action: str,
    principal: Annotated[Principal, Depends(responder)],
    body: Annotated[dict[str, Any] | None, Body(examples=[{"comment": "looking into it"}])] = None,
) -> dict[str, Any]:
    if action not in ACTIONS:
        raise HTTPException(404, f"unknown action {action!r} (acknowledge, resolve, reopen, comment)")
    comment = body.get("comment") if isinstance(body, dict) else None
    if comment is not None and not isinstance(comment, str):
        raise HTTPException(400, "comment must be text")
    return alert_dict(change_alert(request, principal, alert_id, action, comment))


# -- pages ---------------------------------------------------------------------------------------


@router.get("/alerts", include_in_schema=False)
def alerts_page(
    request: Request,
    principal: Annotated[Principal, Depends(viewer)],
    status: str | None = "open",
    category: str | None = None,
    severity: str | None = None,
    host: str | None = None,
    ip: str | None = None,
    user: str | None = None,
    since: str | None = None,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> Response:
    limit = 50
    query = _query(
        request, status, category, severity, host, ip, user, None, since, None, limit + 1, offset, False
    )
    found = request.app.state.services.store.alerts(query)
    filters = {
        "status": status or "",
        "category": category or "",
        "severity": severity or "",
        "host": host or "",
        "ip": ip or "",
        "user": user or "",
        "since": since or "",
    }
    template = "alerts_table.html" if request.headers.get("hx-request") else "alerts.html"
    return render(
        request,
        template,
        alerts=found[:limit],
        more=len(found) > limit,
        offset=offset,
        limit=limit,
        filters=filters,
        statuses=ALERT_STATUSES,
        severities=ALERT_SEVERITIES,
        categories=CATEGORIES,
    )


@router.get("/alerts/{alert_id}", include_in_schema=False)
def alert_page(request: Request, alert_id: int, principal: Annotated[Principal, Depends(viewer)]) -> Response:
    return render(request, "alert.html", item=_get(request, alert_id))


@router.post("/alerts/{alert_id}/{action}", include_in_schema=False)
def alert_form(
    request: Request,
    alert_id: int,
    action: str,
    principal: Annotated[Principal, Depends(responder)],
    comment: Annotated[str, Form(max_length=MAX_COMMENT)] = "",
) -> Response:
    if action not in ACTIONS:
        raise HTTPException(404, "unknown action")
    change_alert(request, principal, alert_id, action, comment)
    return RedirectResponse(f"/alerts/{alert_id}", status_code=303)
