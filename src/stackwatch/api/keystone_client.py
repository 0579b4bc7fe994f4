"""The calls stackwatch makes to keystone v3 (stdlib HTTP: no client library to install).

* ``password`` / ``application_credential``: ``POST /auth/tokens``; the token and what it
  says (user, scope, roles, expiry).
* ``validate``: ``GET /auth/tokens`` with the token as both ``X-Auth-Token`` and
  ``X-Subject-Token`` (keystone's policy lets a token's own subject validate it), so no
  service credentials are needed to check a login. A revoked, expired or disabled user's
  token is answered 401/404: ``None``.
* ``project_members``: role assignments on a project (with the users' names and domains),
  with the service user's token.

Keystone's answers are read with size limits; an unreachable keystone is a ``KeystoneError``
(the login fails closed, it never falls back to trusting a token).
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

from stackwatch.api.keystone_settings import KeystoneSettings
from stackwatch.core.errors import StackwatchError

MAX_BODY: Final = 4 * 1024 * 1024
"""The largest keystone answer read (a token with a big catalog is ~50 KB)."""
MAX_SECRET: Final = 4096


class KeystoneError(StackwatchError):
    """Keystone could not be asked (unreachable, bad TLS, unreadable answer)."""


class Refused(StackwatchError):
    """Keystone refused the credentials or the token (``status``: its HTTP status)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a validated token says."""

    user_id: str
    user_name: str
    user_domain: str  # id
    user_domain_name: str
    expires: datetime
    roles: frozenset[str]
    system: bool = False
    project_id: str | None = None
    project_name: str | None = None
    project_domain: str | None = None  # id
    project_domain_name: str | None = None

    @property
    def display_name(self) -> str:
        return f"{self.user_name}@{self.user_domain_name}"


def token_info(body: Any) -> TokenInfo:
    """A ``TokenInfo`` from keystone's ``{"token": {...}}`` answer."""
    try:
        token = body["token"]
        user = token["user"]
        project = token.get("project") or {}
        return TokenInfo(
            user_id=str(user["id"]), user_name=str(user["name"]),
            user_domain=str(user["domain"]["id"]), user_domain_name=str(user["domain"]["name"]),
            expires=datetime.fromisoformat(str(token["expires_at"]).replace("Z", "+00:00")),
            roles=frozenset(str(r["name"]) for r in token.get("roles") or ()),
            system=bool((token.get("system") or {}).get("all")),
            project_id=str(project["id"]) if project else None,
            project_name=str(project["name"]) if project else None,
            project_domain=str(project["domain"]["id"]) if project else None,
            project_domain_name=str(project["domain"]["name"]) if project else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise KeystoneError(f"unreadable token from keystone: {exc!r}") from exc


@dataclass(frozen=True, slots=True)
class ProjectMembers:
    """A project's users: ids, and (name, domain id) pairs (keystone names a user it could not
    resolve by the name and domain the client sent)."""

    ids: frozenset[str]
    names: frozenset[tuple[str, str]]


class KeystoneClient:
    def __init__(self, settings: KeystoneSettings) -> None:
        self.settings = settings
        self._tls = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)

    def password(self, name: str, password: str, domain: str, *, project: str | None = None,
                 project_domain: str | None = None, system: bool = False) -> tuple[str, TokenInfo]:
        """A token for a user name + password in ``domain`` (a domain name), scoped to
        ``project`` (a name in ``project_domain``, default ``domain``) or to the system."""
        _check(name, password, domain)
        auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": {
            "name": name, "domain": {"name": domain}, "password": password}}}}
        if project:
            auth["scope"] = {"project": {"name": project, "domain": {"name": project_domain or domain}}}
        elif system:
            auth["scope"] = {"system": {"all": True}}
        return self._issue(auth)

    def system_scope(self, token: str) -> tuple[str, TokenInfo]:
        """A system-scoped token for the holder of ``token`` (re-scoping with the token, so a
        user without a system role costs no failed password attempt)."""
        _check(token)
        return self._issue({"identity": {"methods": ["token"], "token": {"id": token}},
                            "scope": {"system": {"all": True}}})

    def application_credential(self, credential_id: str, secret: str) -> tuple[str, TokenInfo]:
        """A token for an application credential (scoped to its project, with its roles)."""
        _check(credential_id, secret)
        return self._issue({"identity": {"methods": ["application_credential"],
                                         "application_credential": {"id": credential_id, "secret": secret}}})

    def validate(self, token: str) -> TokenInfo | None:
        """What ``token`` says, or None when keystone does not accept it (any more)."""
        _check(token)
        try:
            _, body = self._call("GET", "/auth/tokens?nocatalog", None,
                                 {"X-Auth-Token": token, "X-Subject-Token": token})
        except Refused as exc:
            if exc.status in (401, 403, 404):
                return None
            raise KeystoneError(str(exc)) from exc
        return token_info(body)

    def project_members(self, token: str, project_id: str) -> ProjectMembers:
        """The users holding a role on ``project_id`` (directly or through a group): their
        ids, and their names with their domain's id (``include_names``)."""
        _check(token, project_id)
        path = (f"/role_assignments?scope.project.id={quote(project_id)}"
                "&effective&include_names")
        try:
            _, body = self._call("GET", path, None, {"X-Auth-Token": token})
        except Refused as exc:
            raise KeystoneError(f"cannot list the members of project {project_id}: {exc}") from exc
        ids: set[str] = set()
        names: set[tuple[str, str]] = set()
        try:
            for assignment in body.get("role_assignments", ()):
                user = assignment.get("user")
                if not user:
                    continue
                ids.add(str(user["id"]))
                # by the domain's id only, as events carry it (Initiator.domain): a domain's
                # name could be another domain's id ("default")
                name, domain = user.get("name"), (user.get("domain") or {}).get("id")
                if name and domain:
                    names.add((str(name), str(domain)))
        except (AttributeError, KeyError, TypeError) as exc:
            raise KeystoneError(f"unreadable role assignments from keystone: {exc!r}") from exc
        return ProjectMembers(frozenset(ids), frozenset(names))

    def _issue(self, auth: dict[str, Any]) -> tuple[str, TokenInfo]:
        headers, body = self._call("POST", "/auth/tokens?nocatalog", {"auth": auth}, {})
        token = headers.get("x-subject-token")
        if not token:
            raise KeystoneError("keystone issued no X-Subject-Token")
        return token, token_info(body)

    def _call(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[dict[str, str], Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the configured http(s) URL only
            self.settings.url + path, data=data, method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json",
                     "User-Agent": "stackwatch", **headers})
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout,  # noqa: S310
                                        context=self._tls) as response:
                raw = response.read(MAX_BODY + 1)
                answer = {k.lower(): v for k, v in response.headers.items()}
        except urllib.error.HTTPError as exc:
            raise Refused(exc.code, f"keystone answered {exc.code}") from None
        except (OSError, ValueError) as exc:
            raise KeystoneError(self._explain(exc)) from None
        if len(raw) > MAX_BODY:
            raise KeystoneError("keystone's answer is too large")
        try:
            return answer, json.loads(raw) if raw else {}
        except ValueError as exc:
            raise KeystoneError(f"keystone's answer is not JSON: {exc}") from exc

    def _explain(self, exc: BaseException) -> str:
        """One line an operator can act on: an untrusted certificate names the CA file to
        fix, a hung keystone the timeout (urllib wraps both in a URLError)."""
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        where = f"keystone at {self.settings.url}"
        if isinstance(reason, ssl.SSLCertVerificationError):
            trusted = f"auth.keystone.ca_file {self.settings.ca_file}" if self.settings.ca_file \
                else "the system's CAs (no auth.keystone.ca_file)"
            return f"{where}: its TLS certificate is not trusted by {trusted}: {reason.verify_message}"
        if isinstance(reason, ssl.SSLError):
            return f"{where}: TLS failed: {reason}"
        if isinstance(reason, TimeoutError):
            return f"{where} did not answer within auth.keystone.timeout ({self.settings.timeout:g}s)"
        return f"cannot reach {where}: {reason}"


def _check(*values: str) -> None:
    for value in values:
        if not isinstance(value, str) or not value or len(value) > MAX_SECRET:
            raise Refused(400, "credentials must be non-empty and at most 4096 characters")
