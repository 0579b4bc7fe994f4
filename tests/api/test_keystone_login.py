"""Logging in with keystone credentials against a real keystone (tests/conftest.py's session
fixture), the default role mapping, revocation, and the tenant views: two projects with their
own events and alerts, each seeing only its own through every route and page (a meta-test
over all routes, as test_security.py's anonymous one). The keystone login form in Chromium:
tests/web/test_keystone_browser.py."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from stackwatch.api import Services
from stackwatch.api.settings import LoginRate
from stackwatch.store.base import AlertQuery, EventQuery
from tests.api.conftest import login_form_token, make_app
from tests.api.keystone_cloud import (
    CACHE,
    GENEROUS,
    NAMED_OTHER_DOMAIN_IP,
    NAMED_OWN_IP,
    TWIN_IP,
    Cloud,
    _settings,
    disable,
)
from tests.api.test_security import _concrete, _routes


@pytest.fixture()
def client(ks_app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(ks_app) as client:
        yield client


def _me(client: TestClient, token: str) -> dict[str, Any]:
    response = client.get("/api/v1/me", headers={"X-Auth-Token": token})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _form_login(client: TestClient, **fields: str) -> Any:
    data = {"csrf_token": login_form_token(client), "next": "/", **fields}
    return client.post("/login", data=data, follow_redirects=False)


def _audit(services: Services, account: str, outcome: str) -> list[Any]:
    found = services.store.search_events(EventQuery(kind="stackwatch_audit", action="authenticate",
                                                    outcome=outcome, limit=1000))
    return [s for s in found if account in s.event.message]


# -- logging in ---------------------------------------------------------------------------------

def test_password_login_opens_a_session_of_the_mapped_role(client: TestClient, cloud: Cloud,
                                                           ks_services: Services) -> None:
    user = cloud.users["secmember"]
    response = _form_login(client, method="keystone", username=user.name, password=user.password,
                           domain="Default", project=cloud.security_project)
    assert response.status_code == 303, response.text
    me = client.get("/api/v1/me").json()
    assert me == {"name": f"{user.name}@Default", "role": "responder", "via": "keystone-session",
                  "project": None}
    assert _audit(ks_services, user.name, "success")


def test_application_credential_login_is_a_tenant_of_its_project(client: TestClient, cloud: Cloud) -> None:
    credential_id, secret = cloud.app_credential
    response = _form_login(client, method="appcred", credential_id=credential_id, credential_secret=secret)
    assert response.status_code == 303, response.text
    me = client.get("/api/v1/me").json()
    assert (me["role"], me["project"]) == ("tenant", cloud.projects["alpha"])


def test_a_keystone_token_in_x_auth_token_authenticates_api_calls(client: TestClient, cloud: Cloud) -> None:
    me = _me(client, cloud.token("secreader"))
    assert (me["role"], me["via"]) == ("viewer", "keystone")
    assert client.get("/api/v1/alerts", headers={"X-Auth-Token": cloud.token("secreader")}).status_code == 200


def test_a_wrong_password_is_refused_and_recorded(client: TestClient, cloud: Cloud,
                                                  ks_services: Services) -> None:
    user = cloud.users["bob"]
    response = _form_login(client, method="keystone", username=user.name, password="not-the-password",
                           domain="Default")
    assert response.status_code == 401
    assert "stackwatch_session" not in response.cookies
    assert _audit(ks_services, user.name, "failure")


def test_a_disabled_user_cannot_log_in_and_its_token_stops_working(client: TestClient, cloud: Cloud) -> None:
    carol = cloud.users["carol"]
    token = cloud.token("carol")
    assert _me(client, token)["role"] == "tenant"
    disable(cloud.keystone, carol.id)
    response = _form_login(client, method="keystone", username=carol.name, password=carol.password,
                           domain="Default", project=carol.project or "")
    assert response.status_code == 401
    time.sleep(CACHE + 0.5)
    assert client.get("/api/v1/me", headers={"X-Auth-Token": token}).status_code == 401


def test_a_revoked_token_stops_working_within_the_cache_time(client: TestClient, cloud: Cloud) -> None:
    token = cloud.token("alice")
    assert _me(client, token)["role"] == "tenant"
    cloud.revoke(token)
    deadline = time.monotonic() + CACHE + 1.0
    while time.monotonic() < deadline:
        status = client.get("/api/v1/me", headers={"X-Auth-Token": token}).status_code
        if status == 401:
            break
        time.sleep(0.2)
    assert status == 401


def test_a_session_ends_when_its_token_is_revoked(client: TestClient, cloud: Cloud, ks_app) -> None:  # type: ignore[no-untyped-def]
    user = cloud.users["bob"]
    assert _form_login(client, method="keystone", username=user.name, password=user.password,
                       domain="Default", project=user.project or "").status_code == 303
    assert client.get("/api/v1/me").status_code == 200
    cookie = client.cookies["stackwatch_session"]
    session = ks_app.state.keystone_sessions.get(cookie, key=ks_app.state.settings.session_secret)
    assert session is not None and session.expires <= datetime.now(UTC) + timedelta(hours=8)
    cloud.revoke(session.token)
    time.sleep(CACHE + 0.5)
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/", follow_redirects=False).headers["location"].startswith("/login")


def test_a_session_never_outlives_its_token(client: TestClient, cloud: Cloud, ks_app) -> None:  # type: ignore[no-untyped-def]
    user = cloud.users["secreader"]
    response = _form_login(client, method="keystone", username=user.name, password=user.password,
                           domain="Default", project=cloud.security_project)
    cookie = client.cookies["stackwatch_session"]
    session = ks_app.state.keystone_sessions.get(cookie, key=ks_app.state.settings.session_secret)
    identity = ks_app.state.keystone.check(session.token)
    assert session.expires <= identity.info.expires
    assert int(re.search(r"Max-Age=(\d+)", response.headers["set-cookie"]).group(1)) <= (
        identity.info.expires - datetime.now(UTC)).total_seconds() + 1


def test_failed_keystone_logins_are_rate_limited_like_local_ones(ks_services: Services, cloud: Cloud) -> None:
    app = make_app(ks_services, keystone=_settings(cloud), login_rate=LoginRate(per_ip=100, per_user=3,
                                                                                 window=60))
    user = cloud.users["betavictim"]
    with TestClient(app) as client:
        statuses = [_form_login(client, method="keystone", username=user.name, password="wrong",
                                domain="Default").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert any("rate limited" in s.event.message for s in _audit(ks_services, user.name, "failure"))


def test_a_system_admin_logging_in_without_a_project_gets_the_system_scope(client: TestClient,
                                                                          cloud: Cloud) -> None:
    user = cloud.users["sysadmin"]
    assert _form_login(client, method="keystone", username=user.name, password=user.password,
                       domain="Default").status_code == 303
    assert client.get("/api/v1/me").json()["role"] == "admin"


def test_a_user_with_neither_system_role_nor_default_project_is_refused(client: TestClient,
                                                                         cloud: Cloud) -> None:
    user = cloud.users["bob"]  # member of beta, no default project: nothing to scope to
    response = _form_login(client, method="keystone", username=user.name, password=user.password,
                           domain="Default")
    assert response.status_code == 403
    assert "stackwatch_session" not in response.cookies


def test_bad_x_auth_tokens_are_rate_limited_per_address(ks_services: Services, cloud: Cloud) -> None:
    app = make_app(ks_services, keystone=_settings(cloud), login_rate=LoginRate(per_ip=3, per_user=3,
                                                                                 window=60))
    with TestClient(app) as client:
        statuses = [client.get("/api/v1/me", headers={"X-Auth-Token": f"bad-{n}"}).status_code
                    for n in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_a_bad_x_auth_token_is_refused_and_recorded(client: TestClient, ks_services: Services) -> None:
    response = client.get("/api/v1/alerts", headers={"X-Auth-Token": "gAAAAA-not-a-token"})
    assert response.status_code == 401
    assert _audit(ks_services, "(X-Auth-Token)", "failure")


def test_local_users_still_log_in_beside_keystone(client: TestClient) -> None:
    response = _form_login(client, username="ada", password="ada-admin-password-1")
    assert response.status_code == 303
    assert client.get("/api/v1/me").json()["role"] == "admin"


# -- role mapping ------------------------------------------------------------------------------

@pytest.mark.parametrize(("label", "role"), [
    ("sysadmin", "admin"),      # system-scoped admin
    ("secmember", "responder"),  # member of the security project
    ("secreader", "viewer"),    # reader of the security project
    ("service", "viewer"),      # system reader
    ("alice", "tenant"),        # anything else: its project's view
])
def test_the_default_role_mapping(client: TestClient, cloud: Cloud, label: str, role: str) -> None:
    me = _me(client, cloud.token(label))
    assert me["role"] == role
    assert me["project"] == (cloud.projects["alpha"] if role == "tenant" else None)


def test_a_configured_mapping_replaces_the_defaults(ks_services: Services, cloud: Cloud) -> None:
    from stackwatch.api.keystone_settings import RoleRule

    settings = _settings(cloud, roles=(RoleRule("member", "admin", project=cloud.project_names["alpha"]),))
    with TestClient(make_app(ks_services, keystone=settings, login_rate=GENEROUS)) as client:
        assert _me(client, cloud.token("alice"))["role"] == "admin"
        assert _me(client, cloud.token("secmember"))["role"] == "tenant"


# -- tenant views ------------------------------------------------------------------------------

MARKERS = {"alpha": ("ALPHA-EVENT-MARKER", "ALPHA-ALERT-MARKER", "ALPHA-VM-MARKER"),
           "beta": ("BETA-EVENT-MARKER", "BETA-ALERT-MARKER", "BETA-VM-MARKER")}
INFRA_MARKERS = ("NODE-LOG-MARKER", "INFRA-ALERT-MARKER", "cmp-9")


def _forbidden(cloud: Cloud, ks_services: Services, own: str) -> list[str]:
    other = "beta" if own == "alpha" else "alpha"
    demo_alerts = [a.alert.summary for a in ks_services.store.alerts(AlertQuery(limit=1000))
                   if a.alert.rule.startswith(("t-",)) is False and a.alert.summary]
    # failures and alerts naming a user of another domain (or of none) by name are no tenant's;
    # alpha's latecomer, named by name in Default, is alpha's only
    named = [NAMED_OTHER_DOMAIN_IP, TWIN_IP, "NAMED-TWIN-ALERT-MARKER", "NAMED-NODOMAIN-ALERT-MARKER"]
    if own == "beta":
        named += [NAMED_OWN_IP, "NAMED-OWN-ALERT-MARKER", cloud.users["latecomer"].name]
    return [*MARKERS[other], *INFRA_MARKERS, cloud.projects[other], cloud.users[f"{other}victim"].name,
            f"req-{other}-0000", *demo_alerts[:50], *named]


def _ids(ks_services: Services, cloud: Cloud, own: str) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Path parameters: (others' values, own values) per parameter name."""
    store = ks_services.store
    alerts = {a.alert.project: a.id for a in store.alerts(AlertQuery(limit=1000))}
    other = "beta" if own == "alpha" else "alpha"
    every = store.alerts(AlertQuery(limit=1000))
    infra_alert = next(a.id for a in every if a.alert.title == "INFRA-ALERT-MARKER")
    seqs = {s.event.message.split("-")[0]: s.seq
            for s in store.search_events(EventQuery(text="MARKER", limit=100))}
    others = {"alert_id": [str(alerts[cloud.projects[other]]), str(infra_alert)],
              "seq": [str(seqs[other.upper()]), str(seqs["NODE"])],
              "request_id": [f"req-{other}-0000"]}
    owns = {"alert_id": [str(alerts[cloud.projects[own]])], "seq": [str(seqs[own.upper()])],
            "request_id": [f"req-{own}-0000"]}
    return others, owns


