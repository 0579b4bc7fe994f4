"""A store seeded through the real pipeline (a generated multi-host scenario analyzed by
``run_analyze``), users of every role, and logged-in HTTP clients."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from stackwatch.api import Services, WebSettings, create_app
from stackwatch.api.settings import LoginRate
from stackwatch.cli.analyze import run_analyze
from stackwatch.scenario import demo_dataset

TEST_RULES = Path(__file__).parent / "rules"
PASSWORDS = {"ada": "ada-admin-password-1", "rex": "rex-responder-pass-2", "vic": "vic-viewer-password-3"}
ROLES = {"ada": "admin", "rex": "responder", "vic": "viewer"}


def seed(root: Path, store: str | None = None) -> Path:
    """A data folder under ``root``: the demo scenario (keystone brute force, spraying...)
    through the pipeline, into the folder's own store or the shared store at ``store``."""
    logs = demo_dataset(root / "logs", seed=7)
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        result = run_analyze([str(logs)], data=store or str(data), rules=(str(TEST_RULES),))
    assert result.alerts, "the seeded scenario must raise alerts"
    return data


def services_over(data: Path, store: str | None = None) -> Services:
    """Services over ``data`` (and the shared store at ``store``) with the users of every role."""
    services = Services.for_data_dir(data, rule_paths=[TEST_RULES], store=store)
    for name, password in PASSWORDS.items():
        if services.users.get(name) is None:
            services.users.add(name, password, ROLES[name])
    return services


@pytest.fixture(scope="session")
def seeded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="session")
def services(seeded_dir: Path) -> Iterator[Services]:
    services = services_over(seeded_dir)
    yield services
    services.close()


def make_app(services: Services, **settings: object):  # type: ignore[no-untyped-def]
    return create_app(WebSettings(**settings), services)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def app(services: Services):  # type: ignore[no-untyped-def]
    # Generous limits: the shared app serves many logins; the rate-limit tests build their own.
    return make_app(services, login_rate=LoginRate(per_ip=1000, per_user=1000, window=60))


def login_form_token(client: TestClient) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


def log_in(client: TestClient, name: str, password: str | None = None) -> TestClient:
    token = login_form_token(client)
    response = client.post(
        "/login",
        data={"username": name, "password": password or PASSWORDS[name], "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


def csrf_of(client: TestClient) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/alerts").text)
    assert match
    return match.group(1)


@pytest.fixture()
def anon(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="http://testserver") as client:
        yield client


@pytest.fixture()
def admin(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        yield log_in(client, "ada")


@pytest.fixture()
def responder(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        yield log_in(client, "rex")


@pytest.fixture()
def viewer(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        yield log_in(client, "vic")


@pytest.fixture()
def viewer_token(services: Services) -> str:
    return services.users.create_token("vic", "tests")[0]


@pytest.fixture()
def responder_token(services: Services) -> str:
    return services.users.create_token("rex", "tests")[0]


@pytest.fixture(scope="module")
def triage_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """A store of its own per test module, for tests that change many alerts at once."""
    services = services_over(seed(tmp_path_factory.mktemp("triage")))
    yield services
    services.close()


@pytest.fixture(scope="module")
def triage_app(triage_services: Services):  # type: ignore[no-untyped-def]
    return make_app(triage_services, login_rate=LoginRate(per_ip=1000, per_user=1000, window=60))


@contextlib.contextmanager
def logged_in(app, name: str) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        yield log_in(client, name)


@pytest.fixture()
def token_of(triage_services: Services):  # type: ignore[no-untyped-def]
    """An API token of a user of the module's own store: ``token_of("rex")``."""
    return lambda name: triage_services.users.create_token(name, "tests")[0]


# The keystone tests' module fixtures (a cloud in the real keystone, both projects' store, the app).
from tests.api.keystone_cloud import cloud, ks_app, ks_services, tenants_dir  # noqa: E402, F401
