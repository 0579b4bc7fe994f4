"""The dashboard's global time window and display zone, shared by every page.

The contract (docs/search.md, "Time window"): a page's URL may carry

- ``range=<n><unit>`` (``15m``, ``1h``, ``24h``, ``7d``; units s m h d w): the last span
  before now (the wall clock), open-ended so a live page keeps showing new events;
- ``from`` and/or ``to``: a point in time each (``2026-12-01``, ``2026-12-01T08:30``,
  ``now-1h``; naive means UTC; a bare date as ``to`` means the end of that day). Either
  one overrides ``range``.

No parameter means all time. A page honours the window by calling ``time_window(request)``
and passing ``since`` and ``until`` to its queries; the picker in the layout keeps every
other parameter, and on a page that never asked for the window it says that the page
does not filter by time.

Timestamps are shown in UTC, or in the zone named by the ``tz`` cookie (an IANA name, set
by the picker from the browser's zone), always with the zone written after the time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo

from fastapi import HTTPException, Request

from stackwatch.search.times import TimeSpecError, parse_instant, parse_span

PARAMS: Final = ("range", "from", "to")
RANGES: Final = (("15m", "Last 15 minutes"), ("1h", "Last hour"), ("24h", "Last 24 hours"),
                  ("7d", "Last 7 days"))
ZONE_COOKIE: Final = "tz"
_ZONE_NAME: Final = re.compile(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+){0,2}")


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """What the picker asked for (as typed) and what it means now."""

    range: str = ""
    start: str = ""
    end: str = ""
    since: datetime | None = None
    until: datetime | None = None

    @property
    def label(self) -> str:
        if self.start or self.end:
            return f"{self.start or 'the beginning'} → {self.end or 'now'}"
        return dict(RANGES).get(self.range, f"Last {self.range}") if self.range else "All time"

    @property
    def params(self) -> dict[str, str]:
        """The query parameters that ask for this window (for links that keep it)."""
        if self.start or self.end:
            return {k: v for k, v in (("from", self.start), ("to", self.end)) if v}
        return {"range": self.range} if self.range else {}


def time_window(request: Request, now: datetime | None = None) -> TimeWindow:
    """The window the request's ``range``/``from``/``to`` parameters ask for (400 if malformed).
    Calling it marks the page as one that honours the window (the picker says so)."""
    request.state.window_honoured = True
    query = request.query_params
    span, start, end = (query.get(name, "").strip()[:64] for name in PARAMS)
    moment = now or datetime.now(UTC)
    try:
        if start or end:
            since = parse_instant(start).resolve(moment) if start else None
            until = parse_instant(end).resolve_end(moment) if end else None
            if since is not None and until is not None and until <= since:
                raise TimeSpecError(f"'to' ({end}) must be after 'from' ({start})")
            return TimeWindow(start=start, end=end, since=since, until=until)
        if span:
            return TimeWindow(range=span, since=moment - timedelta(seconds=parse_span(span)))
    except TimeSpecError as exc:
        raise HTTPException(400, f"time window: {exc}") from None
    return TimeWindow()


def display_zone(request: Request) -> tzinfo:
    """The zone timestamps are shown in: the ``tz`` cookie's IANA zone if valid, else UTC."""
    name = request.cookies.get(ZONE_COOKIE, "")
    if name and name != "UTC" and len(name) <= 64 and _ZONE_NAME.fullmatch(name):
        try:
            return ZoneInfo(name)
        except (ValueError, OSError, KeyError):  # unknown or malformed zone: UTC
            pass
    return UTC