def _probes(cloud: Cloud, other: str) -> list[dict[str, str]]:
    """Query strings that try to widen a tenant's view."""
    project, victim = cloud.projects[other], cloud.users[f"{other}victim"].name
    return [{}, {"q": "*"}, {"q": f"project:{project}"}, {"q": "MARKER"}, {"project": project},
            {"host": "cmp-9"}, {"user": victim}, {"accounts": victim}, {"account": victim},
            {"ip": "203.0.113.22" if other == "beta" else "203.0.113.11"}, {"format": "json"},
            {"histogram": "true", "fields": "true"}, {"status": "open"}, {"after": "0"}]


def _fill(path: str, values: dict[str, list[str]]) -> list[str]:
    names = re.findall(r"\{([^}:]+)(?::[^}]*)?\}", path)
    if not names:
        return [path]
    if any(name not in values for name in names):
        return [_concrete(path)]
    return [re.sub(r"\{[^}]+\}", value, path) for value in values[names[0]]]


@pytest.mark.parametrize("own", ["alpha", "beta"])
def test_no_route_shows_a_tenant_anything_of_another_project_or_the_infrastructure(
        ks_app, client: TestClient, cloud: Cloud, ks_services: Services, own: str) -> None:  # type: ignore[no-untyped-def]
    other = "beta" if own == "alpha" else "alpha"
    headers = {"X-Auth-Token": cloud.token("alice" if own == "alpha" else "bob")}
    forbidden = _forbidden(cloud, ks_services, own)
    others, owns = _ids(ks_services, cloud, own)
    routes = _routes(ks_app)
    assert len(routes) > 30
    answered = 0
    for method, path in routes:
        if path in ("/login", "/healthz", "/logout"):  # public, or the tenant's own session
            continue
        if method != "GET":
            for concrete in _fill(path, {**others}):
                response = client.request(method, concrete, headers=headers, follow_redirects=False)
                assert response.status_code in (403, 404, 405, 422), (method, concrete, response.status_code)
            continue
        for concrete in _fill(path, others):
            for params in _probes(cloud, other):
                response = client.get(concrete, params=params, headers=headers, follow_redirects=False)
                assert response.status_code < 500, (concrete, params, response.text[:300])
                # what the probe itself carries may be echoed (a form keeps its values)
                asked = concrete + json.dumps(params)
                leaked = [m for m in forbidden if m in response.text and m not in asked]
                assert not leaked, (concrete, params, leaked)
                if "{" in path and path != "/search/request/{request_id}":
                    assert response.status_code in (403, 404, 422), (concrete, response.status_code)
                answered += response.status_code == 200
        for concrete in _fill(path, owns):
            response = client.get(concrete, headers=headers, follow_redirects=False)
            assert response.status_code < 500, (concrete, response.text[:300])
            assert not [m for m in forbidden if m in response.text], concrete
    assert answered > 100  # the tenant's own routes answered: the meta-test looked at real pages


