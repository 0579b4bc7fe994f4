"""A cloud in the real keystone for the keystone login tests: a security project, two tenant
projects, users holding each default role, a disabled user, a service user with the system
reader role, and an application credential. Names carry a random suffix, so the shared
keystone (one per session) never sees a name twice."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from tests.producers.keystone_server import Admin, HttpError, Keystone

PASSWORD_LENGTH = 18


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
