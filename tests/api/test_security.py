"""Nothing is exposed without authentication; roles, CSRF and login rate limits hold."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount

from stackwatch.api.app import PUBLIC_PATHS
from stackwatch.api.settings import LoginRate
from stackwatch.store.base import AlertQuery, EventQuery
from tests.api.conftest import PASSWORDS, csrf_of, log_in, login_form_token, make_app


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def _flat(routes: list) -> list:  # type: ignore[type-arg]
    """Every route, included routers expanded (FastAPI includes them lazily)."""
    out = []
    for route in routes:
        included = getattr(route, "original_router", None)
        out.extend(_flat(included.routes) if included is not None else [route])
    return out


def _routes(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    out = []
    for route in _flat(app.routes):
        if isinstance(route, APIRoute) or getattr(route, "methods", None):
            for method in sorted(route.methods):
                if method != "HEAD":
                    out.append((method, route.path))
    return out


def test_the_app_has_the_expected_resources(app) -> None:  # type: ignore[no-untyped-def]
    paths = {path for _, path in _routes(app)}
    for expected in (
        "/api/v1/events",
        "/api/v1/alerts",
        "/api/v1/sources",
        "/api/v1/rules",
        "/api/v1/integrity",
        "/api/v1/keystone",
        "/api/v1/activity",
        "/api/v1/responses/pending",
        "/healthz",
    ):
        assert expected in paths


def test_every_route_but_the_public_ones_refuses_anonymous_callers(app, anon: TestClient) -> None:  # type: ignore[no-untyped-def]
    routes = _routes(app)
    assert len(routes) > 30
    for method, path in routes:
        if path in PUBLIC_PATHS:
            continue
        response = anon.request(method, _concrete(path), follow_redirects=False)
        if path.startswith("/api/"):
            assert response.status_code == 401, (method, path, response.status_code)
        else:
            assert response.status_code == 303, (method, path, response.status_code)
            assert response.headers["location"].startswith("/login")


def test_public_paths_are_only_healthz_and_the_login_form(app, anon: TestClient) -> None:  # type: ignore[no-untyped-def]
    assert {"/healthz", "/login"} == PUBLIC_PATHS
    assert anon.get("/healthz").json() == {"status": "ok"}
    mounts = [r.path for r in _flat(app.routes) if isinstance(r, Mount)]
    assert mounts == ["/static"]  # vendored CSS and htmx only


def test_a_bad_bearer_token_is_refused(anon: TestClient) -> None:
    response = anon.get(
        "/api/v1/alerts", headers={"Authorization": "Bearer swt_0123456789abcdef_" + "x" * 43}
    )
    assert response.status_code == 401


def test_a_viewer_token_reads_the_api(anon: TestClient, viewer_token: str) -> None:
    response = anon.get("/api/v1/alerts", headers={"Authorization": f"Bearer {viewer_token}"})
    assert response.status_code == 200
    assert response.json()["alerts"]


def test_a_viewer_cannot_acknowledge(anon: TestClient, viewer_token: str, services) -> None:  # type: ignore[no-untyped-def]
    alert = services.store.alerts(AlertQuery(status="open", limit=1))[0]
    response = anon.post(
        f"/api/v1/alerts/{alert.id}/acknowledge", headers={"Authorization": f"Bearer {viewer_token}"}, json={}
    )
    assert response.status_code == 403
    assert services.store.get_alert(alert.id).alert.status == "open"


def test_a_viewer_session_cannot_acknowledge_with_the_form(viewer: TestClient, services) -> None:  # type: ignore[no-untyped-def]
    alert = services.store.alerts(AlertQuery(status="open", limit=1))[0]
    response = viewer.post(
        f"/alerts/{alert.id}/acknowledge", data={"csrf_token": csrf_of(viewer)}, follow_redirects=False
    )
    assert response.status_code == 403
    assert services.store.get_alert(alert.id).alert.status == "open"


def test_a_form_post_without_the_csrf_token_is_refused(responder: TestClient, services) -> None:  # type: ignore[no-untyped-def]
    alert = services.store.alerts(AlertQuery(status="open", limit=1))[0]
    for data in ({}, {"csrf_token": "forged"}):
        response = responder.post(f"/alerts/{alert.id}/acknowledge", data=data, follow_redirects=False)
        assert response.status_code == 403
    assert services.store.get_alert(alert.id).alert.status == "open"


def test_a_form_post_with_the_csrf_token_works(responder: TestClient, services) -> None:  # type: ignore[no-untyped-def]
    alert = services.store.alerts(AlertQuery(status="open", limit=1))[0]
    response = responder.post(
        f"/alerts/{alert.id}/comment",
        data={"csrf_token": csrf_of(responder), "comment": "csrf ok"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert services.store.get_alert(alert.id).history[-1].comment == "csrf ok"


def test_an_api_call_with_the_session_cookie_needs_the_csrf_header(responder: TestClient, services) -> None:  # type: ignore[no-untyped-def]
    alert = services.store.alerts(AlertQuery(status="open", limit=1))[0]
    assert responder.post(f"/api/v1/alerts/{alert.id}/comment", json={"comment": "x"}).status_code == 403
    ok = responder.post(
        f"/api/v1/alerts/{alert.id}/comment",
        json={"comment": "with header"},
        headers={"X-CSRF-Token": csrf_of(responder)},
    )
    assert ok.status_code == 200


def test_the_login_form_needs_its_csrf_token(anon: TestClient) -> None:
    response = anon.post(
        "/login",
        data={"username": "ada", "password": PASSWORDS["ada"], "csrf_token": "nope"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert "stackwatch_session" not in response.cookies


def test_session_cookie_is_httponly_and_samesite_strict(anon: TestClient) -> None:
    token = login_form_token(anon)
    response = anon.post(
        "/login",
        data={"username": "ada", "password": PASSWORDS["ada"], "csrf_token": token},
        follow_redirects=False,
    )
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie


def test_session_cookie_is_secure_when_tls(services) -> None:  # type: ignore[no-untyped-def]
    app = make_app(services, cookie_secure=True)
    with TestClient(app, base_url="https://testserver") as client:
        token = login_form_token(client)
        response = client.post(
            "/login",
            data={"username": "ada", "password": PASSWORDS["ada"], "csrf_token": token},
            follow_redirects=False,
        )
    assert "secure" in response.headers["set-cookie"].lower()


def test_logout_ends_the_session(services) -> None:  # type: ignore[no-untyped-def]
    with TestClient(make_app(services)) as client:
        log_in(client, "vic")
        assert client.get("/api/v1/me").json()["name"] == "vic"
        client.post("/logout", data={"csrf_token": csrf_of(client)})
        assert client.get("/api/v1/me").status_code == 401


def test_pages_carry_a_strict_csp(viewer: TestClient) -> None:
    response = viewer.get("/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert "cdn" not in response.text.lower() and "https://" not in response.text


def test_login_is_rate_limited_per_user(services) -> None:  # type: ignore[no-untyped-def]
    app = make_app(services, login_rate=LoginRate(per_ip=100, per_user=3, window=300))
    with TestClient(app) as client:
        for _ in range(3):
            token = login_form_token(client)
            bad = client.post(
                "/login", data={"username": "rex", "password": "wrong-password-xx", "csrf_token": token}
            )
            assert bad.status_code == 401
        token = login_form_token(client)
        # Even the right password is refused while the account is locked out.
        locked = client.post(
            "/login",
            data={"username": "rex", "password": PASSWORDS["rex"], "csrf_token": token},
            follow_redirects=False,
        )
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0


def test_login_is_rate_limited_per_address(services) -> None:  # type: ignore[no-untyped-def]
    app = make_app(services, login_rate=LoginRate(per_ip=4, per_user=100, window=300))
    with TestClient(app) as client:
        codes = []
        for i in range(6):
            token = login_form_token(client)
            codes.append(
                client.post(
                    "/login", data={"username": f"guess{i}", "password": "x" * 12, "csrf_token": token}
                ).status_code
            )
    assert codes == [401, 401, 401, 401, 429, 429]


def test_failed_logins_become_audit_events_in_the_store(services, anon: TestClient) -> None:  # type: ignore[no-untyped-def]
    token = login_form_token(anon)
    anon.post("/login", data={"username": "mallory", "password": "not-the-password", "csrf_token": token})
    found = services.store.search_events(
        EventQuery(
            service="stackwatch",
            kind="stackwatch_audit",
            action="authenticate",
            outcome="failure",
            user="mallory",
        )
    )
    assert found
    event = found[0].event
    assert event.initiator.name == "mallory" and event.initiator.source_ip == "testclient"


@pytest.mark.parametrize(
    "text",
    [
        "' OR 1=1 --",
        '" OR ""="',
        "x'); DROP TABLE events; --",
        "* OR *",
        "NEAR(a b)",
        "a AND NOT b",
        "message:foo",
        "1 UNION SELECT seq FROM events",
        '"unbalanced',
        "^start",
        "{col}: x",
        "%' --",
    ],
)
def test_injection_attempts_in_search_return_nothing_or_an_error(viewer: TestClient, text: str) -> None:
    response = viewer.get("/api/v1/events", params={"q": text, "limit": 50})
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        for event in response.json()["events"]:
            # The index's words are runs of letters and digits (an underscore separates them).
            words = [w.lower() for w in re.findall(r"[^\W_]+", text)]
            haystack = event["message"].lower()
            assert all(re.search(rf"(?<![^\W_]){re.escape(w)}(?![^\W_])", haystack) for w in words), (
                text,
                event["message"],
            )


@pytest.mark.parametrize("param", ["host", "service", "ip", "user", "category", "action"])
def test_injection_attempts_in_filters_match_no_rows(viewer: TestClient, param: str) -> None:
    response = viewer.get("/api/v1/events", params={param: "x' OR '1'='1", "limit": 50})
    assert response.status_code == 200
    assert response.json()["events"] == []


def test_search_page_size_is_bounded(viewer: TestClient) -> None:
    assert viewer.get("/api/v1/events", params={"limit": 100_000}).status_code == 422
    assert viewer.get("/api/v1/events", params={"limit": 5000}).status_code == 400  # above max_page
