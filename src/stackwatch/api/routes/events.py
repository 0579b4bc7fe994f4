"""Event search: time range, host, service, category (the record kind), action, outcome,
severity, source IP, user, project, request id and free text (the store's full-text index;
words only, never query syntax). Paginated; a page holds at most ``max_page`` events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from stackwatch.api.auth import Principal, reader
from stackwatch.api.params import opt, parse_time, store_now
from stackwatch.api.scoped import store_of
from stackwatch.api.serialize import event_dict
from stackwatch.store.base import MAX_FIELD, MAX_TEXT, EventQuery, StoredEvent

router = APIRouter()
Text = Annotated[str | None, Query(max_length=MAX_FIELD)]


@dataclass(frozen=True, slots=True)
class SearchForm:
    since: str | None = None
    until: str | None = None
    host: str | None = None
    service: str | None = None
    category: str | None = None
    action: str | None = None
    outcome: str | None = None
    severity: str | None = None
    ip: str | None = None
    user: str | None = None
    project: str | None = None
    request_id: str | None = None
    q: str | None = None

    def query(self, request: Request, limit: int, offset: int) -> EventQuery:
        store = store_of(request)
        now = store_now(store) if (self.since or self.until) else None
        return EventQuery(
            since=parse_time(self.since, now, name="since"),
            until=parse_time(self.until, now, name="until"),
            host=opt(self.host),
            service=opt(self.service),
            kind=opt(self.category),
            action=opt(self.action),
            outcome=opt(self.outcome),
            severity=opt(self.severity),
            source_ip=opt(self.ip),
            user=opt(self.user),
            project=opt(self.project),
            request_id=opt(self.request_id),
            text=opt(self.q),
            limit=limit,
            offset=offset,
        )


def search_form(
    since: Text = None,
    until: Text = None,
    host: Text = None,
    service: Text = None,
    category: Annotated[
        str | None,
        Query(max_length=MAX_FIELD, description="record category (event kind): oslo_log, cadf, syslog..."),
    ] = None,
    action: Text = None,
    outcome: Text = None,
    severity: Text = None,
    ip: Annotated[str | None, Query(max_length=MAX_FIELD, description="initiator source IP")] = None,
    user: Annotated[str | None, Query(max_length=MAX_FIELD, description="initiator name or id")] = None,
    project: Text = None,
    request_id: Text = None,
    q: Annotated[
        str | None, Query(max_length=MAX_TEXT, description="free text: every word must occur")
    ] = None,
) -> SearchForm:
    return SearchForm(
        since, until, host, service, category, action, outcome, severity, ip, user, project, request_id, q
    )


def _search(request: Request, form: SearchForm, limit: int, offset: int) -> list[StoredEvent]:
    cap = request.app.state.settings.max_page
    if limit > cap:
        raise HTTPException(400, f"limit must be at most {cap}")
    return store_of(request).search_events(form.query(request, limit, offset))


@router.get("/api/v1/events", tags=["events"], summary="Search events, newest first")
def search(
    request: Request,
    principal: Annotated[Principal, Depends(reader)],
    form: Annotated[SearchForm, Depends(search_form)],
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    found = _search(request, form, limit, offset)
    return {
        "events": [event_dict(e) for e in found],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + len(found) if len(found) == limit else None,
    }


@router.get("/api/v1/events/{seq}", tags=["events"], summary="One event by sequence number")
def get_event(request: Request, seq: int, principal: Annotated[Principal, Depends(reader)]) -> dict[str, Any]:
    found = store_of(request).get_events([seq])
    if not found:
        raise HTTPException(404, f"no event {seq}")
    return event_dict(found[0])
