"""The global time window contract (range / from / to) and the display zone cookie."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi import HTTPException
from starlette.requests import Request

from stackwatch.web.timerange import TimeWindow, display_zone, time_window

NOW = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)


def request(query: str = "", cookie: str = "") -> Request:
    headers = [(b"cookie", cookie.encode())] if cookie else []
    return Request({"type": "http", "method": "GET", "path": "/search", "query_string": query.encode(),
                    "headers": headers})


@pytest.mark.parametrize(("query", "since", "until", "label"), [
    ("", None, None, "All time"),
    ("range=15m", NOW - timedelta(minutes=15), None, "Last 15 minutes"),
    ("range=7d", NOW - timedelta(days=7), None, "Last 7 days"),
    ("range=3h", NOW - timedelta(hours=3), None, "Last 3h"),
    ("from=2026-12-01", datetime(2026, 12, 1, tzinfo=UTC), None, "2026-12-01 → now"),
    ("from=2026-12-01&to=2026-12-01", datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC),
     "2026-12-01 → 2026-12-01"),
    ("to=now-1h", None, NOW - timedelta(hours=1), "the beginning → now-1h"),
    ("range=24h&from=2026-12-01T08:00", datetime(2026, 12, 1, 8, tzinfo=UTC), None, "2026-12-01T08:00 → now"),
    ("range=&from=&to=", None, None, "All time"),
])
def test_the_window_from_the_parameters(query: str, since: datetime | None, until: datetime | None,
                                        label: str) -> None:
    window = time_window(request(query), NOW)
    assert (window.since, window.until, window.label) == (since, until, label)


@pytest.mark.parametrize(("window", "params"), [
    (TimeWindow(), {}),
    (TimeWindow(range="1h"), {"range": "1h"}),
    (TimeWindow(range="1h", start="now-2h"), {"from": "now-2h"}),
])
def test_a_window_gives_the_parameters_that_ask_for_it(window: TimeWindow, params: dict[str, str]) -> None:
    assert window.params == params


@pytest.mark.parametrize("query", ["range=forever", "range=0m", "from=yesterday", "to=12:00",
                                   "from=2026-12-02&to=2026-12-01"])
def test_a_malformed_window_is_a_400(query: str) -> None:
    with pytest.raises(HTTPException) as caught:
        time_window(request(query), NOW)
    assert caught.value.status_code == 400 and "time window" in str(caught.value.detail)


@pytest.mark.parametrize(("cookie", "zone"), [
    ("", UTC),
    ("tz=UTC", UTC),
    ("tz=Europe/Paris", ZoneInfo("Europe/Paris")),
    ("tz=America/Argentina/Buenos_Aires", ZoneInfo("America/Argentina/Buenos_Aires")),
    ("tz=Not/AZone", UTC),
    ("tz=../../etc/passwd", UTC),
    ("tz=" + "A" * 80, UTC),
])
def test_the_display_zone_comes_from_the_cookie(cookie: str, zone: object) -> None:
    assert display_zone(request(cookie=cookie)) == zone