@pytest.mark.parametrize("own", ["alpha", "beta"])
@pytest.mark.parametrize(("path", "marker"), [
    ("/api/v1/events", "{OWN}-EVENT-MARKER"),
    ("/api/v1/search?q=*", "{OWN}-EVENT-MARKER"),
    ("/search?q=MARKER", "{OWN}-VM-MARKER"),
    ("/api/v1/alerts", "{OWN}-ALERT-MARKER"),
    ("/alerts", "{OWN}-ALERT-MARKER"),
    ("/", "{OWN}-ALERT-MARKER"),
    ("/activity", "{own}-operator"),
    ("/api/v1/activity", "{own}-operator"),
])
def test_a_tenant_sees_its_own_events_and_alerts(client: TestClient, cloud: Cloud, own: str, path: str,
                                                 marker: str) -> None:
    headers = {"X-Auth-Token": cloud.token("alice" if own == "alpha" else "bob")}
    response = client.get(path, headers=headers)
    assert response.status_code == 200
    assert marker.format(OWN=own.upper(), own=own) in response.text


@pytest.mark.parametrize("own", ["alpha", "beta"])
def test_the_keystone_page_and_export_show_failures_against_the_projects_users_only(
        client: TestClient, cloud: Cloud, own: str) -> None:
    other = "beta" if own == "alpha" else "alpha"
    headers = {"X-Auth-Token": cloud.token("alice" if own == "alpha" else "bob")}
    mine, theirs = cloud.users[f"{own}victim"].name, cloud.users[f"{other}victim"].name
    for path in ("/keystone", "/api/v1/keystone", "/api/v1/keystone/export?format=csv",
                 "/api/v1/keystone/export?format=json"):
        text = client.get(path, headers=headers).text
        assert mine in text and theirs not in text, path
    report = client.get("/api/v1/keystone", headers={"X-Auth-Token": cloud.token("secreader")}).text
    assert mine in report and theirs in report  # operators see both


