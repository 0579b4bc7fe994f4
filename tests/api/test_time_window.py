"""The global time picker's window (``range``/``from``/``to``) is honoured by the alerts,
keystone and activity pages, the same as their own ``since``/``until`` filters."""

from __future__ import annotations

import re
from datetime import datetime

from fastapi.testclient import TestClient

TOTAL = re.compile(r'id="alert-totals">(?:\d+–\d+ of <strong>(\d+)</strong>|(0) alerts)')
FAILED = re.compile(r'<span class="num">(\d+)</span><span class="lbl">failed</span>')


def _alert_total(page: str) -> int:
    match = TOTAL.search(page)
    assert match, "the alerts page shows its total"
    return int(match.group(1) or match.group(2))


def _middle_alert_time(viewer: TestClient) -> str:
    alerts = viewer.get("/api/v1/alerts", params={"limit": 500}).json()["alerts"]
    times = sorted(datetime.fromisoformat(a["last_seen"]) for a in alerts)
    assert len(times) >= 4, "the seeded store has alerts to split"
    return times[len(times) // 2].isoformat()


def test_the_alerts_page_counts_only_the_windows_alerts(viewer: TestClient) -> None:
    middle = _middle_alert_time(viewer)
    everything = _alert_total(viewer.get("/alerts", params={"status": ""}).text)
    windowed = viewer.get("/alerts", params={"status": "", "from": middle})
    own_filter = _alert_total(viewer.get("/alerts", params={"status": "", "since": middle}).text)
    assert 'id="window-ignored"' not in windowed.text
    assert 0 < _alert_total(windowed.text) == own_filter < everything


def test_the_keystone_page_counts_only_the_windows_failures(viewer: TestClient) -> None:
    buckets = viewer.get("/api/v1/keystone").json()["failures_over_time"]["buckets"]
    with_failures = [datetime.fromisoformat(b["start"]) for b in buckets if b["failures"]]
    assert len(with_failures) >= 2, "the seeded store has failed logins at several times"
    middle = with_failures[len(with_failures) // 2]
    everything = int(FAILED.search(viewer.get("/keystone").text).group(1))
    windowed = viewer.get("/keystone", params={"to": middle.isoformat()})
    own_page = viewer.get("/keystone", params={"until": middle.isoformat()}).text
    own_filter = int(FAILED.search(own_page).group(1))
    assert 'id="window-ignored"' not in windowed.text
    assert int(FAILED.search(windowed.text).group(1)) == own_filter < everything


def test_a_window_with_nothing_in_it_empties_the_activity_page(viewer: TestClient) -> None:
    full = viewer.get("/activity").text
    empty = viewer.get("/activity", params={"from": "2001-01-01", "to": "2001-01-02"}).text
    assert full.count("<tr") > empty.count("<tr") and 'id="window-ignored"' not in empty
