"""``auth.keystone.ca_file`` and ``timeout`` against the real keystone (tests/conftest.py's
session fixture) served over TLS by HAProxy, as a cloud's public endpoint is: the right CA
logs in, a wrong CA or none fails with one clear event (no traceback), and a keystone that
accepts the connection but never answers costs at most the timeout."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from stackwatch.api import Services
from stackwatch.api.keystone_settings import KeystoneSettings
from stackwatch.store.base import EventQuery
from tests.api.conftest import login_form_token, make_app
from tests.api.keystone_cloud import GENEROUS, Cloud, _settings
from tests.producers.fronts import start_haproxy
from tests.servetools import make_certs


@dataclasses.dataclass(frozen=True)
class TlsFront:
    url: str
    ca: Path  # the CA that signed HAProxy's certificate
    other_ca: Path  # a CA that did not


@pytest.fixture(scope="module")
def tls_front(tmp_path_factory: pytest.TempPathFactory, cloud: Cloud) -> Iterator[TlsFront]:
    folder = tmp_path_factory.mktemp("keystone-tls")
    certs, stranger = make_certs(folder / "certs"), make_certs(folder / "other")
    with start_haproxy(folder / "haproxy", cloud.keystone.port,
                       tls=(certs["server_cert"], certs["server_key"])) as front:
        yield TlsFront(f"https://127.0.0.1:{front.port}/v3", certs["ca"], stranger["ca"])


@pytest.fixture()
def services(tmp_path: Path) -> Iterator[Services]:
    services = Services.for_data_dir(tmp_path / "data")
    yield services
    services.close()


def _client(services: Services, settings: KeystoneSettings) -> TestClient:
    return TestClient(make_app(services, keystone=settings, login_rate=GENEROUS))


def _failures(services: Services) -> list[str]:
    found = services.store.search_events(EventQuery(kind="stackwatch_audit", action="authenticate",
                                                    outcome="failure", limit=100))
    return [s.event.message or "" for s in found]


def _form_login(client: TestClient, cloud: Cloud, label: str) -> Any:
    user = cloud.users[label]
    return client.post("/login", follow_redirects=False, data={
        "csrf_token": login_form_token(client), "next": "/", "method": "keystone", "username": user.name,
        "password": user.password, "domain": "Default", "project": user.project or ""})


def test_the_right_ca_file_logs_in_over_tls(cloud: Cloud, tls_front: TlsFront, services: Services) -> None:
    settings = _settings(cloud, ca_file=tls_front.ca)
    settings = dataclasses.replace(settings, url=tls_front.url)
    with _client(services, settings) as client:
        me = client.get("/api/v1/me", headers={"X-Auth-Token": cloud.token("alice")})
        assert me.status_code == 200, me.text
        assert me.json()["role"] == "tenant"
        assert _form_login(client, cloud, "secmember").status_code == 303
        assert client.get("/api/v1/me").json()["role"] == "responder"
    assert _failures(services) == []


@pytest.mark.parametrize("which", ["wrong", "none"])
def test_an_untrusted_certificate_fails_with_one_clear_event(cloud: Cloud, tls_front: TlsFront,
                                                             services: Services, which: str) -> None:
    ca_file = tls_front.other_ca if which == "wrong" else None
    settings = dataclasses.replace(_settings(cloud), url=tls_front.url, ca_file=ca_file)
    with _client(services, settings) as client:
        response = client.get("/api/v1/me", headers={"X-Auth-Token": cloud.token("alice")})
        assert response.status_code == 503, response.text
        [message] = _failures(services)
        expected = f"ca_file {tls_front.other_ca}" if which == "wrong" else "the system's CAs"
        assert "certificate is not trusted" in message and expected in message, message
        assert "Traceback" not in message and "\n" not in message
        page = _form_login(client, cloud, "secmember")
        assert page.status_code == 503 and "Keystone cannot be reached" in page.text
        assert "Traceback" not in page.text
        assert len(_failures(services)) == 2


def test_the_timeout_bounds_a_keystone_that_never_answers(cloud: Cloud, services: Services) -> None:
    # a listening socket that is never accepted from: the connection succeeds (the kernel's
    # backlog takes it) and the request is sent, but no answer ever comes
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        url = f"http://127.0.0.1:{hung.getsockname()[1]}/v3"
        settings = dataclasses.replace(_settings(cloud), url=url, timeout=1.0)
        with _client(services, settings) as client:
            started = time.monotonic()
            response = client.get("/api/v1/me", headers={"X-Auth-Token": "a-token"})
            elapsed = time.monotonic() - started
            assert response.status_code == 503, response.text
            assert 0.9 <= elapsed < 5.0, elapsed
            [message] = _failures(services)
            assert "did not answer within auth.keystone.timeout (1s)" in message, message
            started = time.monotonic()
            assert _form_login(client, cloud, "secmember").status_code == 503
            assert time.monotonic() - started < 5.0
