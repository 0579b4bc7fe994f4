"""The search page's live tail as Server-Sent Events: ``GET /search/stream?q=...&after=SEQ``
sends, as they are stored, the events matching the query (and the time window) as rows of
the results table, one ``rows`` event per batch whose ``id`` is the newest seq in it.

The store may be written by another process (``stackwatch serve``): the stream looks at the
store's committed size every ``CHECK_SECONDS`` (one indexed read) and runs the search only
when it grew. Bounded: one connection lives at most ``STREAM_SECONDS`` and a process serves at
most ``MAX_STREAMS`` at once (503 past that); a batch holds at most ``TAIL_MAX`` events (a
burst beyond that in one check shows its first ``TAIL_MAX``). The browser's EventSource
reconnects by itself after ``RETRY_MS``, sending ``Last-Event-ID`` (the last seq it got),
from which the stream resumes; a comment line every ``KEEPALIVE_SECONDS`` keeps proxies from
closing an idle stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from stackwatch.api.auth import Principal, viewer
from stackwatch.api.routes.search import TAIL_MAX, Links, QueryText, query_text, syntax_error
from stackwatch.search.query import QuerySyntaxError, parse
from stackwatch.search.run import run_search
from stackwatch.web.render import render
from stackwatch.web.timerange import time_window

router = APIRouter()
STREAM_SECONDS: Final = 300.0
CHECK_SECONDS: Final = 0.5
KEEPALIVE_SECONDS: Final = 15.0
MAX_STREAMS: Final = 32
RETRY_MS: Final = 2000


@router.get("/search/stream", include_in_schema=False)
async def search_stream(
    request: Request,
    principal: Annotated[Principal, Depends(viewer)],
    q: QueryText = "",
    after: Annotated[int, Query(ge=0, description="stream the events stored after this seq")] = 0,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> Response:
    text = query_text(request, q)
    try:
        parse(text)
        time_window(request)
    except QuerySyntaxError as exc:
        return syntax_error(exc)
    if last_event_id is not None:
        if not last_event_id.isdigit():
            raise HTTPException(400, "Last-Event-ID is the seq of the last event received")
        after = int(last_event_id)
    state = request.app.state
    if getattr(state, "live_streams", 0) >= MAX_STREAMS:
        raise HTTPException(503, "too many live tails open: try again later")
    state.live_streams = getattr(state, "live_streams", 0) + 1
    return StreamingResponse(_events(request, text, after), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _events(request: Request, text: str, after: int) -> AsyncIterator[str]:
    store = request.app.state.services.store
    started = last_sent = time.monotonic()
    seen = after
    try:
        yield f"retry: {RETRY_MS}\n\n"
        while time.monotonic() - started < STREAM_SECONDS and not await request.is_disconnected():
            size = await run_in_threadpool(lambda: store.size)
            if size > seen:
                now = datetime.now(UTC)
                window = time_window(request, now)
                found = await run_in_threadpool(
                    run_search, store, text, since=window.since, until=window.until, now=now,
                    limit=TAIL_MAX, after_seq=seen, newest_first=False)
                if found.events:
                    seen = store.tail_cursor(found.events, seen)  # the newest seq, or commit position
                    body = render(request, "search_rows.html", events=found.events[::-1],
                                  links=Links(None, window), fresh=True, after=seen).body
                    rows = bytes(body).decode()
                    data = "".join(f"data: {line}\n" for line in rows.splitlines() or [""])
                    yield f"event: rows\nid: {seen}\n{data}\n"
                    last_sent = time.monotonic()
                else:
                    seen = max(seen, size)  # nothing new matches up to here
            if time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
                yield ": keepalive\n\n"
                last_sent = time.monotonic()
            await asyncio.sleep(CHECK_SECONDS)
    finally:
        request.app.state.live_streams -= 1