@pytest.mark.parametrize("path", ["/keystone", "/api/v1/keystone", "/api/v1/keystone/export?format=csv",
                                  "/api/v1/events?user={name}", "/search?q={name}", "/alerts",
                                  "/api/v1/alerts"])
def test_failures_naming_a_projects_user_by_name_and_domain_are_the_projects(
        client: TestClient, cloud: Cloud, ks_services: Services, path: str) -> None:
    # the real keystone named the latecomer by name and domain only (no id): the store holds
    # that failure, and the same name's in another domain, as parsed from its notifications
    named = ks_services.store.search_events(EventQuery(user=cloud.users["latecomer"].name, limit=100))
    by_ip = {s.event.initiator.source_ip: s.event.initiator for s in named}
    assert by_ip[NAMED_OWN_IP].domain == "default" and by_ip[NAMED_OWN_IP].id != cloud.users["latecomer"].id
    assert by_ip[NAMED_OTHER_DOMAIN_IP].domain == cloud.other_domain
    path = path.format(name=cloud.users["latecomer"].name)
    alpha = client.get(path, headers={"X-Auth-Token": cloud.token("alice")}).text
    beta = client.get(path, headers={"X-Auth-Token": cloud.token("bob")}).text
    shown = "NAMED-OWN-ALERT-MARKER" if "alerts" in path else NAMED_OWN_IP
    assert shown in alpha and shown not in beta, path
    for foreign in (NAMED_OTHER_DOMAIN_IP, TWIN_IP, "NAMED-TWIN-ALERT-MARKER", "NAMED-NODOMAIN-ALERT-MARKER"):
        assert foreign not in alpha and foreign not in beta, (path, foreign)
    operators = client.get(path, headers={"X-Auth-Token": cloud.token("secreader")}).text
    assert shown in operators


