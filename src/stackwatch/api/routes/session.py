"""Logging in and out of the dashboard, and ``/api/v1/me``.

The login form is protected against login CSRF by a double-submit token (cookie + hidden
field); failed logins are rate limited per address and per account and recorded in the
store as ``stackwatch_audit`` events (action ``authenticate``, outcome ``failure``)."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from stackwatch.api.audit import audit_event
from stackwatch.api.auth import LOGIN_COOKIE, SESSION_COOKIE, Principal, client_ip, viewer
from stackwatch.web.render import render

router = APIRouter()
MAX_FIELD = 256


def _safe_next(target: str | None) -> str:
    """Only local paths: never an open redirect to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(request: Request, *, error: str = "", status: int = 200, next_url: str = "/") -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request, "login.html", status=status, login_csrf=token, error=error, next_url=_safe_next(next_url)
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
    username: str = Form(max_length=MAX_FIELD),
    password: str = Form(max_length=MAX_FIELD),
    csrf_token: str = Form(""),
    next: str = Form("/"),
) -> Response:
    app_state = request.app.state
    services, settings, limiter = app_state.services, app_state.settings, app_state.limiter
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not csrf_token or not hmac.compare_digest(expected, csrf_token):
        return _login_page(request, error="The form expired; please try again.", status=403, next_url=next)
    ip = client_ip(request)
    agent = request.headers.get("user-agent", "")[:200] or None
    wait = limiter.retry_after(ip, username)
    if wait > 0:
        _record(services, "failure", username, ip, agent, reason="rate limited")
        response = _login_page(
            request, error="Too many failed logins; try again later.", status=429, next_url=next
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user = services.users.verify(username, password)
    if user is None:
        limiter.failed(ip, username)
        _record(services, "failure", username, ip, agent, reason="bad user name or password")
        return _login_page(request, error="Wrong user name or password.", status=401, next_url=next)
    limiter.succeeded(ip, username)
    token, _ = services.users.open_session(
        user.name, key=settings.session_secret, hours=settings.session_hours, source_ip=ip
    )
    _record(services, "success", user.name, ip, agent)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        path="/",
        secure=settings.secure_cookies,
        max_age=int(settings.session_hours * 3600),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


def _record(services: Any, outcome: str, name: str, ip: str, agent: str | None, reason: str = "") -> None:
    message = (
        f"stackwatch login {'failed' if outcome == 'failure' else 'succeeded'} for {name!r} from {ip}"
        + (f": {reason}" if reason else "")
    )
    services.audit.record(
        audit_event(
            "authenticate",
            actor=name,
            source_ip=ip,
            user_agent=agent,
            outcome=outcome,
            message=message,
            target_type="service",
            target_name="stackwatch",
            attrs={"reason": reason} if reason else None,
        )
    )


@router.post("/logout", include_in_schema=False)
def logout(request: Request, principal: Annotated[Principal, Depends(viewer)]) -> Response:
    settings = request.app.state.settings
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        request.app.state.services.users.close_session(token, key=settings.session_secret)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/api/v1/me", tags=["session"], summary="The authenticated caller")
async def me(principal: Annotated[Principal, Depends(viewer)]) -> dict[str, str]:
    return {"name": principal.name, "role": principal.role, "via": principal.via}
