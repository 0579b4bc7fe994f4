"""Keystone access analytics (api/analytics.py): failed logins over time, top source IPs,
top targeted accounts (privileged marked), per-account and per-IP timelines,
classification, a view restricted to selected accounts, CSV/JSON export."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from stackwatch.api.analytics import (
    MAX_EVENTS,
    KeystoneReport,
    account_row,
    attempt_row,
    ip_row,
    keystone_report,
    report_csv,
    report_dict,
)
from stackwatch.api.auth import Principal, reader
from stackwatch.api.params import parse_time, store_now
from stackwatch.api.scoped import store_of
from stackwatch.web.charts import hbars, time_bars
from stackwatch.web.render import render
from stackwatch.web.timerange import display_zone, page_bounds

router = APIRouter()
Span = Annotated[
    str | None, Query(max_length=64, description="ISO 8601 or a span back from the newest event (24h, 7d)")
]
Accounts = Annotated[
    str | None, Query(max_length=2000, description="comma-separated accounts: restrict the report to them")
]


def _report(request: Request, since: str | None, until: str | None, accounts: str | None,
            max_events: int = MAX_EVENTS) -> KeystoneReport:
    settings = request.app.state.settings
    store = store_of(request)  # a tenant's report: the keystone events about its project only
    now = store_now(store)
    wanted = [a for a in re.split(r"[,\s]+", accounts or "") if a][:100] or None
    return keystone_report(
        store,
        since=parse_time(since, now, name="since"),
        until=parse_time(until, now, name="until"),
        accounts=wanted,
        privileged=settings.privileged_accounts,
        max_events=max_events,
    )


@router.get("/api/v1/keystone", tags=["keystone"], summary="Keystone login analytics")
def summary(
    request: Request,
    principal: Annotated[Principal, Depends(reader)],
    since: Span = None,
    until: Span = None,
    accounts: Accounts = None,
) -> dict[str, Any]:
    return report_dict(_report(request, since, until, accounts))


@router.get("/api/v1/keystone/timeline", tags=["keystone"], summary="Login attempts of one IP or account")
def timeline(
    request: Request,
    principal: Annotated[Principal, Depends(reader)],
    ip: Annotated[str | None, Query(max_length=256)] = None,
    account: Annotated[str | None, Query(max_length=256)] = None,
    since: Span = None,
    until: Span = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> dict[str, Any]:
    if not ip and not account:
        raise HTTPException(400, "give ip or account")
    report = _report(request, since, until, None)
    return {
        "ip": ip,
        "account": account,
        "attempts": [attempt_row(a) for a in report.timeline(ip=ip, account=account, limit=limit)],
    }


@router.get("/api/v1/keystone/export", tags=["keystone"], summary="Export the analytics as CSV or JSON")
def export(
    request: Request,
    principal: Annotated[Principal, Depends(reader)],
    format: Annotated[str, Query(pattern="^(csv|json)$")] = "csv",
    since: Span = None,
    until: Span = None,
    accounts: Accounts = None,
) -> Response:
    report = _report(request, since, until, accounts)
    if format == "json":
        return JSONResponse(
            report_dict(report),
            headers={"Content-Disposition": 'attachment; filename="keystone-access.json"'},
        )
    return Response(
        report_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="keystone-access.csv"'},
    )


@router.get("/keystone", include_in_schema=False)
def keystone_page(
    request: Request,
    principal: Annotated[Principal, Depends(reader)],
    since: Span = None,
    until: Span = None,
    accounts: Accounts = None,
    ip: Annotated[str | None, Query(max_length=256)] = None,
    account: Annotated[str | None, Query(max_length=256)] = None,
) -> Response:
    since_bound, until_bound = page_bounds(request, since, until)
    report = _report(request, since_bound, until_bound, accounts)
    chart = time_bars(
        [b[0] for b in report.buckets],
        [
            ("failed", "c-fail", [b[1] for b in report.buckets]),
            ("succeeded", "c-ok", [b[2] for b in report.buckets]),
        ],
        step=report.bucket_seconds,
        title=f"keystone logins per {report.bucket_seconds // 60} min",
        zone=display_zone(request),
    )
    ip_chart = hbars(
        [(s.ip, s.failures, bool(s.classification)) for s in report.ips[:10] if s.failures],
        title="top source IPs by failed logins",
    )
    account_chart = hbars(
        [
            (("★ " if s.privileged else "") + s.account, s.failures, s.privileged)
            for s in report.accounts[:10]
            if s.failures
        ],
        title="top targeted accounts",
    )
    selected = None
    if ip or account:
        selected = {"ip": ip, "account": account, "attempts": report.timeline(ip=ip, account=account)}
    query = {"since": since or "", "until": until or "", "accounts": accounts or ""}
    return render(
        request,
        "keystone.html",
        report=report,
        chart=chart,
        ip_chart=ip_chart,
        account_chart=account_chart,
        ips=[ip_row(s) for s in report.ips if s.failures][:50],
        accounts_rows=[account_row(s) for s in report.accounts[:50]],
        selected=selected,
        query=query,
    )
