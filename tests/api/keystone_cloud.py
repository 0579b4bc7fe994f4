"""A cloud in the real keystone for the keystone login tests: a security project, two tenant
projects, users holding each default role, a disabled user, a service user with the system
reader role, and an application credential. Names carry a random suffix, so the shared
keystone (one per session) never sees a name twice.

Also the module fixtures the keystone tests share (tests/api/test_keystone_login.py and the
Chromium test in tests/web/): the cloud, a store holding both projects' events and alerts
beside the infrastructure's, and the app over it. Import them into a test module."""

from __future__ import annotations

import contextlib
import io
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stackwatch.api import Services
from stackwatch.api.keystone_settings import KeystoneSettings, ServiceUser
from stackwatch.api.settings import LoginRate
from stackwatch.cli.analyze import run_analyze
from stackwatch.core.alert import Alert
from stackwatch.core.event import Event, Initiator, Target
from stackwatch.respond.ledger import Ledger, Resource
from stackwatch.respond.orphans import ledger_path
from tests.api.conftest import make_app, seed, services_over
from tests.producers.keystone_server import Admin, HttpError, Keystone

CACHE = 2.0  # seconds a validated token is trusted: short, so revocation is seen quickly
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
GENEROUS = LoginRate(per_ip=10_000, per_user=10_000, window=60)

PASSWORD_LENGTH = 18
# source addresses of the failures keystone names by user name (tenants_dir): alpha's
# "latecomer" in Default, the same name in another domain, and real same-named users there
NAMED_OWN_IP = "127.0.77.1"
NAMED_OTHER_DOMAIN_IP = "127.0.77.2"
TWIN_IP = "127.0.77.3"


@dataclass
class CloudUser:
    name: str
    id: str
    password: str
    project: str | None = None  # the project name it logs in to (None: system scope)


@dataclass
class Cloud:
    keystone: Keystone
    suffix: str
    projects: dict[str, str] = field(default_factory=dict)  # label -> project id
    project_names: dict[str, str] = field(default_factory=dict)  # label -> name
    users: dict[str, CloudUser] = field(default_factory=dict)
    app_credential: tuple[str, str] = ("", "")  # (id, secret) of alice's, on project alpha
    other_domain: str = ""  # id of a second domain, whose users share names with alpha's

    @property
    def security_project(self) -> str:
        return self.project_names["security"]

    def token(self, label: str) -> str:
        """A fresh keystone token of user ``label`` in its project (or system scope)."""
        user = self.users[label]
        auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": {
            "name": user.name, "domain": {"id": "default"}, "password": user.password}}}}
        auth["scope"] = ({"project": {"name": user.project, "domain": {"id": "default"}}} if user.project
                         else {"system": {"all": True}})
        status, headers, body = self.keystone.client().request("POST", "/v3/auth/tokens", {"auth": auth})
        if status != 201:
            raise HttpError(f"token for {label}: HTTP {status}: {body}")
        return headers["x-subject-token"]

    def revoke(self, token: str) -> None:
        admin = self.keystone.admin()
        status, _, body = admin.client.request("DELETE", "/v3/auth/tokens",
                                               headers={"X-Subject-Token": token})
        if status != 204:
            raise HttpError(f"revoke: HTTP {status}: {body}")


def _role_id(admin: Admin, name: str) -> str:
    status, _, body = admin.client.request("GET", f"/v3/roles?name={name}")
    assert status == 200 and body["roles"], body
    return str(body["roles"][0]["id"])


def _put(admin: Admin, path: str) -> None:
    status, _, body = admin.client.request("PUT", path)
    if status not in (200, 204):
        raise HttpError(f"PUT {path}: HTTP {status}: {body}")


