"""Keystone logins: credentials to a token, a token to a stackwatch role and scope.

* The role comes from the mapping rules (api/keystone_settings.py); a project-scoped token
  no rule maps is a **tenant**: it reads its project's events and alerts only, through a
  ``Scope`` (store/scope.py) every store read of the request carries.
* A token is trusted for ``cache`` seconds after keystone last validated it, then asked about
  again: a token revoked in keystone (or its user disabled) stops working within that bound.
  A token past its expiry is never used, whatever the cache says.
* A tenant's scope lists what stackwatch knows belongs to the project: the resources the
  orphan ledger holds for it (``auth.keystone.ledger``: serve's respond/ledger.json) and,
  with a service user, the project's members (re-read every ``cache`` seconds): their ids,
  and their names with their domain, which is how keystone names a user in the failures it
  could not resolve to an id (a name never counts without its domain: names are unique per
  domain only).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from stackwatch.api.keystone_client import KeystoneClient, KeystoneError, ProjectMembers, Refused, TokenInfo
from stackwatch.api.keystone_settings import SECURITY, KeystoneSettings, RoleRule
from stackwatch.api.users import ROLE_RANK
from stackwatch.store.scope import MAX_SCOPE_ITEMS, Scope

TENANT: Final = "tenant"
"""The role of a project-scoped keystone user no mapping rule grants more: its project only."""
MAX_CACHED: Final = 10_000


@dataclass(frozen=True, slots=True)
class KeystoneIdentity:
    """A validated keystone token as stackwatch sees it."""

    info: TokenInfo
    role: str  # "tenant" or one of users.ROLES
    scope: Scope | None  # None: the operators' unrestricted view

    @property
    def name(self) -> str:
        return self.info.display_name


class NotMapped(Exception):
    """The token is valid but grants nothing here (neither mapped nor project-scoped)."""


def rule_matches(rule: RoleRule, info: TokenInfo, settings: KeystoneSettings) -> bool:
    if rule.role not in info.roles or (rule.system and not info.system):
        return False
    if rule.project is not None:
        if info.project_id is None:
            return False
        if rule.project == SECURITY:
            wanted_domain = settings.security_project_domain
            if info.project_id != settings.security_project and not (
                info.project_name == settings.security_project
                and wanted_domain in (info.project_domain, info.project_domain_name)
            ):
                return False
        elif rule.project not in (info.project_id, info.project_name):
            return False
    if rule.domain is not None:
        domain = (info.project_domain, info.project_domain_name) if info.project_id else (
            info.user_domain, info.user_domain_name)
        if rule.domain not in domain:
            return False
    return True


def map_role(info: TokenInfo, settings: KeystoneSettings) -> str:
    """The strongest role the rules grant ``info``; TENANT for a project-scoped token they
    grant nothing; NotMapped otherwise."""
    granted = [rule.grants for rule in settings.roles if rule_matches(rule, info, settings)]
    if granted:
        return max(granted, key=ROLE_RANK.__getitem__)
    if info.project_id:
        return TENANT
    raise NotMapped(f"{info.display_name}: no stackwatch role for this token's roles and scope")


class ProjectResources:
    """Resources and addresses per project, from the orphan ledger's snapshot (re-read when
    the file changes)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._stamp: float | None = None
        self._by_project: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
        self._lock = threading.Lock()

    def of(self, project: str) -> tuple[frozenset[str], frozenset[str]]:
        """(resource ids, addresses) of ``project``."""
        with self._lock:
            self._refresh()
            return self._by_project.get(project, (frozenset(), frozenset()))

    def _refresh(self) -> None:
        if self.path is None:
            return
        try:
            stamp = self.path.stat().st_mtime
        except OSError:
            self._by_project, self._stamp = {}, None
            return
        if stamp == self._stamp:
            return
        from stackwatch.respond.ledger import Ledger

        ledger = Ledger.load(self.path)
        ids: dict[str, set[str]] = {}
        addresses: dict[str, set[str]] = {}
        for resource in ledger.resources():
            if not resource.project:
                continue
            ids.setdefault(resource.project, set()).add(resource.id)
            for key in ("floating_ip_address", "fixed_ip_address"):
                if resource.extra.get(key):
                    addresses.setdefault(resource.project, set()).add(str(resource.extra[key]))
        self._by_project = {
            project: (frozenset(sorted(found)[:MAX_SCOPE_ITEMS]),
                      frozenset(sorted(addresses.get(project, ()))[:MAX_SCOPE_ITEMS]))
            for project, found in ids.items()}
        self._stamp = stamp


