"""The API over HTTP, against the store seeded through the real pipeline."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient

from stackwatch.store.base import AlertQuery, EventQuery
from tests.api.conftest import csrf_of


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_openapi_documents_both_auth_schemes(viewer: TestClient) -> None:
    schema = viewer.get("/api/v1/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == {"session", "token"}
    assert "/api/v1/events" in schema["paths"] and "/healthz" in schema["paths"]
    assert schema["paths"]["/api/v1/alerts"]["get"]["security"]


def test_free_text_search_finds_the_keystone_failures(viewer: TestClient) -> None:
    events = viewer.get("/api/v1/events", params={"q": "Authorization failed", "limit": 500}).json()["events"]
    assert events
    assert all("authorization failed" in e["message"].lower() for e in events)


def test_search_filters_combine(viewer: TestClient) -> None:
    events = viewer.get(
        "/api/v1/events", params={"ip": "203.0.113.45", "service": "keystone", "limit": 500}
    ).json()["events"]
    assert len(events) >= 40
    assert {e["initiator"]["source_ip"] for e in events} == {"203.0.113.45"}
    hosts = viewer.get("/api/v1/events", params={"host": "cmp2", "category": "syslog", "limit": 50}).json()
    assert hosts["events"] and {(e["host"], e["kind"]) for e in hosts["events"]} == {("cmp2", "syslog")}


def test_search_by_user_and_time_range(viewer: TestClient) -> None:
    events = viewer.get(
        "/api/v1/events",
        params={
            "user": "anna.web",
            "since": "2026-03-02T08:00:00",
            "until": "2026-03-02T08:30:00",
            "limit": 200,
        },
    ).json()["events"]
    assert events and all("2026-03-02T08" in e["time"] for e in events)
    later = viewer.get("/api/v1/events", params={"user": "anna.web", "since": "2026-03-02T09:30:00"}).json()
    assert later["events"] == []


def test_search_pages_do_not_overlap(viewer: TestClient) -> None:
    first = viewer.get("/api/v1/events", params={"service": "keystone", "limit": 20}).json()
    second = viewer.get(
        "/api/v1/events", params={"service": "keystone", "limit": 20, "offset": first["next_offset"]}
    ).json()
    assert first["next_offset"] == 20
    assert not {e["seq"] for e in first["events"]} & {e["seq"] for e in second["events"]}


def test_a_bad_time_is_a_clear_error(viewer: TestClient) -> None:
    response = viewer.get("/api/v1/events", params={"since": "yesterday-ish"})
    assert response.status_code == 400 and "since" in response.json()["detail"]


def test_alerts_filter_by_category(viewer: TestClient) -> None:
    alerts = viewer.get("/api/v1/alerts", params={"category": "auth.bruteforce", "status": ""}).json()[
        "alerts"
    ]
    assert alerts and {a["category"] for a in alerts} == {"auth.bruteforce"}
    assert any(a["source_ip"] == "203.0.113.45" for a in alerts)


def test_one_alert_has_its_evidence_raw_lines(viewer: TestClient, services) -> None:  # type: ignore[no-untyped-def]
    alert = services.store.alerts(AlertQuery(category="auth.bruteforce", source_ip="203.0.113.45", limit=1))[
        0
    ]
    data = viewer.get(f"/api/v1/alerts/{alert.id}").json()
    assert data["evidence"] and all(e["raw"] for e in data["evidence"])
    assert any("203.0.113.45" in e["raw"] for e in data["evidence"])
    assert viewer.get("/api/v1/alerts/999999").status_code == 404


def test_a_responder_acknowledges_resolves_and_comments(
    anon: TestClient, responder_token: str, services
) -> None:  # type: ignore[no-untyped-def]
    alert = services.store.alerts(AlertQuery(status="open", limit=5))[-1]
    ack = anon.post(
        f"/api/v1/alerts/{alert.id}/acknowledge", headers=_auth(responder_token), json={"comment": "on it"}
    )
    assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
    anon.post(
        f"/api/v1/alerts/{alert.id}/comment", headers=_auth(responder_token), json={"comment": "found it"}
    )
    done = anon.post(f"/api/v1/alerts/{alert.id}/resolve", headers=_auth(responder_token), json={})
    assert done.json()["status"] == "resolved"
    history = services.store.get_alert(alert.id).history
    assert [h.actor for h in history[-3:]] == ["rex"] * 3
    assert [h.comment for h in history[-3:]][:2] == ["on it", "found it"]


def test_acknowledgements_are_audit_events_in_the_store(responder: TestClient, services) -> None:  # type: ignore[no-untyped-def]
    alert = services.store.alerts(AlertQuery(status="open", limit=1))[0]
    responder.post(f"/alerts/{alert.id}/acknowledge", data={"csrf_token": csrf_of(responder)})
    audit = services.store.search_events(
        EventQuery(kind="stackwatch_audit", action="alert.acknowledge", user="rex", limit=100)
    )
    assert any(s.event.target.id == str(alert.id) for s in audit)


def test_unknown_alert_action_is_404(anon: TestClient, responder_token: str) -> None:
    assert anon.post("/api/v1/alerts/1/delete", headers=_auth(responder_token), json={}).status_code == 404


def test_sources_report_health(viewer: TestClient) -> None:
    sources = viewer.get("/api/v1/sources").json()["sources"]
    keys = {(s["host"], s["service"]) for s in sources}
    assert ("ctl1", "keystone") in keys
    assert all(s["last_seen"] and s["count"] > 0 for s in sources)
    assert {s["silent"] for s in sources} <= {True, False}


def test_expected_but_never_seen_sources_are_silent(services) -> None:  # type: ignore[no-untyped-def]
    from tests.api.conftest import log_in, make_app

    app = make_app(services, expected_sources=(("ctl9", "keystone"), ("ctl1", "keystone")))
    with TestClient(app) as client:
        log_in(client, "vic")
        sources = {(s["host"], s["service"]): s for s in client.get("/api/v1/sources").json()["sources"]}
        page = client.get("/sources").text
    assert sources[("ctl9", "keystone")]["silent"] and sources[("ctl9", "keystone")]["expected"]
    assert not sources[("ctl1", "keystone")]["silent"]
    assert "row-alarm" in page and "ctl9" in page


def test_rules_are_listed_and_only_an_admin_disables_one(
    admin: TestClient, responder: TestClient, services
) -> None:  # type: ignore[no-untyped-def]
    rules = admin.get("/api/v1/rules").json()["rules"]
    target = next(r for r in rules if r["title"] == "test: sshd brute force")
    refused = responder.post(
        f"/api/v1/rules/{target['id']}/disable", headers={"X-CSRF-Token": csrf_of(responder)}
    )
    assert refused.status_code == 403
    token = csrf_of(admin)
    assert (
        admin.post(f"/api/v1/rules/{target['id']}/disable", headers={"X-CSRF-Token": token}).json()["enabled"]
        is False
    )
    assert services.rules.state.overrides()[target["id"]]["by"] == "ada"
    audit = services.store.search_events(EventQuery(kind="stackwatch_audit", action="rule.disable", limit=10))
    assert any(s.event.target.id == target["id"] for s in audit)
    admin.post(f"/api/v1/rules/{target['id']}/enable", headers={"X-CSRF-Token": token})
    assert next(r for r in admin.get("/api/v1/rules").json()["rules"] if r["id"] == target["id"])["enabled"]


def test_running_a_rules_vectors(anon: TestClient, responder_token: str, viewer_token: str, services) -> None:  # type: ignore[no-untyped-def]
    rule = next(r for r, _ in services.rules.rules() if r.title == "test: keystone password spraying")
    result = anon.post(f"/api/v1/rules/{rule.id}/test", headers=_auth(responder_token)).json()
    assert result["vectors"] == 2 and result["failed"] == 0
    assert anon.post(f"/api/v1/rules/{rule.id}/test", headers=_auth(viewer_token)).status_code == 403


def test_integrity_is_not_configured_on_a_plain_store(viewer: TestClient) -> None:
    data = viewer.get("/api/v1/integrity").json()
    assert data["configured"] is False and data["state"] == "not configured"
    assert viewer.get("/api/v1/integrity/proof/1").status_code == 404
    assert "not configured" in viewer.get("/integrity").text


def test_keystone_analytics_classify_the_scenario(viewer: TestClient) -> None:
    data = viewer.get("/api/v1/keystone").json()
    ips = {r["ip"]: r for r in data["source_ips"]}
    accounts = {r["account"]: r for r in data["accounts"]}
    assert ips["203.0.113.45"]["classification"] == "brute_force"
    assert ips["198.51.100.23"]["classification"] == "spraying"
    assert accounts["admin"]["classification"] == "targeted" and accounts["admin"]["privileged"]
    assert data["totals"]["failures"] == sum(b["failures"] for b in data["failures_over_time"]["buckets"])


def test_keystone_view_restricted_to_select_accounts(viewer: TestClient) -> None:
    data = viewer.get("/api/v1/keystone", params={"accounts": "admin,kofi.ci"}).json()
    assert {r["account"] for r in data["accounts"]} == {"admin", "kofi.ci"}
    assert data["restricted_to"] == ["admin", "kofi.ci"]


def test_keystone_timelines(viewer: TestClient) -> None:
    rows = viewer.get("/api/v1/keystone/timeline", params={"ip": "203.0.113.45"}).json()["attempts"]
    assert len(rows) == 40 and {r["account"] for r in rows} == {"anna.web"}
    assert rows == sorted(rows, key=lambda r: r["time"])
    assert viewer.get("/api/v1/keystone/timeline").status_code == 400


def test_keystone_export_csv_and_json(viewer: TestClient) -> None:
    response = viewer.get("/api/v1/keystone/export", params={"format": "csv"})
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {"entity": "ip", "name": "198.51.100.23"}.items() <= next(
        r for r in rows if r["name"] == "198.51.100.23"
    ).items()
    data = viewer.get("/api/v1/keystone/export", params={"format": "json"}).json()
    assert data["totals"]["failures"] > 0


def test_activity_shows_who_did_what(viewer: TestClient) -> None:
    rows = viewer.get("/api/v1/activity", params={"action": "deleted.project"}).json()["activity"]
    assert rows and rows[0]["target_type"] == "project"
    created = viewer.get("/api/v1/activity", params={"resource": "instance", "limit": 5}).json()["activity"]
    assert created and all(r["target_type"] == "instance" for r in created)


def test_responses_awaiting_approval_are_listed(viewer: TestClient) -> None:
    assert isinstance(viewer.get("/api/v1/responses/pending").json()["pending"], list)


def test_every_page_renders(viewer: TestClient) -> None:
    for path in (
        "/",
        "/alerts",
        "/sources",
        "/keystone",
        "/activity",
        "/search",
        "/rules",
        "/integrity",
        "/responses",
        "/keystone?ip=203.0.113.45",
        "/search?q=Authorization+failed",
    ):
        response = viewer.get(path)
        assert response.status_code == 200, path
        assert "<svg" in viewer.get("/").text


def test_pending_responses_come_from_the_approval_queue(services, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    approvals = pytest.importorskip("stackwatch.respond.approvals")
    from stackwatch.api.services import approvals_for

    assert approvals_for(tmp_path)() == []  # no queue file: nothing, and nothing created
    assert not approvals.queue_path(tmp_path).exists()
