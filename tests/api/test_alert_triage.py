"""Triage at volume over HTTP: totals and pages, sorting, assignees ("mine"), bulk
acknowledge / resolve / assign from the JSON API and the page's form (CSRF), role checks and
the audit trail, evidence as parsed fields with the search that finds every event."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from stackwatch.api import Services
from stackwatch.core.alert import ALERT_SEVERITIES
from stackwatch.store.base import AlertQuery, EventQuery
from tests.api.conftest import csrf_of, logged_in


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _ids(services: Services, limit: int = 3, **filters: str) -> list[int]:
    return [a.id for a in services.store.alerts(AlertQuery(limit=limit, **filters))]  # type: ignore[arg-type]


def _audit(services: Services, action: str) -> list:  # type: ignore[type-arg]
    return services.store.search_events(EventQuery(kind="stackwatch_audit", action=action, limit=1000))


@pytest.fixture()
def rex(triage_app):  # type: ignore[no-untyped-def]
    with logged_in(triage_app, "rex") as client:
        yield client


@pytest.fixture()
def vic(triage_app):  # type: ignore[no-untyped-def]
    with logged_in(triage_app, "vic") as client:
        yield client


def test_the_list_says_how_many_match_in_all(vic: TestClient, triage_services: Services) -> None:
    body = vic.get("/api/v1/alerts", params={"limit": 2}).json()
    assert len(body["alerts"]) == 2
    assert body["total"] == triage_services.store.count_alerts() > 2


def test_the_page_shows_the_total_and_pages_through_it(vic: TestClient, triage_services: Services) -> None:
    total = triage_services.store.count_alerts(AlertQuery(status=None))
    first = vic.get("/alerts", params={"status": ""}).text
    assert re.search(rf"1–{min(total, 50)} of <strong>{total}</strong>", first)
    last = vic.get("/alerts", params={"status": "", "offset": total - 2}).text
    assert f"{total - 1}–{total} of <strong>{total}</strong>" in last
    assert 'id="prev-page"' in last and 'id="next-page"' not in last
    assert len(re.findall(r'<td><a href="/alerts/\d+">\d+</a></td>', last)) == 2


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_alerts_sort_by_severity(vic: TestClient, order: str) -> None:
    params = {"sort": "severity", "order": order, "limit": 500}
    alerts = vic.get("/api/v1/alerts", params=params).json()["alerts"]
    ranks = [ALERT_SEVERITIES.index(a["severity"]) for a in alerts]
    assert ranks == sorted(ranks, reverse=order == "desc") and len(set(ranks)) > 1


@pytest.mark.parametrize(("sort", "field"), [("rule", "title"), ("host", "host")])
def test_alerts_sort_by_rule_or_host(vic: TestClient, sort: str, field: str) -> None:
    alerts = vic.get("/api/v1/alerts", params={"sort": sort, "order": "asc", "limit": 500}).json()["alerts"]
    values = [a.get(field) or "" for a in alerts]
    assert values == sorted(values)


def test_an_unknown_sort_is_a_clear_error(vic: TestClient) -> None:
    assert vic.get("/api/v1/alerts", params={"sort": "summary"}).status_code == 422


def test_the_page_sorts_from_its_column_headers(vic: TestClient) -> None:
    page = vic.get("/alerts", params={"sort": "severity", "order": "desc"}).text
    assert "sorted-desc" in page and "sort=severity&amp;order=asc" in page


def test_bulk_acknowledge_over_the_api(triage_app, token_of, triage_services) -> None:  # type: ignore[no-untyped-def]
    ids = _ids(triage_services, status="open")
    with TestClient(triage_app) as client:
        body = {"ids": [*ids, 999_999], "action": "acknowledge", "comment": "known scan"}
        response = client.post("/api/v1/alerts/bulk", headers=_auth(token_of("rex")), json=body)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [a["id"] for a in body["changed"]] == ids and body["missing"] == [999_999]
    assert {triage_services.store.get_alert(i).alert.status for i in ids} == {"acknowledged"}  # type: ignore[union-attr]
    audited = {e.event.target.id for e in _audit(triage_services, "alert.acknowledge")}
    assert {str(i) for i in ids} <= audited


def test_bulk_resolve_from_the_page_form(rex: TestClient, triage_services: Services) -> None:
    ids = _ids(triage_services, status="open", limit=2)
    response = rex.post("/alerts/bulk", data={"ids": ids, "action": "resolve", "csrf_token": csrf_of(rex),
                                              "back": "/alerts?status=open"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/alerts?status=open"
    assert {triage_services.store.get_alert(i).alert.status for i in ids} == {"resolved"}  # type: ignore[union-attr]


def test_the_bulk_form_needs_the_csrf_token(rex: TestClient, triage_services: Services) -> None:
    ids = _ids(triage_services, limit=1)
    response = rex.post("/alerts/bulk", data={"ids": ids, "action": "resolve"}, follow_redirects=False)
    assert response.status_code == 403


@pytest.mark.parametrize("path", ["/api/v1/alerts/bulk", "/api/v1/alerts/1/assign"])
def test_a_viewer_cannot_triage_over_the_api(triage_app, token_of, path: str) -> None:  # type: ignore[no-untyped-def]
    with TestClient(triage_app) as client:
        response = client.post(path, headers=_auth(token_of("vic")),
                               json={"ids": [1], "action": "acknowledge", "assignee": "vic"})
    assert response.status_code == 403


def test_a_viewer_cannot_bulk_acknowledge_from_the_page(vic: TestClient, triage_services: Services) -> None:
    ids = _ids(triage_services, status="open", limit=1)
    form = {"ids": ids, "action": "acknowledge", "csrf_token": csrf_of(vic)}
    response = vic.post("/alerts/bulk", data=form)
    assert response.status_code == 403
    assert triage_services.store.get_alert(ids[0]).alert.status == "open"  # type: ignore[union-attr]
    assert 'id="bulk-ack"' not in vic.get("/alerts").text


@pytest.mark.parametrize(("body", "status"), [
    ({"ids": [], "action": "acknowledge"}, 400),
    ({"ids": [1], "action": "delete"}, 400),
    ({"ids": "1,2", "action": "resolve"}, 400),
    ({"ids": list(range(501)), "action": "resolve"}, 400),
])
def test_bad_bulk_requests_are_clear_errors(triage_app, token_of, body, status) -> None:  # type: ignore[no-untyped-def]
    with TestClient(triage_app) as client:
        response = client.post("/api/v1/alerts/bulk", headers=_auth(token_of("rex")), json=body)
    assert response.status_code == status and response.json()["detail"]


def test_assign_to_me_then_filter_mine(rex: TestClient, triage_services: Services) -> None:
    [target] = _ids(triage_services, limit=1)
    response = rex.post("/alerts/bulk", data={"ids": [target], "action": "assign", "assignee": "me",
                                              "csrf_token": csrf_of(rex)})
    assert response.status_code == 200  # followed the redirect to the list
    assert triage_services.store.get_alert(target).assignee == "rex"  # type: ignore[union-attr]
    mine = rex.get("/api/v1/alerts", params={"assignee": "me", "status": ""}).json()
    assert target in [a["id"] for a in mine["alerts"]] and mine["total"] >= 1
    theirs = rex.get("/api/v1/alerts", params={"assignee": "ada", "status": ""}).json()["alerts"]
    assert all(a["id"] != target for a in theirs)
    assert any(e.event.target.id == str(target) and e.event.attrs["assignee"] == "rex"
               for e in _audit(triage_services, "alert.assign"))


def test_assign_and_clear_over_the_api(triage_app, token_of, triage_services) -> None:  # type: ignore[no-untyped-def]
    [target] = _ids(triage_services, limit=1)
    with TestClient(triage_app) as client:
        headers = _auth(token_of("rex"))
        assigned = client.post(f"/api/v1/alerts/{target}/assign", headers=headers, json={"assignee": "ada"})
        assert assigned.status_code == 200 and assigned.json()["assignee"] == "ada"
        cleared = client.post(f"/api/v1/alerts/{target}/assign", headers=headers, json={"assignee": None})
        assert cleared.json()["assignee"] is None
        missing = client.post("/api/v1/alerts/999999/assign", headers=headers, json={"assignee": "x"})
        assert missing.status_code == 404


def test_evidence_is_a_parsed_field_table_with_a_link_to_every_event(vic: TestClient,
                                                                      triage_services: Services) -> None:
    [alert] = triage_services.store.alerts(AlertQuery(category="auth.bruteforce", limit=1))
    page = vic.get(f"/alerts/{alert.id}").text
    assert '<table class="fields">' in page and "initiator.source_ip" in page
    link = re.search(r'href="(/search\?[^"]+)" id="show-all-events"', page)
    assert link and f"Show all {alert.alert.count} event" in page
    query = parse_qs(urlsplit(link.group(1).replace("&amp;", "&")).query)
    assert f"source_ip:{alert.alert.source_ip}" in query["q"][0]
    assert query["from"] == [alert.alert.time.isoformat()]


def test_the_evidence_link_finds_the_alerts_events_in_search(vic: TestClient,
                                                             triage_services: Services) -> None:
    [alert] = triage_services.store.alerts(AlertQuery(category="auth.bruteforce", limit=1))
    link = re.search(r'href="(/search\?[^"]+)" id="show-all-events"', vic.get(f"/alerts/{alert.id}").text)
    assert link
    found = vic.get("/api/v1/search", params=parse_qs(urlsplit(link.group(1).replace("&amp;", "&")).query))
    assert found.status_code == 200, found.text
    events = found.json()["events"]
    assert events and {e["initiator"]["source_ip"] for e in events} == {alert.alert.source_ip}
