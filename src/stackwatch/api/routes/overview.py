"""The overview page: open alerts by severity and category, silent sources, ingest rate
over time, integrity badge."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from stackwatch.api.auth import Principal, reader
from stackwatch.api.routes.sources import health_rows
from stackwatch.api.scoped import operator_store_of, scope_of, store_of
from stackwatch.api.stats import histogram, newest_event_time
from stackwatch.core.alert import ALERT_SEVERITIES
from stackwatch.store.base import ALERT_STATUSES, AlertQuery, EventQuery, StoreCounts, StoredAlert
from stackwatch.web.charts import hbars, time_bars
from stackwatch.web.render import render
from stackwatch.web.timerange import display_zone

router = APIRouter()
SPAN = timedelta(hours=24)
MAX_OPEN = 10_000


def open_alerts(request: Request) -> list[StoredAlert]:
    return list(store_of(request).alerts(AlertQuery(status="open", with_evidence=False, limit=MAX_OPEN)))


def store_counts(request: Request) -> StoreCounts:
    """The store's counts; a tenant's: its project's events and alerts (no index backlog)."""
    if scope_of(request) is None:
        return operator_store_of(request).counts()  # not a tenant's: the whole store's
    store = store_of(request)
    by_status = {s: store.count_alerts(AlertQuery(status=s)) for s in ALERT_STATUSES}
    return StoreCounts(store.count_events(EventQuery()), sum(by_status.values()), by_status, 0)


@router.get("/api/v1/overview", tags=["overview"], summary="Counts behind the overview page")
def overview(request: Request, principal: Annotated[Principal, Depends(reader)]) -> dict[str, Any]:
    services = request.app.state.services
    alerts = open_alerts(request)
    counts = store_counts(request)
    infrastructure = not principal.tenant  # sources and the store's integrity are not a tenant's
    return {
        "events": counts.events,
        "alerts_by_status": counts.alerts_by_status,
        "open_by_severity": dict(Counter(a.alert.severity for a in alerts)),
        "open_by_category": dict(Counter(a.alert.category for a in alerts)),
        "silent_sources": [f"{h.host}/{h.service}" for h in health_rows(request) if h.silent]
        if infrastructure else [],
        "integrity": services.integrity.report().state if infrastructure else None,
    }


@router.get("/", include_in_schema=False)
def overview_page(request: Request, principal: Annotated[Principal, Depends(reader)]) -> Response:
    services = request.app.state.services
    store = store_of(request)
    alerts = open_alerts(request)
    by_severity = Counter(a.alert.severity for a in alerts)
    by_category = Counter(a.alert.category for a in alerts)
    now = newest_event_time(store.source_stats())
    chart = None
    if now is not None:
        oldest = min(s.first_seen for s in store.source_stats() if s.first_seen <= now)
        since = max(now - SPAN, oldest)
        hist = histogram(store, since, now + timedelta(seconds=1), max_buckets=48)
        chart = time_bars(
            hist.times,
            [("events", "c-total", hist.total)],
            step=hist.step,
            title=f"events per {hist.step // 60} min",
            zone=display_zone(request),
        )
    category_chart = (
        hbars([(c, n, False) for c, n in by_category.most_common(12)], title="open alerts by category")
        if by_category
        else None
    )
    return render(
        request,
        "overview.html",
        severities=[(s, by_severity.get(s, 0)) for s in reversed(ALERT_SEVERITIES)],
        category_chart=category_chart,
        total_open=len(alerts),
        counts=store_counts(request),
        silent=[] if principal.tenant else [h for h in health_rows(request) if h.silent],
        chart=chart,
        recent=alerts[:10],
        integrity=None if principal.tenant else services.integrity.report(),
        tenant=principal.tenant,
    )