class KeystoneAuth:
    """Logins and token checks against one keystone. Thread-safe."""

    def __init__(self, settings: KeystoneSettings, data_dir: Path | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.client = KeystoneClient(settings)
        ledger = settings.ledger or (Path(data_dir) / "respond" / "ledger.json" if data_dir else None)
        self.resources = ProjectResources(ledger)
        self._clock = clock
        self._tokens: OrderedDict[str, tuple[KeystoneIdentity, float]] = OrderedDict()
        self._members: dict[str, tuple[ProjectMembers, float]] = {}
        self._service: tuple[str, TokenInfo] | None = None
        self._lock = threading.Lock()

    # -- logging in ---------------------------------------------------------------------------

    def login_password(self, name: str, password: str, domain: str,
                       project: str | None = None) -> tuple[str, KeystoneIdentity]:
        """Token and identity for a password login, scoped to ``project`` when given. Without
        one: the system scope when the user has a system role, else the user's default
        project (the password is sent once either way: keystone's lockout counts attempts)."""
        if project:
            token, info = self.client.password(name, password, domain, project=project)
            return token, self._remember(token, info)
        token, info = self.client.password(name, password, domain)
        try:
            token, info = self.client.system_scope(token)
        except Refused as exc:
            if exc.status not in (401, 403):
                raise
        return token, self._remember(token, info)

    def login_application_credential(self, credential_id: str, secret: str) -> tuple[str, KeystoneIdentity]:
        token, info = self.client.application_credential(credential_id, secret)
        return token, self._remember(token, info)

    # -- checking tokens ----------------------------------------------------------------------

    def check(self, token: str) -> KeystoneIdentity | None:
        """The identity of ``token`` if keystone accepted it within the last ``cache``
        seconds (else it is asked now); None when it is not (or no longer) valid. Raises
        KeystoneError when keystone cannot be asked (callers fail closed) and NotMapped."""
        key = _digest(token)
        now = self._clock()
        with self._lock:
            cached = self._tokens.get(key)
        if cached is not None and now - cached[1] < self.settings.cache:
            identity = cached[0]
            return identity if identity.info.expires > datetime.now(UTC) else None
        info = self.client.validate(token)
        if info is None:
            with self._lock:
                self._tokens.pop(key, None)
            return None
        return self._remember(token, info)

    def _remember(self, token: str, info: TokenInfo) -> KeystoneIdentity:
        role = map_role(info, self.settings)
        scope = self.scope_for(info) if role == "tenant" else None
        identity = KeystoneIdentity(info, role, scope)
        with self._lock:
            self._tokens[_digest(token)] = (identity, self._clock())
            self._tokens.move_to_end(_digest(token))
            while len(self._tokens) > MAX_CACHED:
                self._tokens.popitem(last=False)
        return identity

    # -- a tenant's scope ---------------------------------------------------------------------

    def scope_for(self, info: TokenInfo) -> Scope:
        assert info.project_id is not None
        resources, addresses = self.resources.of(info.project_id)
        members = self._project_members(info)
        return Scope(info.project_id, users=members.ids, named_users=members.names,
                     resources=resources, addresses=addresses)

    def _project_members(self, info: TokenInfo) -> ProjectMembers:
        """The project's members (ids and names), with the service user; without one, the
        user logging in only."""
        assert info.project_id is not None
        own = ProjectMembers(frozenset({info.user_id}), frozenset({(info.user_name, info.user_domain)}))
        if self.settings.service_user is None:
            return own
        now = self._clock()
        with self._lock:
            cached = self._members.get(info.project_id)
        if cached is None or now - cached[1] >= self.settings.cache:
            try:
                listed = self.client.project_members(self._service_token(), info.project_id)
            except KeystoneError:
                with self._lock:
                    self._service = None  # re-issued on the next try
                raise
            listed = ProjectMembers(frozenset(sorted(listed.ids)[:MAX_SCOPE_ITEMS - 1]),
                                    frozenset(sorted(listed.names)[:MAX_SCOPE_ITEMS - 2]))
            with self._lock:
                self._members[info.project_id] = (listed, now)
            cached = (listed, now)
        return ProjectMembers(cached[0].ids | own.ids, cached[0].names | own.names)

    def _service_token(self) -> str:
        service = self.settings.service_user
        assert service is not None
        with self._lock:
            current = self._service
        if current is not None and (current[1].expires - datetime.now(UTC)).total_seconds() > 60:
            return current[0]
        token, info = self.client.password(service.name, service.password, service.domain, system=True)
        with self._lock:
            self._service = (token, info)
        return token


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
