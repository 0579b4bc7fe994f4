"""Search in the query language (docs/search.md): the API (``/api/v1/search``), the
dashboard's search page with its histogram, field sidebar and pivots, the live tail's
polling fallback (the stream is routes/live.py), and a request id's path across services."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from stackwatch.api.auth import Principal, reader
from stackwatch.api.scoped import store_of
from stackwatch.api.serialize import event_dict
from stackwatch.search.query import MAX_QUERY, And, Match, Node, Not, QuerySyntaxError, term, to_text
from stackwatch.search.run import SearchResult, run_search
from stackwatch.store.base import MAX_FIELD, StoredEvent
from stackwatch.web.histogram import histogram_svg
from stackwatch.web.render import render
from stackwatch.web.timerange import TimeWindow, display_zone, time_window

router = APIRouter()
PAGE: Final = 50
TAIL_MAX: Final = 200
PATH_MAX: Final = 2000
"""Most events the request-path view shows."""
AUDIT_KINDS: Final = frozenset({"cadf", "notification"})
"""Event kinds the request-path view lists as the request's audit trail (CADF events and
the oslo.messaging notifications that carry the same request id)."""
QueryText = Annotated[str, Query(max_length=MAX_QUERY, description="a query in the search language "
                                 "(docs/search.md), e.g. user:adm* AND NOT outcome:success")]
Moment = Annotated[str | None, Query(alias="from", max_length=64,
                                     description="start: 2026-12-01, 2026-12-01T08:30, now-1h")]
_LEGACY: Final = (("host", "host"), ("service", "service"), ("category", "kind"), ("action", "action"),
                  ("outcome", "outcome"), ("severity", "severity"), ("ip", "source_ip"), ("user", "user"),
                  ("project", "project"), ("request_id", "request_id"))
"""The old search form's fields: links that still use them become terms of the query."""


def query_text(request: Request, q: str) -> str:
    terms = [term(field, value.strip()) for name, field in _LEGACY
             if (value := request.query_params.get(name, "")[:MAX_FIELD]).strip()]
    return " AND ".join([*terms, f"({q})" if terms and q.strip() else q]).strip() if terms else q


def syntax_error(exc: QuerySyntaxError) -> JSONResponse:
    return JSONResponse({"detail": str(exc), "column": exc.column}, status_code=400)


def _search(request: Request, text: str, window: TimeWindow, now: datetime, **options: Any) -> SearchResult:
    return run_search(store_of(request), text, since=window.since, until=window.until,
                      now=now, **options)


@router.get("/api/v1/search", tags=["events"], summary="Search events with the query language",
            responses={400: {"description": "the query does not parse: `detail` says where (`column`)"}})
