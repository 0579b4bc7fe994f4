"""Who is calling, and may they: sessions, API tokens, roles, CSRF.

* Browsers log in at ``/login`` and get a session cookie (``stackwatch_session``: HttpOnly,
  SameSite=Strict, Secure when TLS). The server keeps the session (users.db) with its CSRF
  token; every state-changing request made with the cookie must carry that token, as the
  ``csrf_token`` form field or the ``X-CSRF-Token`` header (HTMX sends the header).
* Tools send ``Authorization: Bearer swt_...`` (``stackwatch user token``). A bearer token is
  not sent by the browser on its own, so requests made with one need no CSRF token.
* Keystone (when ``auth.keystone`` is configured; api/keystone_auth.py): API clients send a
  keystone token as ``X-Auth-Token``; browsers log in with keystone credentials and get a
  session holding the token. Failed tokens count against the login rate limits.
* Roles: tenant (a keystone project's own events and alerts only) < viewer (read) <
  responder (acknowledge, resolve, comment, run rule vectors) < admin (rule enable/disable,
  user changes). A tenant's ``Principal.scope`` goes into every store read it makes.

Every route except ``/healthz``, the login form and the static files depends on
``require(...)``; tests/api/test_security.py enumerates the routes to prove it.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from stackwatch.api.keystone_auth import TENANT, KeystoneIdentity, NotMapped
from stackwatch.api.keystone_client import KeystoneError
from stackwatch.api.users import ROLE_RANK, check_role
from stackwatch.store.scope import Scope

SESSION_COOKIE: Final = "stackwatch_session"
LOGIN_COOKIE: Final = "stackwatch_login"  # pre-login CSRF (double submit) for the login form
CSRF_HEADER: Final = "x-csrf-token"
CSRF_FIELD: Final = "csrf_token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
KEYSTONE_HEADER: Final = "x-auth-token"
PRINCIPAL_RANK: Final = {TENANT: -1, **ROLE_RANK}

cookie_scheme = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="session",
    description="Session cookie set by POST /login (browsers). State-changing "
    "requests also need the session's CSRF token (X-CSRF-Token).",
)
bearer_scheme = HTTPBearer(
    auto_error=False, scheme_name="token", description="API token made with `stackwatch user token NAME`."
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    name: str
    role: str
    via: str  # "session", "token", "keystone" (X-Auth-Token) or "keystone-session"
    csrf: str | None = None  # the session's CSRF token (sessions only)
    scope: Scope | None = None  # a tenant's project: every store read is limited to it

    def can(self, role: str) -> bool:
        return PRINCIPAL_RANK[self.role] >= PRINCIPAL_RANK[role]

    @property
    def tenant(self) -> bool:
        return self.scope is not None


def keystone_principal(identity: KeystoneIdentity, via: str, csrf: str | None = None) -> Principal:
    return Principal(identity.name, identity.role, via, csrf, identity.scope)


class NotAuthenticated(HTTPException):
    """No valid credentials: API callers get 401, browsers are sent to the login page."""

    def __init__(self) -> None:
        super().__init__(401, "authentication required", headers={"WWW-Authenticate": "Bearer"})


def wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/")


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def authenticate(
    request: Request,
    session: Annotated[str | None, Security(cookie_scheme)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> Principal:
    """The caller, from a bearer token, a keystone ``X-Auth-Token`` or the session cookie
    (local or keystone); CSRF-checked for unsafe methods with a cookie."""
    users = request.app.state.services.users
    settings = request.app.state.settings
    principal: Principal | None = None
    keystone_token = request.headers.get(KEYSTONE_HEADER)
    if bearer is not None:
        found = users.check_token(bearer.credentials)
        if found is None:
            raise NotAuthenticated()  # a bad token is never silently replaced by a cookie
        principal = Principal(found[0].name, found[1], "token")
    elif keystone_token is not None:
        principal = await _keystone_token(request, keystone_token)  # never replaced by a cookie either
    elif session:
        current = users.session(session, key=settings.session_secret)
        if current is not None:
            principal = Principal(current.user.name, current.user.role, "session", current.csrf)
        elif request.app.state.keystone is not None:
            principal = await _keystone_session(request, session)
    if principal is None:
        raise NotAuthenticated()
    if principal.via in ("session", "keystone-session") and request.method not in SAFE_METHODS:
        await check_csrf(request, principal.csrf or "")
    request.state.principal = principal
    return principal


async def _keystone_token(request: Request, token: str) -> Principal:
    """The caller of an ``X-Auth-Token`` request. A refused token is a failed login: recorded
    and counted against the address's limit (a token cannot be guessed, but trying is an attack)."""
    from stackwatch.api.login_events import record_login

    keystone, limiter = request.app.state.keystone, request.app.state.limiter
    ip = client_ip(request)
    if keystone is None:
        raise NotAuthenticated()
    account = f"(X-Auth-Token)@{ip}"  # per address: a shared key would let anyone lock everyone out
    wait = limiter.retry_after(ip, account)
    if wait > 0:
        record_login(request, "failure", "(X-Auth-Token)", reason="rate limited", method="keystone token")
        raise HTTPException(429, "too many failed logins", headers={"Retry-After": str(int(wait) + 1)})
    try:
        # keystone is asked in a worker thread: its HTTP call must not hold up the event loop
        identity = await run_in_threadpool(keystone.check, token) if 0 < len(token) <= 4096 else None
    except KeystoneError as exc:
        record_login(request, "failure", "(X-Auth-Token)", reason=f"keystone unavailable: {exc}",
                     method="keystone token")
        raise HTTPException(503, "keystone cannot be reached to check the token") from None
    except NotMapped as exc:
        record_login(request, "failure", identity_name(exc), reason=str(exc), method="keystone token")
        raise HTTPException(403, "this keystone token grants no access to stackwatch") from None
    if identity is None:
        limiter.failed(ip, account)
        record_login(request, "failure", "(X-Auth-Token)", reason="keystone refused the token",
                     method="keystone token")
        raise NotAuthenticated()
    return keystone_principal(identity, "keystone")


