"""Alerts: list, filter, sort and page (with the total), one alert with its evidence (parsed
fields, raw lines, the search that finds every event) and history; acknowledge / resolve /
reopen / comment / assign, one alert or many at once (responder role; each change recorded
as an audit event)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from stackwatch.api.audit import audit_event
from stackwatch.api.auth import Principal, client_ip, reader, responder
from stackwatch.api.evidence import evidence_fields, search_link
from stackwatch.api.params import opt, parse_time, store_now
from stackwatch.api.scoped import operator_store_of, store_of
from stackwatch.api.serialize import alert_dict
from stackwatch.core.alert import ALERT_SEVERITIES, CATEGORIES
from stackwatch.core.event import Event
from stackwatch.store.base import ALERT_SORTS, ALERT_STATUSES, AlertQuery, NotFoundError, StoredAlert
from stackwatch.web.render import render
from stackwatch.web.timerange import page_bounds

router = APIRouter()
MAX_COMMENT = 2000
MAX_BULK = 500  # alerts one bulk request may change
MAX_NAME = 128  # longest assignee name
PAGE_SIZE = 50
ACTIONS = {"acknowledge": "acknowledged", "resolve": "resolved", "reopen": "open", "comment": None}
BULK_ACTIONS = ("acknowledge", "resolve", "reopen", "assign")
MINE = "me"
"""``assignee=me``: the caller's own alerts."""
Sort = Annotated[str, Query(pattern=f"^({'|'.join(ALERT_SORTS)})$")]
Order = Annotated[str, Query(pattern="^(asc|desc)$")]
Name = Annotated[str | None, Query(max_length=MAX_NAME)]


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
    *,
    assignee: str | None = None,
    sort: str = "time",
    order: str = "desc",
) -> AlertQuery:
    store = store_of(request)
    now = store_now(store) if (since or until) else None
    if status and status not in ALERT_STATUSES:
        raise HTTPException(400, f"status must be one of {', '.join(ALERT_STATUSES)}")
    assignee = opt(assignee)
    if assignee == MINE:
        assignee = request.state.principal.name
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
        assignee=assignee,
        with_evidence=evidence,
        limit=limit,
        offset=offset,
        sort=sort,
        descending=order == "desc",
    )


