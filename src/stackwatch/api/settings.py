"""Settings of the web server and API, declared once with their help text.

Read from the ``web:`` mapping of the configuration file (or built in code/tests)::

    web:
      listen: 127.0.0.1:8443
      tls_cert: /etc/stackwatch/tls/cert.pem
      tls_key: /etc/stackwatch/tls/key.pem
      session_secret: $file:/etc/stackwatch/session.key   # or $env:STACKWATCH_SESSION_SECRET
      session_hours: 8
      cookie_secure: auto          # auto: Secure when TLS is on; true/false to force
      login_rate: {per_ip: 10, per_user: 5, window: 5m}
      privileged_accounts: [admin, root, cloud_admin]
      silent_after: 15m

The sources that must be writing are the file's top-level ``expected_sources:`` (one list for
``serve``'s silence detection and the sources page); ``web: expected_sources`` is refused with
a pointer there.

Secrets are references, never literals: ``$env:NAME`` or ``$file:/path`` (style rule 9).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from stackwatch.core.errors import ConfigError

DEFAULT_LISTEN: Final = "127.0.0.1:8443"
DEFAULT_PRIVILEGED: Final = (
    "admin",
    "root",
    "cloud_admin",
    "cloud-admin",
    "keystone",
    "nova",
    "neutron",
    "glance",
    "cinder",
    "placement",
    "heat",
    "octavia",
    "swift",
)
"""Accounts the keystone page marks as privileged unless configured: the admin account and
the service users every OpenStack deployment creates (their passwords unlock the whole cloud)."""

FIELDS: Final = {
    "listen": "host:port to listen on (IPv6 as [::1]:8443)",
    "tls_cert": "PEM certificate file; with tls_key, serve HTTPS",
    "tls_key": "PEM private key file",
    "session_secret": "secret keying session ids: $env:NAME or $file:/path (random per process when unset)",
    "session_hours": "hours a login session lasts",
    "cookie_secure": "auto (Secure when TLS), true or false",
    "login_rate": "failed-login limits: {per_ip, per_user, window}",
    "privileged_accounts": "keystone accounts marked privileged on the keystone page",
    "silent_after": "a source with no event for this long (before the newest event) is silent",
    "expected_sources": "moved to the top-level expected_sources: section",
    "max_page": "most rows one API page returns",
}

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)?$")
_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any, path: str | None = None, name: str = "") -> float:
    """Seconds from 90, "90s", "5m", "2h", "1d"."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    match = _DURATION.match(str(value).strip()) if isinstance(value, str) else None
    if match is None:
        raise ConfigError(f"bad duration {value!r} (use seconds or 30s, 5m, 2h, 1d)", path, field=name)
    return float(match.group(1)) * _UNITS[match.group(2)]