def search_api(
    request: Request,
    principal: Annotated[Principal, Depends(reader)],
    q: QueryText = "",
    range_: Annotated[str | None, Query(alias="range", max_length=16,
                                        description="the last span before now: 15m, 1h, 24h, 7d")] = None,
    start: Moment = None,
    end: Annotated[str | None, Query(alias="to", max_length=64,
                                     description="end (a bare date: the end of that day)")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    after: Annotated[int | None, Query(
        ge=0, description="only events stored after this seq (poll with the newest seq seen)")] = None,
    histogram: Annotated[bool, Query(description="include hits per time bucket")] = False,
    fields: Annotated[bool, Query(description="include the top values of the sidebar fields")] = False,
) -> Response:
    cap = request.app.state.settings.max_page
    if limit > cap:
        raise HTTPException(400, f"limit must be at most {cap}")
    now = datetime.now(UTC)
    window = time_window(request, now)
    try:
        found = _search(request, q, window, now, limit=limit, offset=offset, after_seq=after, count=True,
                        histogram=histogram, fields=fields)
    except QuerySyntaxError as exc:
        return syntax_error(exc)
    body: dict[str, Any] = {
        "query": to_text(found.query),
        "since": window.since.isoformat() if window.since else None,
        "until": window.until.isoformat() if window.until else None,
        "total": found.total,
        "events": [event_dict(e) for e in found.events],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + len(found.events) if len(found.events) == limit else None,
        # the cursor to poll with (``after``): the newest seq, or the shared store's commit position
        "last_seq": store_of(request).tail_cursor(found.events, after),
    }
    if found.histogram is not None:
        body["histogram"] = {"start": found.histogram.start.isoformat(),
                             "step_seconds": found.histogram.step.total_seconds(),
                             "counts": list(found.histogram.counts)}
    if fields:
        body["fields"] = {name: [{"value": v, "count": n} for v, n in values]
                          for name, values in found.fields.items()}
    return JSONResponse(body)


@dataclass(frozen=True, slots=True)
class Links:
    """Query links of a results page: a pivot (a new search for one value), a refinement
    (the current query AND/AND NOT one value), each keeping the time window."""

    tree: Node | None
    window: TimeWindow

    def search(self, text: str, **extra: str) -> str:
        return "/search?" + urlencode({"q": text, **self.window.params, **extra})

    def pivot(self, field: str, value: str) -> str:
        return self.search(term(field, value))

    def refine(self, field: str, value: str, exclude: bool = False) -> str:
        match: Node = Not(Match(field, value)) if exclude else Match(field, value)
        return self.search(to_text(And((self.tree, match)) if self.tree else match))

    def window_of(self, text: str) -> Callable[[str, str], str]:
        return lambda start, end: "/search?" + urlencode({"q": text, "from": start, "to": end})


@router.get("/search", include_in_schema=False)
def search_page(
    request: Request,
    principal: Annotated[Principal, Depends(reader)],
    q: QueryText = "",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    text = query_text(request, q)
    now = datetime.now(UTC)
    window = time_window(request, now)
    zone = display_zone(request)
    try:
        found = _search(request, text, window, now, limit=PAGE + 1, offset=offset, count=True,
                        histogram=True, fields=True, estimate=True)
    except QuerySyntaxError as exc:
        return render(request, "search.html", status=400, q=text, error=exc, links=Links(None, window),
                      events=[], found=None, chart=None)
    tree = None if text.strip() in ("", "*") else found.query
    links = Links(tree, window)
    chart = (histogram_svg(found.histogram, zone, links.window_of(text))
             if found.histogram is not None else None)
    return render(request, "search.html", q=text, error=None, found=found, events=found.events[:PAGE],
                  more=len(found.events) > PAGE, offset=offset, limit=PAGE, links=links, chart=chart,
                  last_seq=store_of(request).tail_cursor(found.events, None) or 0)


@router.get("/search/tail", include_in_schema=False)
def search_tail(
    request: Request,
    principal: Annotated[Principal, Depends(reader)],
    after: Annotated[int, Query(ge=0)],
    q: QueryText = "",
) -> Response:
    """Rows (HTML) of the events stored after seq ``after`` that match: the live tail's poll."""
    now = datetime.now(UTC)
    window = time_window(request, now)
    try:
        found = _search(request, query_text(request, q), window, now, limit=TAIL_MAX, after_seq=after)
    except QuerySyntaxError as exc:
        return syntax_error(exc)
    return render(request, "search_rows.html", events=found.events, links=Links(None, window), fresh=True,
                  after=store_of(request).tail_cursor(found.events, after))


@router.get("/search/request/{request_id}", include_in_schema=False)
def request_path(
    request: Request,
    request_id: str,
    principal: Annotated[Principal, Depends(reader)],
) -> Response:
    """Everything that logged one request id, in time order: the request's path across
    services and hosts, its CADF audit events among them."""
    if not request_id or len(request_id) > MAX_FIELD:
        raise HTTPException(400, f"a request id has 1..{MAX_FIELD} characters")
    text = term("request_id", request_id)
    found = run_search(store_of(request), text, limit=PATH_MAX, newest_first=False, count=True)
    hops = _hops(found.events)
    window = time_window(request)
    return render(request, "request_path.html", request_id=request_id, found=found, events=found.events,
                  hops=hops, links=Links(None, window), query=text,
                  audit=[e for e in found.events if e.event.kind in AUDIT_KINDS])


@dataclass(slots=True)
class Hop:
    """One host and service that logged the request: when first and last, how many events."""

    host: str
    service: str
    first: datetime
    last: datetime
    count: int


def _hops(events: list[StoredEvent]) -> list[Hop]:
    hops: dict[tuple[str, str], Hop] = {}
    for stored in events:
        e = stored.event
        hop = hops.get((e.host, e.service))
        if hop is None:
            hops[(e.host, e.service)] = Hop(e.host, e.service, e.time, e.time, 1)
        else:
            hop.first, hop.last, hop.count = min(hop.first, e.time), max(hop.last, e.time), hop.count + 1
    return sorted(hops.values(), key=lambda h: h.first)
