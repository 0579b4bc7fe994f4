"""Cloud usage per project (api/usage.py): creations over time by resource type, the inventory
the resource ledger keeps, top movers against their own earlier rate, one project's timeline."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from stackwatch.api.auth import Principal, viewer
from stackwatch.api.params import parse_time, store_now
from stackwatch.api.usage import MAX_EVENTS, PAGE_EVENTS, TYPES, UsageReport, report_dict, usage_report
from stackwatch.web.charts import hbars, sparkline, time_bars
from stackwatch.web.render import render
from stackwatch.web.timerange import page_bounds

router = APIRouter()
Span = Annotated[
    str | None, Query(max_length=64, description="ISO 8601 or a span back from the newest event (24h, 7d)")
]
Project = Annotated[str | None, Query(max_length=256, description="a project id: its timeline")]
CSS: dict[str, str] = {"instance": "c-t0", "volume": "c-t1", "snapshot": "c-t2", "image": "c-t3",
                       "floatingip": "c-t4", "port": "c-t5"}


def _report(request: Request, since: str | None, until: str | None, max_events: int) -> UsageReport:
    store = request.app.state.services.store
    now = store_now(store)
    return usage_report(store, since=parse_time(since, now, name="since"),
                        until=parse_time(until, now, name="until"), max_events=max_events)


@router.get("/api/v1/usage", tags=["usage"], summary="Resource creations and inventory per project")
def usage(
    request: Request,
    principal: Annotated[Principal, Depends(viewer)],
    since: Span = None,
    until: Span = None,
    project: Project = None,
) -> dict[str, Any]:
    report = _report(request, since, until, MAX_EVENTS)
    out = report_dict(report)
    if project:
        found = report.project(project)
        out["project"] = {"project": project, "created": found.by_type if found else {}}
    return out


def _short(project: str) -> str:
    """A project id short enough for a chart label (the table beside it has the full id)."""
    return project if len(project) <= 14 else project[:12] + "…"


def _series(values: dict[str, list[int]]) -> list[tuple[str, str, list[int]]]:
    return [(kind, CSS[kind], values[kind]) for kind in TYPES if any(values.get(kind) or ())]


@router.get("/usage", include_in_schema=False)
def usage_page(
    request: Request,
    principal: Annotated[Principal, Depends(viewer)],
    since: Span = None,
    until: Span = None,
    project: Project = None,
) -> Response:
    since_bound, until_bound = page_bounds(request, since, until)
    report = _report(request, since_bound, until_bound, PAGE_EVENTS)
    step = report.step
    unit = f"{step // 3600} h" if step >= 3600 else f"{step // 60} min"
    chart = time_bars(report.times, _series(report.totals), step=step,
                      title=f"resources created per {unit}, every project")
    movers_chart = hbars([(_short(p.project), p.recent, bool(p.alerts)) for p in report.movers],
                         title="top movers: creations in the last quarter of the range")
    sparks = {p.project: sparkline(p.buckets, title=f"{p.project}: creations per {unit}")
              for p in report.projects[:100]}
    selected = report.project(project) if project else None
    selected_chart = (time_bars(report.times, _series(selected.by_type), step=step,
                                title=f"{selected.project}: resources created per {unit}")
                      if selected is not None else None)
    return render(request, "usage.html", report=report, chart=chart, movers_chart=movers_chart, sparks=sparks,
                  selected=selected, selected_chart=selected_chart, wanted=project, types=TYPES,
                  query={"since": since or "", "until": until or ""})
