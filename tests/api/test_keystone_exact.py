"""The keystone page and API count every attempt of the range, each once: their figures equal a
full recount (every stored login event correlated again) over the seeded store, a store built
by ``analyze`` (tests/store/test_sqlite_attempts.py covers ranges, re-ingestion and the rest)."""

from __future__ import annotations

import re

import orjson
from fastapi.testclient import TestClient

from stackwatch.api.analytics import build_report, login_events, report_dict


def _recount(app, **scope: object) -> dict[str, object]:  # type: ignore[no-untyped-def]
    store = app.state.services.store
    events, truncated = login_events(store, None, None, max_events=10_000_000)
    assert not truncated
    report = build_report(events, privileged=app.state.settings.privileged_accounts, **scope)  # type: ignore[arg-type]
    return orjson.loads(orjson.dumps(report_dict(report)))  # as JSON says it (tuples are lists)


def test_the_api_equals_a_full_recount(viewer: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    assert viewer.get("/api/v1/keystone").json() == _recount(app)
    restricted = viewer.get("/api/v1/keystone", params={"accounts": "admin,anna.web"}).json()
    assert restricted == _recount(app, accounts=["admin", "anna.web"])


def test_the_page_shows_the_recounted_totals_and_says_they_are_exact(viewer: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    html = viewer.get("/keystone").text
    totals = _recount(app)["totals"]
    cards = dict((label, int(num)) for num, label in re.findall(
        r'<span class="num">(\d+)</span><span class="lbl">([a-zA-Z ]+)</span>', html))
    assert cards == {"login attempts": totals["attempts"], "failed": totals["failures"],  # type: ignore[index]
                     "succeeded": totals["successes"], "source IPs": totals["source_ips"],  # type: ignore[index]
                     "accounts": totals["accounts"]}  # type: ignore[index]
    assert 'id="exact"' in html and 'id="truncated"' not in html
