"""Who is calling, and may they: sessions, API tokens, roles, CSRF.

* Browsers log in at ``/login`` and get a session cookie (``stackwatch_session``: HttpOnly,
  SameSite=Strict, Secure when TLS). The server keeps the session (users.db) with its CSRF
  token; every state-changing request made with the cookie must carry that token, as the
  ``csrf_token`` form field or the ``X-CSRF-Token`` header (HTMX sends the header).
* Tools send ``Authorization: Bearer swt_...`` (``stackwatch user token``). A bearer token is
  not sent by the browser on its own, so requests made with one need no CSRF token.
* Roles: viewer (read) < responder (acknowledge, resolve, comment, run rule vectors) <
  admin (rule enable/disable, user changes).

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

from stackwatch.api.users import ROLE_RANK, check_role

SESSION_COOKIE: Final = "stackwatch_session"
LOGIN_COOKIE: Final = "stackwatch_login"  # pre-login CSRF (double submit) for the login form
CSRF_HEADER: Final = "x-csrf-token"
CSRF_FIELD: Final = "csrf_token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})

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
    via: str  # "session" or "token"
    csrf: str | None = None  # the session's CSRF token (sessions only)

    def can(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


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
    """The caller, from a bearer token or the session cookie; CSRF-checked for unsafe methods."""
    users = request.app.state.services.users
    settings = request.app.state.settings
    principal: Principal | None = None
    if bearer is not None:
        found = users.check_token(bearer.credentials)
        if found is None:
            raise NotAuthenticated()  # a bad token is never silently replaced by a cookie
        principal = Principal(found[0].name, found[1], "token")
    elif session:
        current = users.session(session, key=settings.session_secret)
        if current is not None:
            principal = Principal(current.user.name, current.user.role, "session", current.csrf)
    if principal is None:
        raise NotAuthenticated()
    if principal.via == "session" and request.method not in SAFE_METHODS:
        await check_csrf(request, principal.csrf or "")
    request.state.principal = principal
    return principal


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
    """A dependency: the caller, who must hold ``role`` (or a stronger one)."""
    check_role(role)

    async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.can(role):
            raise HTTPException(403, f"the {role} role is needed")
        return principal

    dependency.__name__ = f"require_{role}"
    return dependency


viewer = require("viewer")
responder = require("responder")
admin = require("admin")