@router.get("/api/v1/alerts", tags=["alerts"], summary="List alerts (newest first unless sorted)")
def list_alerts(
    request: Request,
    principal: Annotated[Principal, Depends(reader)],
    status: str | None = None,
    category: str | None = None,
    severity: str | None = None,
    host: str | None = None,
    ip: str | None = None,
    user: str | None = None,
    rule: str | None = None,
    since: str | None = None,
    until: str | None = None,
    assignee: Name = None,
    sort: Sort = "time",
    order: Order = "desc",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> dict[str, Any]:
    """``assignee=me`` lists the caller's own alerts; ``total`` counts every match."""
    query = _query(
        request, status, category, severity, host, ip, user, rule, since, until, limit, offset, False,
        assignee=assignee, sort=sort, order=order,
    )
    store = store_of(request)
    return {
        "alerts": [alert_dict(a, evidence=False) for a in store.alerts(query)],
        "total": store.count_alerts(query),
        "limit": limit,
        "offset": offset,
    }


def _get(request: Request, alert_id: int) -> StoredAlert:
    found = store_of(request).get_alert(alert_id)
    if found is None:
        raise HTTPException(404, f"no alert {alert_id}")
    return found


@router.get("/api/v1/alerts/{alert_id}", tags=["alerts"], summary="One alert with evidence and history")
def get_alert(
    request: Request, alert_id: int, principal: Annotated[Principal, Depends(reader)]
) -> dict[str, Any]:
    return alert_dict(_get(request, alert_id))


def change_alert(
    request: Request, principal: Principal, alert_id: int, action: str, comment: str | None
) -> StoredAlert:
    """Apply ``action`` (acknowledge, resolve, reopen, comment) and record it in the audit trail."""
    if action == "comment" and not (comment or "").strip():
        raise HTTPException(400, "a comment needs text")
    changed = change_alerts(request, principal, [alert_id], action, comment)
    if not changed:
        raise HTTPException(404, f"no alert {alert_id}")
    return changed[0]


def change_alerts(
    request: Request, principal: Principal, alert_ids: list[int], action: str, comment: str | None
) -> list[StoredAlert]:
    """Apply ``action`` to every alert in ``alert_ids`` that exists, in one store transaction,
    and record one audit event per alert changed. A comment alone keeps each status."""
    services = request.app.state.services
    comment = (comment or "").strip()[:MAX_COMMENT] or None
    store = operator_store_of(request)
    status = ACTIONS[action]
    if status is None:
        changed = []
        for alert_id in alert_ids:  # each keeps its own status
            current = store.get_alert(alert_id)
            if current is not None:
                changed.append(store.set_alert_status(alert_id, current.alert.status, actor=principal.name,
                                                      comment=comment))
    else:
        changed = store.set_alerts_status(alert_ids, status, actor=principal.name, comment=comment)
    services.audit.record_all([_audit(request, principal, f"alert.{action}", a, {
        "status": a.alert.status, **({"comment": comment} if comment else {})}) for a in changed])
    return changed


def assign_alerts(request: Request, principal: Principal, alert_ids: list[int],
                  assignee: str | None) -> list[StoredAlert]:
    """Set (or, with None, clear) the assignee of each alert that exists; audited."""
    services = request.app.state.services
    assignee = opt(assignee)
    if assignee == MINE:
        assignee = principal.name
    if assignee is not None and len(assignee) > MAX_NAME:
        raise HTTPException(400, f"assignee: at most {MAX_NAME} characters")
    changed = []
    store = operator_store_of(request)
    for alert_id in alert_ids:
        try:
            changed.append(store.set_alert_assignee(alert_id, assignee, actor=principal.name))
        except NotFoundError:
            continue
    services.audit.record_all([_audit(request, principal, "alert.assign", a, {"assignee": assignee})
                               for a in changed])
    return changed


def _audit(request: Request, principal: Principal, action: str, changed: StoredAlert,
           attrs: dict[str, Any]) -> Event:
    verbs = {"alert.comment": "commented on", "alert.assign": "assigned"}
    verb = verbs.get(action, action.split(".")[1] + "d")
    return audit_event(
        action,
        actor=principal.name,
        source_ip=client_ip(request),
        target_type="alert",
        target_id=str(changed.id),
        target_name=changed.alert.title,
        message=f"{principal.name} {verb} alert {changed.id} ({changed.alert.title})",
        attrs=attrs,
    )


def _bulk(request: Request, principal: Principal, ids: list[int], action: str,
          comment: str | None, assignee: str | None) -> list[StoredAlert]:
    if action not in BULK_ACTIONS:
        raise HTTPException(400, f"action must be one of {', '.join(BULK_ACTIONS)}")
    if not ids:
        raise HTTPException(400, "select at least one alert")
    if len(ids) > MAX_BULK:
        raise HTTPException(400, f"at most {MAX_BULK} alerts at once")
    ids = list(dict.fromkeys(ids))
    if action == "assign":
        return assign_alerts(request, principal, ids, assignee)
    return change_alerts(request, principal, ids, action, comment)


@router.post("/api/v1/alerts/bulk", tags=["alerts"],
             summary="Acknowledge, resolve, reopen or assign many alerts at once (responder)")
def post_bulk(
    request: Request,
    principal: Annotated[Principal, Depends(responder)],
    body: Annotated[dict[str, Any], Body(examples=[{"ids": [3, 4], "action": "acknowledge",
                                                    "comment": "known scan"}])],
) -> dict[str, Any]:
    """``{"ids": [...], "action": "acknowledge|resolve|reopen|assign", "comment": "...",
    "assignee": "name" | "me" | null}``. Unknown ids are skipped and listed in ``missing``."""
    ids = body.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise HTTPException(400, "ids must be a list of alert ids")
    action, comment, assignee = body.get("action"), body.get("comment"), body.get("assignee")
    if not isinstance(action, str):
        raise HTTPException(400, "action must be text")
    if comment is not None and not isinstance(comment, str):
        raise HTTPException(400, "comment must be text")
    if assignee is not None and not isinstance(assignee, str):
        raise HTTPException(400, "assignee must be text or null")
    changed = _bulk(request, principal, ids, action, comment, assignee)
    done = {a.id for a in changed}
    return {"changed": [alert_dict(a, evidence=False) for a in changed],
            "missing": [i for i in dict.fromkeys(ids) if i not in done]}


@router.post("/api/v1/alerts/{alert_id}/assign", tags=["alerts"],
             summary="Assign an alert (responder); assignee null clears it")
def post_assign(
    request: Request,
    alert_id: int,
    principal: Annotated[Principal, Depends(responder)],
    body: Annotated[dict[str, Any], Body(examples=[{"assignee": "alice"}])],
) -> dict[str, Any]:
    assignee = body.get("assignee")
    if assignee is not None and not isinstance(assignee, str):
        raise HTTPException(400, "assignee must be text or null")
    changed = assign_alerts(request, principal, [alert_id], assignee)
    if not changed:
        raise HTTPException(404, f"no alert {alert_id}")
    return alert_dict(changed[0])


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
    principal: Annotated[Principal, Depends(reader)],
    status: str | None = "open",
    category: str | None = None,
    severity: str | None = None,
    host: str | None = None,
    ip: str | None = None,
    user: str | None = None,
    since: str | None = None,
    assignee: Name = None,
    sort: Sort = "time",
    order: Order = "desc",
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> Response:
    limit = PAGE_SIZE
    since_bound, until_bound = page_bounds(request, since, None)
    query = _query(
        request, status, category, severity, host, ip, user, None, since_bound, until_bound, limit, offset,
        False, assignee=assignee, sort=sort, order=order,
    )
    store = store_of(request)
    found = store.alerts(query)
    total = store.count_alerts(query)
    filters = {
        "status": status or "",
        "category": category or "",
        "severity": severity or "",
        "host": host or "",
        "ip": ip or "",
        "user": user or "",
        "since": since or "",
        "assignee": assignee or "",
    }
    template = "alerts_table.html" if request.headers.get("hx-request") else "alerts.html"
    return render(
        request,
        template,
        alerts=found,
        total=total,
        more=offset + len(found) < total,
        offset=offset,
        limit=limit,
        filters=filters,
        sort=sort,
        order=order,
        sorts=ALERT_SORTS,
        statuses=ALERT_STATUSES,
        severities=ALERT_SEVERITIES,
        categories=CATEGORIES,
        active_silences=sum(1 for s in store.silences() if s.active(datetime.now(UTC))),
    )


@router.post("/alerts/bulk", include_in_schema=False)
def bulk_form(
    request: Request,
    principal: Annotated[Principal, Depends(responder)],
    ids: Annotated[list[int], Form(max_length=MAX_BULK)] = [],  # noqa: B006 - FastAPI copies defaults
    action: Annotated[str, Form(max_length=32)] = "",
    comment: Annotated[str, Form(max_length=MAX_COMMENT)] = "",
    assignee: Annotated[str, Form(max_length=MAX_NAME)] = "",
    back: Annotated[str, Form(max_length=2000)] = "/alerts",
) -> Response:
    _bulk(request, principal, ids, action, comment, assignee)
    return RedirectResponse(back if back.startswith("/alerts") else "/alerts", status_code=303)


@router.get("/alerts/{alert_id}", include_in_schema=False)
def alert_page(request: Request, alert_id: int, principal: Annotated[Principal, Depends(reader)]) -> Response:
    services = request.app.state.services
    item = _get(request, alert_id)
    rule = services.rules.get(item.alert.rule)
    silence = next((s for s in store_of(request).silences() if s.id == item.silenced_by), None)
    return render(
        request,
        "alert.html",
        item=item,
        evidence=[(ev, evidence_fields(ev)) for ev in item.alert.evidence],
        search=search_link(item.alert, rule.group_by if rule is not None else ()),
        silence=silence,
    )


@router.post("/alerts/{alert_id}/assign", include_in_schema=False)
def assign_form(
    request: Request,
    alert_id: int,
    principal: Annotated[Principal, Depends(responder)],
    assignee: Annotated[str, Form(max_length=MAX_NAME)] = "",
) -> Response:
    if not assign_alerts(request, principal, [alert_id], assignee):
        raise HTTPException(404, f"no alert {alert_id}")
    return RedirectResponse(f"/alerts/{alert_id}", status_code=303)


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