def resolve_secret(reference: str, path: str | None = None, name: str = "session_secret") -> str:
    """The secret a ``$env:NAME`` / ``$file:/path`` reference names. Literals are refused so
    that secrets never end up in configuration files or the repository."""
    if reference.startswith("$env:"):
        value = os.environ.get(reference[5:])
        if not value:
            raise ConfigError(f"environment variable {reference[5:]} is not set", path, field=name)
        return value
    if reference.startswith("$file:"):
        try:
            value = Path(reference[6:]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read secret file: {exc}", path, field=name) from exc
        if not value:
            raise ConfigError(f"secret file {reference[6:]} is empty", path, field=name)
        return value
    raise ConfigError("secrets must be references: $env:NAME or $file:/path", path, field=name)


@dataclass(frozen=True, slots=True)
class LoginRate:
    per_ip: int = 10  # failed logins per client address within ``window``
    per_user: int = 5  # failed logins per account within ``window``
    window: float = 300.0


@dataclass(frozen=True, slots=True)
class WebSettings:
    """Everything the web server needs; see the module docstring and FIELDS."""

    listen: str = DEFAULT_LISTEN
    tls_cert: Path | None = None
    tls_key: Path | None = None
    session_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    session_hours: float = 8.0
    cookie_secure: bool | None = None  # None: follow TLS
    login_rate: LoginRate = LoginRate()
    privileged_accounts: tuple[str, ...] = DEFAULT_PRIVILEGED
    silent_after: float = 900.0
    expected_sources: tuple[tuple[str, str], ...] = ()
    max_page: int = 500
    keystone: Any = None
    """api.keystone_settings.KeystoneSettings: keystone logins (from the top-level ``auth:``
    section, not ``web:``); None: local users only."""
    cluster: Any = None
    """config.settings.ClusterSettings: the top-level ``cluster:`` section (the Cluster page reads
    the broker with it); None: no cluster configured."""

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None and self.tls_key is not None

    @property
    def secure_cookies(self) -> bool:
        return self.tls if self.cookie_secure is None else self.cookie_secure

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, path: str | None = None) -> WebSettings:
        """Settings from a config mapping; unknown keys and bad values are ConfigErrors naming
        ``path`` and the field."""
        data = dict(data or {})
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            raise ConfigError(
                f"unknown setting {unknown[0]!r} (known: {', '.join(FIELDS)})", path, field=unknown[0]
            )
        kwargs: dict[str, Any] = {}
        if "listen" in data:
            kwargs["listen"] = _listen(data["listen"], path)
        for name in ("tls_cert", "tls_key"):
            if data.get(name):
                kwargs[name] = Path(str(data[name]))
        if ("tls_cert" in kwargs) != ("tls_key" in kwargs):
            raise ConfigError("tls_cert and tls_key go together", path, field="tls_cert")
        if data.get("session_secret"):
            kwargs["session_secret"] = resolve_secret(str(data["session_secret"]), path)
        if "session_hours" in data:
            kwargs["session_hours"] = _positive(data["session_hours"], path, "session_hours")
        if "cookie_secure" in data:
            value = data["cookie_secure"]
            if value not in ("auto", True, False):
                raise ConfigError("cookie_secure must be auto, true or false", path, field="cookie_secure")
            kwargs["cookie_secure"] = None if value == "auto" else value
        if "login_rate" in data:
            kwargs["login_rate"] = _login_rate(data["login_rate"], path)
        if "privileged_accounts" in data:
            accounts = data["privileged_accounts"]
            if not isinstance(accounts, list) or not all(isinstance(a, str) for a in accounts):
                raise ConfigError(
                    "privileged_accounts must be a list of names", path, field="privileged_accounts"
                )
            kwargs["privileged_accounts"] = tuple(accounts)
        if "silent_after" in data:
            kwargs["silent_after"] = parse_duration(data["silent_after"], path, "silent_after")
        if "expected_sources" in data:
            raise ConfigError(
                "moved: list the expected sources once, in the top-level `expected_sources:` section "
                "(serve's silence detection and the sources page both read it); remove it from `web:`",
                path, field="expected_sources")
        if "max_page" in data:
            kwargs["max_page"] = int(_positive(data["max_page"], path, "max_page"))
        return cls(**kwargs)


def _listen(value: Any, path: str | None) -> str:
    text = str(value)
    _, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"listen must be host:port, got {text!r}", path, field="listen")
    return text


def _positive(value: Any, path: str | None, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{name} must be a positive number", path, field=name)
    return float(value)


def _login_rate(value: Any, path: str | None) -> LoginRate:
    if not isinstance(value, Mapping) or set(value) - {"per_ip", "per_user", "window"}:
        raise ConfigError("login_rate takes per_ip, per_user and window", path, field="login_rate")
    return LoginRate(
        per_ip=int(_positive(value.get("per_ip", 10), path, "login_rate.per_ip")),
        per_user=int(_positive(value.get("per_user", 5), path, "login_rate.per_user")),
        window=parse_duration(value.get("window", 300), path, "login_rate.window"),
    )


