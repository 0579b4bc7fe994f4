"""The search language over HTTP: ``/api/v1/search`` (JSON, hit count, histogram, field
values, the live tail's ``after``), its parse errors, the OpenAPI schema, and the dashboard's
search, tail and request-path pages, on the store seeded through the real pipeline."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from stackwatch.search.query import parse
from stackwatch.search.run import run_search
from stackwatch.store.base import EventQuery

IP = "203.0.113.45"


def test_search_needs_authentication(anon: TestClient) -> None:
    assert anon.get("/api/v1/search", params={"q": "user:admin"}).status_code == 401


def test_a_bearer_token_searches(anon: TestClient, viewer_token: str) -> None:
    response = anon.get("/api/v1/search", params={"q": f"ip:{IP}"},
                        headers={"Authorization": f"Bearer {viewer_token}"})
    assert response.status_code == 200 and response.json()["total"] == 120


def test_a_field_query_returns_its_hits_and_their_count(viewer: TestClient) -> None:
    query = f"source_ip:{IP} AND outcome:failure"
    body = viewer.get("/api/v1/search", params={"q": query, "limit": 10}).json()
    assert body["query"] == f"source_ip:{IP} AND outcome:failure"
    assert body["total"] == 120 and len(body["events"]) == 10 and body["next_offset"] == 10
    assert {e["initiator"]["source_ip"] for e in body["events"]} == {IP}
    assert {e["outcome"] for e in body["events"]} == {"failure"}
    assert body["last_seq"] == max(e["seq"] for e in body["events"])


def test_the_histogram_adds_up_to_the_total(viewer: TestClient) -> None:
    body = viewer.get("/api/v1/search", params={"q": "service:keystone", "histogram": "true"}).json()
    assert sum(body["histogram"]["counts"]) == body["total"] > 0
    assert body["histogram"]["step_seconds"] > 0 and datetime.fromisoformat(body["histogram"]["start"])


def test_field_values_count_the_hits(viewer: TestClient) -> None:
    body = viewer.get("/api/v1/search", params={"q": f"ip:{IP}", "fields": "true"}).json()
    assert body["fields"]["source_ip"] == [{"value": IP, "count": 120}]
    assert body["fields"]["host"][0]["value"] == "ctl2"


def test_the_window_parameters_bound_the_search(viewer: TestClient, services) -> None:  # type: ignore[no-untyped-def]
    window = {"q": "action:authenticate", "from": "2026-03-02T08:00", "to": "2026-03-02T08:30"}
    body = viewer.get("/api/v1/search", params=window).json()
    start, end = datetime.fromisoformat(body["since"]), datetime.fromisoformat(body["until"])
    assert body["total"] == run_search(services.store, "action:authenticate", since=start, until=end,
                                       count=True).total
    everything = viewer.get("/api/v1/search", params={"q": "action:authenticate"}).json()["total"]
    assert 0 < body["total"] < everything
    assert all(start <= datetime.fromisoformat(e["time"]) < end for e in body["events"])


def test_after_returns_only_newer_events(viewer: TestClient) -> None:
    first = viewer.get("/api/v1/search", params={"q": f"ip:{IP}", "limit": 5}).json()
    seqs = sorted(e["seq"] for e in first["events"])
    later = viewer.get("/api/v1/search", params={"q": f"ip:{IP}", "after": seqs[0]}).json()
    assert later["events"] and all(e["seq"] > seqs[0] for e in later["events"])


def test_a_parse_error_is_400_with_its_column(viewer: TestClient) -> None:
    response = viewer.get("/api/v1/search", params={"q": "outcome:failure AND user: admin"})
    assert response.status_code == 400
    assert response.json() == {"detail": "error at column 26: expected a value after 'user:'", "column": 26}


@pytest.mark.parametrize("params", [{"range": "forever"}, {"from": "yesterday"}, {"from": "2026-03-02",
                                                                                  "to": "2026-03-01"}])
def test_a_bad_window_is_400(viewer: TestClient, params: dict[str, str]) -> None:
    response = viewer.get("/api/v1/search", params=params)
    assert response.status_code == 400 and "time window" in response.json()["detail"]


def test_an_overlong_query_is_refused(viewer: TestClient) -> None:
    assert viewer.get("/api/v1/search", params={"q": "a" * 2049}).status_code == 422


def test_openapi_documents_the_search(viewer: TestClient) -> None:
    operation = viewer.get("/api/v1/openapi.json").json()["paths"]["/api/v1/search"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"q", "range", "from", "to", "limit", "offset", "after", "histogram", "fields"} <= names
    assert "400" in operation["responses"]


def test_the_search_page_shows_count_histogram_fields_and_pivots(viewer: TestClient) -> None:
    page = viewer.get("/search", params={"q": f"ip:{IP}"})
    assert page.status_code == 200
    assert '<strong id="hit-count">120</strong>' in page.text
    assert 'id="histogram"' in page.text and 'class="facet"' in page.text
    assert f'href="/search?q=source_ip%3A{IP}"' in page.text  # every IP is a pivot link
    assert 'href="/search/request/req-' in page.text
    assert "UTC</time>" in page.text  # timestamps carry their zone


def test_the_search_page_shows_a_parse_error_with_a_caret(viewer: TestClient) -> None:
    page = viewer.get("/search", params={"q": "user: x"})
    assert page.status_code == 400
    assert "error at column 6: expected a value after &#39;user:&#39;" in page.text
    assert "user: x\n     ^</pre>" in page.text


def test_the_old_search_form_fields_become_terms(viewer: TestClient) -> None:
    page = viewer.get("/search", params={"ip": IP, "q": "failed OR denied"})
    assert f'value="source_ip:{IP} AND (failed OR denied)"' in page.text


def test_the_tail_returns_rows_after_a_seq(viewer: TestClient, services) -> None:  # type: ignore[no-untyped-def]
    hits = run_search(services.store, f"ip:{IP}", limit=3).events
    rows = viewer.get("/search/tail", params={"q": f"ip:{IP}", "after": hits[1].seq}).text
    assert f'data-seq="{hits[0].seq}"' in rows and f'data-seq="{hits[1].seq}"' not in rows
    assert "<html" not in rows


def test_the_request_path_lists_every_service_in_time_order(viewer: TestClient, services) -> None:  # type: ignore[no-untyped-def]
    hits = run_search(services.store, "request_id:* kind:notification", limit=1).events
    request_id = hits[0].event.request_id
    events = run_search(services.store, f"request_id:{request_id}", limit=1000, newest_first=False).events
    page = viewer.get(f"/search/request/{request_id}").text
    assert f'<strong id="hit-count">{len(events)}</strong>' in page
    assert page.count("<li><a class=\"pivot\"") == len({(e.event.host, e.event.service) for e in events})
    assert 'id="audit"' in page  # the notification is listed as the request's audit trail
    positions = [page.index(f"seq {e.seq}<") for e in events]
    assert positions == sorted(positions)


def test_an_unknown_request_id_has_no_path(viewer: TestClient) -> None:
    page = viewer.get("/search/request/req-nothing-like-this")
    assert page.status_code == 200 and 'id="no-results"' in page.text


def test_the_picker_says_which_pages_filter_by_time(viewer: TestClient) -> None:
    assert 'id="window-ignored"' not in viewer.get("/search", params={"range": "1h"}).text
    assert 'id="window-ignored"' in viewer.get("/rules").text
    assert 'id="timepicker"' in viewer.get("/rules").text


def test_the_search_page_matches_its_text_once_and_counts_every_hit(viewer: TestClient, services) -> None:  # type: ignore[no-untyped-def]
    store = services.store
    matches: list[str] = []
    store._reader.set_trace_callback(lambda sql: matches.extend([sql] * sql.count(" MATCH ")))
    try:
        page = viewer.get("/search", params={"q": "Failed password"})
    finally:
        store._reader.set_trace_callback(None)
    assert page.status_code == 200
    assert len(matches) == 1  # hits, count, time bounds, histogram and field values share it
    total = store.count_events(EventQuery(match=parse("Failed password")))
    assert total > 0 and f'<strong id="hit-count">{total}</strong>' in page.text