def test_tenants_are_refused_the_infrastructure_pages(client: TestClient, cloud: Cloud) -> None:
    headers = {"X-Auth-Token": cloud.token("alice")}
    for path in ("/sources", "/api/v1/sources", "/rules", "/integrity", "/silences", "/responses",
                 "/api/v1/integrity"):
        assert client.get(path, headers=headers).status_code == 403, path


def test_an_event_id_of_another_project_is_not_found(client: TestClient, cloud: Cloud,
                                                     ks_services: Services) -> None:
    others, owns = _ids(ks_services, cloud, "alpha")
    headers = {"X-Auth-Token": cloud.token("alice")}
    assert client.get(f"/api/v1/events/{owns['seq'][0]}", headers=headers).status_code == 200
    for seq in others["seq"]:
        assert client.get(f"/api/v1/events/{seq}", headers=headers).status_code == 404


def test_keystone_settings_load_from_the_auth_section(tmp_path: Path) -> None:
    from stackwatch.cli.web import load_web_settings

    secret = tmp_path / "pw"
    secret.write_text("service-password")
    config = tmp_path / "stackwatch.yaml"
    config.write_text(json.dumps({"auth": {"keystone": {
        "url": "https://keystone.example.net:5000/v3", "cache": "20s", "security_project": "sec",
        "service_user": {"name": "stackwatch", "password": f"$file:{secret}"}}}}))
    settings = load_web_settings(str(config), {})
    assert settings.keystone.cache == 20.0 and settings.keystone.service_user.password == "service-password"
