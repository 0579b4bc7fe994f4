"""Activity: the everyday actions of administrators, projects and instances, from CADF
audit events (keystone ``identity.*``, keystonemiddleware ``audit.http.*``) and OpenStack
notifications: who did what to which resource, when, with what outcome."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from stackwatch.api.auth import Principal, reader
from stackwatch.api.params import opt, parse_time, store_now
from stackwatch.api.scoped import store_of
from stackwatch.store.base import MAX_LIMIT, EventQuery, StoredEvent
from stackwatch.web.render import render
from stackwatch.web.timerange import page_bounds

router = APIRouter()
KINDS: Final = ("cadf", "notification", "stackwatch_audit")
SCAN_LIMIT: Final = 50_000  # events examined per request when filtering by resource
Text = Annotated[str | None, Query(max_length=256)]


def _stream(request: Request, kind: str, base: dict[str, Any], first: int) -> Iterator[StoredEvent]:
    """Events of one kind, newest first, read in pages that start at ``first`` (what the
    caller expects to need: a page of the activity list reads no more) and double up to 1000."""
    store = store_of(request)
    offset = 0
    size = max(1, min(first, 1000))
    while offset < SCAN_LIMIT:
        page = store.search_events(EventQuery(kind=kind, limit=min(MAX_LIMIT, size), offset=offset, **base))
        yield from page
        if len(page) < size:
            return
        offset += len(page)
        size = min(size * 2, 1000)


def _matches_resource(stored: StoredEvent, resource: str) -> bool:
    t = stored.event.target
    needle = resource.lower()
    return any(needle in (v or "").lower() for v in (t.type, t.id, t.name))


class ActivityFilter:
    """The activity filters, declared once for the API route and the page (FastAPI reads
    them from the query string through ``Depends``)."""

    def __init__(self, user: Text = None, project: Text = None, action: Text = None,
                 resource: Text = None, outcome: Text = None, since: Text = None,
                 until: Text = None) -> None:
        self.user, self.project, self.action, self.resource = user, project, action, resource
        self.outcome, self.since, self.until = outcome, since, until

    def form(self) -> dict[str, str]:
        """The filters as the page's form values ('' for unset)."""
        return {name: getattr(self, name) or "" for name in
                ("user", "project", "action", "resource", "outcome", "since", "until")}


def find_activity(request: Request, filters: ActivityFilter, *, limit: int, offset: int) -> list[StoredEvent]:
    """Audit events of both kinds, newest first, filtered; ``resource`` matches the target's
    type, id or name (substring, case-insensitive)."""
    since, until, resource = filters.since, filters.until, filters.resource
    now = store_now(store_of(request)) if (since or until) else None
    base = {
        "user": opt(filters.user),
        "project": opt(filters.project),
        "action": opt(filters.action),
        "outcome": opt(filters.outcome),
        "since": parse_time(since, now, name="since"),
        "until": parse_time(until, now, name="until"),
    }
    merged = heapq.merge(
        *(_stream(request, kind, base, offset + limit) for kind in KINDS),
        key=lambda s: (s.event.time, s.seq),
        reverse=True,
    )
    out: list[StoredEvent] = []
    skipped = 0
    for stored in merged:
        if resource and not _matches_resource(stored, resource):
            continue
        if skipped < offset:
            skipped += 1
            continue
        out.append(stored)
        if len(out) >= limit:
            break
    return out


def activity_row(stored: StoredEvent) -> dict[str, Any]:
    e = stored.event
    return {
        "seq": stored.seq,
        "time": e.time.isoformat(),
        "host": e.host,
        "service": e.service,
        "user": e.initiator.name or e.initiator.id,
        "project": e.initiator.project,
        "source_ip": e.initiator.source_ip,
        "action": e.action,
        "outcome": e.outcome,
        "target_type": e.target.type,
        "target_id": e.target.id,
        "target_name": e.target.name,
        "request_path": e.attrs.get("request_path"),
        "message": e.message,
    }


@router.get("/api/v1/activity", tags=["activity"], summary="Who did what to which resource")
def activity(
    request: Request,
    principal: Annotated[Principal, Depends(reader)],
    filters: Annotated[ActivityFilter, Depends()],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> dict[str, Any]:
    found = find_activity(request, filters, limit=limit, offset=offset)
    return {"activity": [activity_row(s) for s in found], "limit": limit, "offset": offset}


@router.get("/activity", include_in_schema=False)
def activity_page(
    request: Request,
    principal: Annotated[Principal, Depends(reader)],
    filters: Annotated[ActivityFilter, Depends()],
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> Response:
    limit = 50
    form = filters.form()  # what the user typed, not the window's bounds filled in below
    filters.since, filters.until = page_bounds(request, filters.since, filters.until)
    found = find_activity(request, filters, limit=limit + 1, offset=offset)
    return render(
        request,
        "activity.html",
        rows=[activity_row(s) for s in found[:limit]],
        more=len(found) > limit,
        offset=offset,
        limit=limit,
        form=form,
    )