def identity_name(exc: NotMapped) -> str:
    return str(exc).partition(":")[0] or "(keystone)"


async def _keystone_session(request: Request, cookie: str) -> Principal | None:
    """The caller of a keystone session: its token re-checked (cached) on every request."""
    state = request.app.state
    current = state.keystone_sessions.get(cookie, key=state.settings.session_secret)
    if current is None:
        return None
    try:
        identity = await run_in_threadpool(state.keystone.check, current.token)
    except KeystoneError:
        raise HTTPException(503, "keystone cannot be reached to check the session") from None
    except NotMapped:
        identity = None
    if identity is None:  # revoked, expired or its user disabled: the session ends with it
        state.keystone_sessions.close_session(cookie, key=state.settings.session_secret)
        return None
    return keystone_principal(identity, "keystone-session", current.csrf)


async def check_csrf(request: Request, expected: str) -> None:
    supplied = request.headers.get(CSRF_HEADER)
    if supplied is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()  # cached by Starlette: the endpoint's Form() params still work
        value = form.get(CSRF_FIELD)
        supplied = value if isinstance(value, str) else None
    if not supplied or not expected or not hmac.compare_digest(supplied, expected):
        raise HTTPException(403, "missing or invalid CSRF token")


def require(role: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller, who must hold ``role`` (or a stronger one). ``tenant`` routes
    are open to tenants too, and must read through the principal's scope."""
    if role != TENANT:
        check_role(role)

    async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.can(role):
            raise HTTPException(403, f"the {role} role is needed")
        return principal

    dependency.__name__ = f"require_{role}"
    return dependency


reader = require(TENANT)
"""Routes every authenticated caller may use, tenants included: their reads are scoped."""
viewer = require("viewer")
responder = require("responder")
admin = require("admin")
