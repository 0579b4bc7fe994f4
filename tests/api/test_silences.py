"""Silences over HTTP: who may create, expire and delete them (API and pages), what they
record (who, why, until when), their audit events in the store, and clear errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from stackwatch.api import Services
from stackwatch.store.base import AlertQuery, EventQuery
from tests.api.conftest import csrf_of, logged_in


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _audit(services: Services, action: str) -> list:  # type: ignore[type-arg]
    return services.store.search_events(EventQuery(kind="stackwatch_audit", action=action, limit=1000))


@pytest.fixture()
def target(triage_services: Services):  # type: ignore[no-untyped-def]
    """An alert to silence: its rule and key."""
    [stored] = triage_services.store.alerts(AlertQuery(category="auth.bruteforce", limit=1))
    return stored


def _create(client: TestClient, token: str, rule: str, key: str, **extra: str):  # type: ignore[no-untyped-def]
    body = {"rule": rule, "key": key, "duration": "2h", "reason": "pen test", **extra}
    return client.post("/api/v1/silences", headers=_auth(token), json=body)


def test_a_responder_silences_a_rule_and_key_for_a_while(triage_app, token_of, target, triage_services) -> None:  # type: ignore[no-untyped-def]  # noqa: E501
    with TestClient(triage_app) as client:
        response = _create(client, token_of("rex"), target.alert.rule, target.alert.key)
    assert response.status_code == 201, response.text
    silence = response.json()
    assert (silence["created_by"], silence["reason"], silence["active"]) == ("rex", "pen test", True)
    ends = datetime.fromisoformat(silence["ends"])
    assert timedelta(minutes=119) < ends - datetime.now(UTC) <= timedelta(hours=2)
    assert triage_services.store.get_alert(target.id).silenced_by == silence["id"]
    created = _audit(triage_services, "silence.create")
    [audited] = [e.event for e in created if e.event.target.id == str(silence["id"])]
    assert audited.initiator.name == "rex" and audited.attrs["reason"] == "pen test"
    assert audited.attrs["rule"] == target.alert.rule and audited.attrs["key"] == target.alert.key


def test_expire_then_delete_are_audited(triage_app, token_of, target, triage_services) -> None:  # type: ignore[no-untyped-def]
    with TestClient(triage_app) as client:
        silence = _create(client, token_of("rex"), target.alert.rule, "198.51.100.1").json()
        expired = client.post(f"/api/v1/silences/{silence['id']}/expire", headers=_auth(token_of("rex")))
        assert expired.status_code == 200 and not expired.json()["active"]
        assert expired.json()["expired_by"] == "rex"
        deleted = client.delete(f"/api/v1/silences/{silence['id']}", headers=_auth(token_of("ada")))
        assert deleted.status_code == 200
        listed = client.get("/api/v1/silences", headers=_auth(token_of("vic"))).json()["silences"]
    assert silence["id"] not in [s["id"] for s in listed]
    for action in ("silence.expire", "silence.delete"):
        assert str(silence["id"]) in {e.event.target.id for e in _audit(triage_services, action)}, action


@pytest.mark.parametrize(("user", "method", "path"), [
    ("vic", "post", "/api/v1/silences"),
    ("vic", "post", "/api/v1/silences/1/expire"),
    ("vic", "delete", "/api/v1/silences/1"),
    ("rex", "delete", "/api/v1/silences/1"),  # deleting is for admins
])
def test_roles_are_checked(triage_app, token_of, user: str, method: str, path: str) -> None:  # type: ignore[no-untyped-def]
    with TestClient(triage_app) as client:
        body = {"rule": "r", "key": "", "duration": "1h", "reason": "x"} if method == "post" else None
        response = client.request(method.upper(), path, headers=_auth(token_of(user)), json=body)
    assert response.status_code == 403


def test_silences_need_authentication(anon: TestClient) -> None:
    assert anon.get("/api/v1/silences").status_code == 401


@pytest.mark.parametrize(("extra", "message"), [
    ({"reason": ""}, "say why"),
    ({"duration": "forever"}, "span like"),
    ({"duration": "91d"}, "at most 90 days"),
    ({"rule": ""}, "rule is required"),
])
def test_bad_silences_are_clear_errors(triage_app, token_of, extra, message) -> None:  # type: ignore[no-untyped-def]
    with TestClient(triage_app) as client:
        response = _create(client, token_of("rex"), extra.pop("rule", "some-rule"), "", **extra)
    assert response.status_code == 400 and message in response.json()["detail"]


def test_expiring_an_unknown_silence_is_404(triage_app, token_of) -> None:  # type: ignore[no-untyped-def]
    with TestClient(triage_app) as client:
        response = client.post("/api/v1/silences/999999/expire", headers=_auth(token_of("rex")))
    assert response.status_code == 404


def test_the_page_creates_lists_and_expires_silences(triage_app, target, triage_services) -> None:  # type: ignore[no-untyped-def]
    with logged_in(triage_app, "rex") as rex:
        form = rex.get("/silences", params={"rule": target.alert.rule, "key": target.alert.key}).text
        assert f'value="{target.alert.rule}"' in form and target.alert.title in form
        form = {"rule": target.alert.rule, "key": "192.0.2.200", "duration": "4h", "reason": "scanner we run",
                "csrf_token": csrf_of(rex)}
        created = rex.post("/silences", data=form)
        assert created.status_code == 200 and "scanner we run" in created.text
        [silence] = [s for s in triage_services.store.silences() if s.reason == "scanner we run"]
        expired = rex.post(f"/silences/{silence.id}/expire", data={"csrf_token": csrf_of(rex)})
        assert expired.status_code == 200
    assert next(s for s in triage_services.store.silences() if s.id == silence.id).expired_by == "rex"


def test_a_viewer_sees_silences_but_no_form(triage_app) -> None:  # type: ignore[no-untyped-def]
    with logged_in(triage_app, "vic") as vic:
        page = vic.get("/silences")
        assert page.status_code == 200 and 'id="new-silence"' not in page.text
        form = {"rule": "r", "duration": "1h", "reason": "x", "csrf_token": csrf_of(vic)}
        denied = vic.post("/silences", data=form)
        assert denied.status_code == 403


def test_the_alert_page_offers_to_silence_it_and_says_when_it_is(triage_app, target, token_of) -> None:  # type: ignore[no-untyped-def]
    with TestClient(triage_app) as client:
        _create(client, token_of("rex"), target.alert.rule, target.alert.key, reason="for the page test")
    with logged_in(triage_app, "rex") as rex:
        page = rex.get(f"/alerts/{target.id}").text
    assert 'id="silence"' in page and f"/silences?rule={target.alert.rule}" in page
    assert 'id="alert-silenced"' in page
