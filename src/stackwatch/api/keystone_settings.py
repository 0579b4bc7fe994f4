"""Settings of logging in with keystone credentials: the top-level ``auth:`` section.

::

    auth:
      keystone:
        url: https://keystone.example.net:5000/v3
        ca_file: /etc/ssl/certs/cloud-ca.pem     # omit: the system's CAs
        timeout: 10s                               # each call to keystone
        cache: 30s                                 # a token is re-validated after this long
        security_project: security                 # the security team's project (name or id)
        security_project_domain: Default
        ledger: /var/lib/stackwatch/state/respond/ledger.json   # serve's orphan ledger
        service_user:                              # optional: reads the project's members
          name: stackwatch
          password: $file:/etc/stackwatch/keystone-password
          domain: Default
        roles:                                     # replaces the defaults below when given
          - {role: admin, system: true, grants: admin}
          - {role: member, project: $security, grants: responder}
          - {role: reader, project: $security, grants: viewer}
          - {role: reader, system: true, grants: viewer}

A token is mapped by every rule it satisfies (its roles include ``role``; ``system: true``:
the token is system-scoped; ``project``: its project's name or id, ``$security`` for the
security project; ``domain``: its project's (or, system-scoped, its user's) domain name or
id), and gets the strongest role granted. A project-scoped token no rule maps sees its own
project only (the tenant view); a token neither mapped nor project-scoped is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from stackwatch.api.settings import parse_duration, resolve_secret
from stackwatch.api.users import ROLES
from stackwatch.core.errors import ConfigError

MAX_CACHE: Final = 300.0
"""The longest a validated token may be trusted without asking keystone again (s): a revoked
token must stop working within a bounded time."""
SECURITY: Final = "$security"

FIELDS: Final = {
    "url": "keystone's v3 endpoint, https://host:5000/v3",
    "ca_file": "PEM CA bundle keystone's certificate is checked against (default: the system's)",
    "timeout": "timeout of each call to keystone (default 10s)",
    "cache": f"how long a validated token is trusted before keystone is asked again "
             f"(default 30s, at most {MAX_CACHE:.0f}s)",
    "security_project": "the security team's keystone project (name or id)",
    "security_project_domain": "the domain of security_project when given by name (default Default)",
    "service_user": "{name, password: $file:/path, domain}: a user with the system reader role, to "
                    "list a project's members for the tenant view",
    "ledger": "the orphan ledger snapshot serve keeps (<state_dir>/respond/ledger.json): which "
              "instances, volumes, ports and floating IPs belong to a project (default: "
              "<data>/respond/ledger.json)",
    "roles": "role mapping rules: [{role, system, project, domain, grants}] (see docs/keystone.md)",
}


@dataclass(frozen=True, slots=True)
class RoleRule:
    """Keystone role (and scope conditions) -> a stackwatch role."""

    role: str
    grants: str
    system: bool = False
    project: str | None = None
    domain: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceUser:
    name: str
    password: str = field(repr=False)
    domain: str = "Default"


def default_rules() -> tuple[RoleRule, ...]:
    return (
        RoleRule("admin", "admin", system=True),
        RoleRule("member", "responder", project=SECURITY),
        RoleRule("reader", "viewer", project=SECURITY),
        RoleRule("reader", "viewer", system=True),
    )


@dataclass(frozen=True, slots=True)
class KeystoneSettings:
    url: str
    ca_file: Path | None = None
    timeout: float = 10.0
    cache: float = 30.0
    security_project: str = "security"
    security_project_domain: str = "Default"
    service_user: ServiceUser | None = None
    roles: tuple[RoleRule, ...] = field(default_factory=default_rules)
    ledger: Path | None = None

    @classmethod
    def from_mapping(cls, data: Any, path: str | None = None) -> KeystoneSettings:
        if not isinstance(data, Mapping):
            raise ConfigError("auth.keystone must be a mapping", path, field="auth.keystone")
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            raise ConfigError(f"unknown setting {unknown[0]!r} (known: {', '.join(FIELDS)})", path,
                              field=f"auth.keystone.{unknown[0]}")
        url = data.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ConfigError("url must be keystone's http(s) v3 endpoint", path, field="auth.keystone.url")
        kwargs: dict[str, Any] = {"url": url.rstrip("/")}
        for name in ("ca_file", "ledger"):
            if data.get(name):
                kwargs[name] = Path(str(data[name]))
        for name in ("timeout", "cache"):
            if name in data:
                kwargs[name] = parse_duration(data[name], path, f"auth.keystone.{name}")
        if kwargs.get("cache", 0) > MAX_CACHE:
            raise ConfigError(f"cache must be at most {MAX_CACHE:.0f}s", path, field="auth.keystone.cache")
        if kwargs.get("timeout", 1) <= 0:
            raise ConfigError("timeout must be positive", path, field="auth.keystone.timeout")
        for name in ("security_project", "security_project_domain"):
            if name in data:
                kwargs[name] = _text(data[name], path, name)
        if data.get("service_user") is not None:
            kwargs["service_user"] = _service_user(data["service_user"], path)
        if "roles" in data:
            kwargs["roles"] = _rules(data["roles"], path)
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """The ``auth:`` section: ways to log in besides the local users (which always work)."""

    keystone: KeystoneSettings | None = None

    @classmethod
    def from_mapping(cls, data: Any, path: str | None = None) -> AuthSettings:
        if data is None:
            return cls()
        if not isinstance(data, Mapping) or set(data) - {"keystone"}:
            raise ConfigError("auth takes one setting: keystone", path, field="auth")
        raw = data.get("keystone")
        return cls(KeystoneSettings.from_mapping(raw, path) if raw is not None else None)


def _text(value: Any, path: str | None, name: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 255:
        raise ConfigError(f"{name} must be a name of 1..255 characters", path, field=f"auth.keystone.{name}")
    return value


def _service_user(value: Any, path: str | None) -> ServiceUser:
    if not isinstance(value, Mapping) or set(value) - {"name", "password", "domain"}:
        raise ConfigError("service_user takes name, password and domain", path,
                          field="auth.keystone.service_user")
    return ServiceUser(
        name=_text(value.get("name"), path, "service_user.name"),
        password=resolve_secret(str(value.get("password", "")), path, "auth.keystone.service_user.password"),
        domain=_text(value.get("domain", "Default"), path, "service_user.domain"),
    )


def _rules(value: Any, path: str | None) -> tuple[RoleRule, ...]:
    if not isinstance(value, list):
        raise ConfigError("roles must be a list of rules", path, field="auth.keystone.roles")
    rules = []
    for i, item in enumerate(value):
        where = f"auth.keystone.roles[{i}]"
        if not isinstance(item, Mapping) or set(item) - {"role", "grants", "system", "project", "domain"}:
            raise ConfigError("a rule takes role, grants, system, project and domain", path, field=where)
        if item.get("grants") not in ROLES:
            raise ConfigError(f"grants must be one of {', '.join(ROLES)}", path, field=f"{where}.grants")
        if not isinstance(item.get("role"), str) or not item["role"]:
            raise ConfigError("role must be a keystone role name", path, field=f"{where}.role")
        if not isinstance(item.get("system", False), bool):
            raise ConfigError("system must be true or false", path, field=f"{where}.system")
        rules.append(RoleRule(item["role"], item["grants"], bool(item.get("system", False)),
                              _optional(item.get("project")), _optional(item.get("domain"))))
    return tuple(rules)


def _optional(value: Any) -> str | None:
    return None if value is None else str(value)