def build_cloud(keystone: Keystone) -> Cloud:
    admin = keystone.admin()
    cloud = Cloud(keystone, secrets.token_hex(3))
    for label in ("security", "alpha", "beta"):
        name = f"{label}-{cloud.suffix}"
        cloud.project_names[label] = name
        cloud.projects[label] = admin.create_project(name)
    roles = {name: _role_id(admin, name) for name in ("admin", "member", "reader")}
    # label: (role, project label or None for the system)
    grants = {"sysadmin": ("admin", None), "secmember": ("member", "security"),
              "secreader": ("reader", "security"), "alice": ("member", "alpha"), "bob": ("member", "beta"),
              "carol": ("member", "alpha"), "service": ("reader", None),
              "alphavictim": ("member", "alpha"), "betavictim": ("member", "beta")}
    for label, (role, project) in grants.items():
        password = secrets.token_urlsafe(PASSWORD_LENGTH)
        name = f"{label}-{cloud.suffix}"
        user_id = admin.create_user(name, password)
        if project is None:
            _put(admin, f"/v3/system/users/{user_id}/roles/{roles[role]}")
        else:
            _put(admin, f"/v3/projects/{cloud.projects[project]}/users/{user_id}/roles/{roles[role]}")
        cloud.users[label] = CloudUser(name, user_id, password,
                                       cloud.project_names[project] if project else None)
    client = keystone.client()
    client.headers = {"X-Auth-Token": cloud.token("alice")}
    status, _, body = client.request("POST", f"/v3/users/{cloud.users['alice'].id}/application_credentials",
                                     {"application_credential": {"name": f"stackwatch-{cloud.suffix}"}})
    if status != 201:
        raise HttpError(f"application credential: HTTP {status}: {body}")
    cloud.app_credential = (str(body["application_credential"]["id"]),
                            str(body["application_credential"]["secret"]))
    return cloud


def disable(keystone: Keystone, user_id: str) -> None:
    admin = keystone.admin()
    status, _, body = admin.client.request("PATCH", f"/v3/users/{user_id}", {"user": {"enabled": False}})
    if status != 200:
        raise HttpError(f"disable: HTTP {status}: {body}")


# -- the shared module fixtures ------------------------------------------------------------------

@pytest.fixture(scope="module")
def cloud(keystone: Keystone) -> Cloud:
    return build_cloud(keystone)


def _settings(cloud: Cloud, **changes: Any) -> KeystoneSettings:
    service = cloud.users["service"]
    return KeystoneSettings(url=cloud.keystone.url, cache=CACHE, security_project=cloud.security_project,
                            service_user=ServiceUser(service.name, service.password, "Default"), **changes)


