"""Logging in and out of the dashboard, and ``/api/v1/me``.

The login form is protected against login CSRF by a double-submit token (cookie + hidden
field); failed logins are rate limited per address and per account and recorded in the
store as ``stackwatch_audit`` events (action ``authenticate``, outcome ``failure``)."""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from stackwatch.api.auth import LOGIN_COOKIE, SESSION_COOKIE, Principal, client_ip, reader
from stackwatch.api.keystone_auth import NotMapped
from stackwatch.api.keystone_client import KeystoneError, Refused
from stackwatch.api.keystone_sessions import session_expiry
from stackwatch.api.login_events import record_login
from stackwatch.web.render import render

router = APIRouter()
MAX_FIELD = 256
MAX_SECRET = 1024


def _safe_next(target: str | None) -> str:
    """Only local paths: never an open redirect to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(request: Request, *, error: str = "", status: int = 200, next_url: str = "/") -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request, "login.html", status=status, login_csrf=token, error=error, next_url=_safe_next(next_url),
        keystone=request.app.state.keystone is not None,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        path="/login",
        secure=request.app.state.settings.secure_cookies,
        max_age=3600,
    )
    return response


@router.get("/login", include_in_schema=False)
async def login_form(request: Request, next: str = "/") -> Response:
    return _login_page(request, next_url=next)


@router.post("/login", include_in_schema=False)
def login(
    request: Request,
    username: str = Form("", max_length=MAX_FIELD),
    password: str = Form("", max_length=MAX_FIELD),
    method: str = Form("local", pattern="^(local|keystone|appcred)$"),
    domain: str = Form("Default", max_length=MAX_FIELD),
    project: str = Form("", max_length=MAX_FIELD),
    credential_id: str = Form("", max_length=MAX_FIELD),
    credential_secret: str = Form("", max_length=MAX_SECRET),
    csrf_token: str = Form(""),
    next: str = Form("/"),
) -> Response:
    """Local users (argon2, kept for break-glass access), keystone user + password (+ domain,
    optional project) and keystone application credentials, all rate limited alike."""
    app_state = request.app.state
    settings, limiter = app_state.settings, app_state.limiter
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not csrf_token or not hmac.compare_digest(expected, csrf_token):
        return _login_page(request, error="The form expired; please try again.", status=403, next_url=next)
    if method != "local" and app_state.keystone is None:
        return _login_page(request, error="Keystone login is not configured.", status=400, next_url=next)
    account = credential_id if method == "appcred" else (
        f"{username}@{domain}" if method == "keystone" else username)
    label = {"local": "local", "keystone": "keystone password", "appcred": "application credential"}[method]
    ip = client_ip(request)
    wait = limiter.retry_after(ip, account)
    if wait > 0:
        record_login(request, "failure", account, reason="rate limited", method=label)
        response = _login_page(
            request, error="Too many failed logins; try again later.", status=429, next_url=next
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    if method == "local":
        user = services_of(request).users.verify(username, password)
        if user is None:
            return _failed(request, account, "bad user name or password", label, next)
        limiter.succeeded(ip, account)
        token, _ = services_of(request).users.open_session(
            user.name, key=settings.session_secret, hours=settings.session_hours, source_ip=ip
        )
        record_login(request, "success", user.name)
        return _logged_in(request, token, settings.session_hours * 3600, next)
    try:
        if method == "appcred":
            keystone_token, identity = app_state.keystone.login_application_credential(
                credential_id, credential_secret)
        else:
            keystone_token, identity = app_state.keystone.login_password(
                username, password, domain or "Default", project or None)
    except Refused:
        return _failed(request, account, "keystone refused the credentials", label, next)
    except NotMapped as exc:
        return _failed(request, account, str(exc), label, next, counted=False,
                       shown="Your keystone role and scope give no access to stackwatch.", status=403)
    except KeystoneError as exc:
        record_login(request, "failure", account, reason=f"keystone unavailable: {exc}", method=label)
        return _login_page(request, error="Keystone cannot be reached; try again later.", status=503,
                           next_url=next)
    limiter.succeeded(ip, account)
    expires = session_expiry(identity.info.expires, settings.session_hours)
    cookie, _ = app_state.keystone_sessions.open(
        identity.name, keystone_token, key=settings.session_secret, expires=expires, source_ip=ip)
    record_login(request, "success", identity.name, method=label)
    return _logged_in(request, cookie, (expires - datetime.now(UTC)).total_seconds(), next)


def services_of(request: Request) -> Any:
    return request.app.state.services


def _failed(request: Request, account: str, reason: str, label: str, next_url: str, *, counted: bool = True,
            shown: str = "Wrong user name or password.", status: int = 401) -> Response:
    if counted:
        request.app.state.limiter.failed(client_ip(request), account)
    record_login(request, "failure", account, reason=reason, method=label)
    return _login_page(request, error=shown, status=status, next_url=next_url)


def _logged_in(request: Request, cookie: str, seconds: float, next_url: str) -> Response:
    response = RedirectResponse(_safe_next(next_url), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        httponly=True,
        samesite="strict",
        path="/",
        secure=request.app.state.settings.secure_cookies,
        max_age=max(1, int(seconds)),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout", include_in_schema=False)
def logout(request: Request, principal: Annotated[Principal, Depends(reader)]) -> Response:
    settings = request.app.state.settings
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        request.app.state.services.users.close_session(token, key=settings.session_secret)
        if request.app.state.keystone_sessions is not None:
            request.app.state.keystone_sessions.close_session(token, key=settings.session_secret)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/api/v1/me", tags=["session"], summary="The authenticated caller")
async def me(principal: Annotated[Principal, Depends(reader)]) -> dict[str, Any]:
    return {"name": principal.name, "role": principal.role, "via": principal.via,
            "project": principal.scope.project if principal.scope is not None else None}
