"""Sources (host + service) and their health: last seen, rate, silent, expected; filtered by
text and grouped by host or service on the page."""

from __future__ import annotations

from datetime import timedelta
from itertools import groupby
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from stackwatch.api.auth import Principal, viewer
from stackwatch.api.scoped import store_of
from stackwatch.api.stats import SourceHealth, histogram, newest_event_time, source_health
from stackwatch.store.base import AlertQuery
from stackwatch.web.charts import sparkline
from stackwatch.web.render import render

router = APIRouter()
SPARK_SPAN = timedelta(hours=24)
GROUPS: Final = ("host", "service")
Filter = Annotated[str, Query(max_length=256, description="only sources whose host or service contains it")]
Group = Annotated[str, Query(pattern="^(|host|service)$")]


def matching(rows: list[SourceHealth], text: str) -> list[SourceHealth]:
    """Sources whose host or service contains every word of ``text`` (case-insensitive)."""
    words = text.lower().split()
    return [h for h in rows if all(w in f"{h.host} {h.service}".lower() for w in words)]


def grouped(rows: list[SourceHealth], by: str) -> list[tuple[str, list[SourceHealth]]]:
    """``rows`` in groups of one host (or service), silent sources first within each group;
    one unnamed group when ``by`` is empty."""
    if by not in GROUPS:
        return [("", rows)]
    other = "service" if by == "host" else "host"
    ordered = sorted(rows, key=lambda h: (getattr(h, by), not h.silent, getattr(h, other)))
    return [(name, list(items)) for name, items in groupby(ordered, key=lambda h: getattr(h, by))]


def health_rows(request: Request) -> list[SourceHealth]:
    settings = request.app.state.settings
    stats = store_of(request).source_stats()
    silenced = {
        (a.alert.host or "", a.alert.service or "")
        for a in store_of(request).alerts(
            AlertQuery(status="open", category="logging.silence", with_evidence=False, limit=1000)
        )
    }
    return source_health(
        stats, silent_after=settings.silent_after, expected=settings.expected_sources, silenced=silenced
    )


def _row(h: SourceHealth) -> dict[str, Any]:
    return {
        "host": h.host,
        "service": h.service,
        "count": h.count,
        "first_seen": h.first_seen.isoformat() if h.first_seen else None,
        "last_seen": h.last_seen.isoformat() if h.last_seen else None,
        "per_hour": h.per_hour,
        "silent": h.silent,
        "expected": h.expected,
        "silent_for_seconds": h.silent_for,
    }


@router.get("/api/v1/sources", tags=["sources"], summary="Every source with its health")
def list_sources(
    request: Request, principal: Annotated[Principal, Depends(viewer)], q: Filter = ""
) -> dict[str, Any]:
    return {"sources": [_row(h) for h in matching(health_rows(request), q)]}


@router.get("/sources", include_in_schema=False)
def sources_page(
    request: Request, principal: Annotated[Principal, Depends(viewer)], q: Filter = "", group: Group = ""
) -> Response:
    store = store_of(request)
    rows = matching(health_rows(request), q)
    now = newest_event_time(store.source_stats())
    sparks = {}
    if now is not None:
        hist = histogram(store, now - SPARK_SPAN, now + timedelta(seconds=1), max_buckets=48)
        sparks = {
            key: sparkline(values, title=f"{key[0]} {key[1]} events per {hist.step // 60} min")
            for key, values in hist.by_source.items()
        }
    rows.sort(key=lambda h: (not (h.silent and h.expected), not h.silent, h.host, h.service))
    return render(request, "sources.html", groups=grouped(rows, group), sparks=sparks, q=q, group=group,
                  total=len(rows))