@pytest.fixture(scope="module")
def tenants_dir(tmp_path_factory: pytest.TempPathFactory, cloud: Cloud) -> Path:
    """The demo scenario (the infrastructure), the real keystone's CADF notifications of
    failed logins against a user of each project, and each project's own events, alerts and
    ledger entries, plus infrastructure markers."""
    data = seed(tmp_path_factory.mktemp("tenants"))
    keystone = cloud.keystone
    keystone.notifications.drain(quiet=0.3)
    for label in ("alphavictim", "betavictim"):
        for _ in range(3):
            assert keystone.client("127.0.0.1").authenticate(cloud.users[label].name, "wrong-password") == 401
    # failures that name the user only (keystone could not resolve the name in the domain the
    # client gave: its CADF initiator is user_name + domain): against "latecomer" of Default
    # before that account existed (it then joins alpha), and against the same name in another
    # domain, which is not alpha's user; then a real same-named user in the other domain whose
    # failed login keystone names by its own id and name
    admin = keystone.admin()
    cloud.other_domain = admin.create_domain(f"other-{cloud.suffix}")
    latecomer = f"latecomer-{cloud.suffix}"
    for source, domain in ((NAMED_OWN_IP, "default"), (NAMED_OTHER_DOMAIN_IP, cloud.other_domain)):
        assert keystone.client(source).authenticate(latecomer, "guess", domain=domain) == 401
    bodies = keystone.notifications.drain()
    # (the accounts' creation and role grants below are the operators' business, not kept)
    password = secrets.token_urlsafe(PASSWORD_LENGTH)
    user_id = admin.create_user(latecomer, password)
    _put(admin, f"/v3/projects/{cloud.projects['alpha']}/users/{user_id}/roles/{_role_id(admin, 'member')}")
    cloud.users["latecomer"] = CloudUser(latecomer, user_id, password, cloud.project_names["alpha"])
    twin = cloud.users["alphavictim"].name
    admin.create_user(twin, secrets.token_urlsafe(PASSWORD_LENGTH), domain_id=cloud.other_domain)
    admin.create_user(latecomer, secrets.token_urlsafe(PASSWORD_LENGTH), domain_id=cloud.other_domain)
    for name in (twin, latecomer):
        keystone.notifications.drain(quiet=0.3)
        assert keystone.client(TWIN_IP).authenticate(name, "wrong", domain=cloud.other_domain) == 401
        bodies += keystone.notifications.drain()
    notifications = data.parent / "notifications.jsonl"
    notifications.write_text("".join(body + "\n" for body in bodies))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        run_analyze([str(notifications)], data=str(data))
    ledger = Ledger()
    for label, vm, ip in (("alpha", "vm-alpha-1", "203.0.113.11"), ("beta", "vm-beta-1", "203.0.113.22")):
        ledger.add(Resource(type="instance", id=vm, project=cloud.projects[label]))
        ledger.add(Resource(type="floatingip", id=f"fip-{label}", project=cloud.projects[label],
                            extra={"floating_ip_address": ip}))
    ledger.save(ledger_path(data))
    services = Services.for_data_dir(data)
    try:
        store = services.store
        events = []
        for i, label in enumerate(("alpha", "beta")):
            marker = label.upper()
            project = cloud.projects[label]
            events += [
                Event(time=T0 + timedelta(minutes=i), received=T0, host="ctl-1", service="nova", kind="cadf",
                      action="create", outcome="success", message=f"{marker}-EVENT-MARKER server created",
                      initiator=Initiator(name=f"{label}-operator", project=project),
                      target=Target(type="compute/server", id=f"vm-{label}-1"),
                      request_id=f"req-{label}-0000"),
                Event(time=T0 + timedelta(minutes=2 + i), received=T0, host=f"vm-{label}-1", service="sshd",
                      kind="syslog", message=f"{marker}-VM-MARKER ssh from floating ip",
                      initiator=Initiator(source_ip="203.0.113.11" if label == "alpha" else "203.0.113.22")),
            ]
        events.append(Event(time=T0 + timedelta(minutes=5), received=T0, host="cmp-9", service="kernel",
                            kind="syslog", message="NODE-LOG-MARKER kernel oops on a compute node"))
        store.append_events(events)
        store.upsert_alerts([
            Alert(rule="t-alpha", title="ALPHA-ALERT-MARKER", category="test.tenant", severity="high",
                  time=T0, last_seen=T0, key="a1", project=cloud.projects["alpha"]),
            Alert(rule="t-beta", title="BETA-ALERT-MARKER", category="test.tenant", severity="high",
                  time=T0, last_seen=T0, key="b1", project=cloud.projects["beta"]),
            # alerts naming a user by name: alpha's latecomer in Default is alpha's; the same
            # name in the other domain, or with no domain recorded, is no tenant's
            Alert(rule="t-named", title="NAMED-OWN-ALERT-MARKER", category="test.tenant", severity="high",
                  time=T0, last_seen=T0, key="n1", user=cloud.users["latecomer"].name,
                  details={"user_domain": "default"}),
            Alert(rule="t-named", title="NAMED-TWIN-ALERT-MARKER", category="test.tenant", severity="high",
                  time=T0, last_seen=T0, key="n2", user=cloud.users["latecomer"].name,
                  details={"user_domain": cloud.other_domain}),
            Alert(rule="t-named", title="NAMED-NODOMAIN-ALERT-MARKER", category="test.tenant",
                  severity="high", time=T0, last_seen=T0, key="n3", user=cloud.users["latecomer"].name),
            Alert(rule="t-node", title="INFRA-ALERT-MARKER", category="test.node", severity="high",
                  time=T0, last_seen=T0, key="cmp-9", host="cmp-9"),
        ])
        store.flush()
    finally:
        services.close()
    return data


@pytest.fixture(scope="module")
def ks_services(tenants_dir: Path) -> Iterator[Services]:
    services = services_over(tenants_dir)
    yield services
    services.close()


@pytest.fixture(scope="module")
def ks_app(ks_services: Services, cloud: Cloud):  # type: ignore[no-untyped-def]
    return make_app(ks_services, keystone=_settings(cloud), login_rate=GENEROUS)
