"""``create_app(settings, services)``: the ASGI app serving the HTTP API (``/api/v1``, with
FastAPI's OpenAPI schema at ``/api/v1/openapi.json``, behind authentication) and the
server-rendered dashboard."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from stackwatch import __version__
from stackwatch.api import routes
from stackwatch.api.auth import NotAuthenticated, Principal, viewer, wants_html
from stackwatch.api.keystone_auth import KeystoneAuth
from stackwatch.api.keystone_sessions import KeystoneSessions
from stackwatch.api.ratelimit import LoginLimiter
from stackwatch.api.services import Services
from stackwatch.api.settings import WebSettings
from stackwatch.core.errors import StoreError
from stackwatch.web.render import STATIC_DIR, render

CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
OPENAPI_URL: Final = "/api/v1/openapi.json"
PUBLIC_PATHS: Final = frozenset({"/healthz", "/login"})
"""Reachable without logging in (plus /static/: the vendored CSS and htmx, nothing private)."""

DESCRIPTION = """HTTP API of stackwatch. Every endpoint but `/healthz` needs authentication:
a bearer API token (`stackwatch user token NAME`), a keystone token in `X-Auth-Token` (when
keystone login is configured), or the dashboard's session cookie (then state-changing
requests also need the `X-CSRF-Token` header). A keystone user of a project that no role
mapping grants more is a tenant: the endpoints it may call answer about its project only.
Roles: viewer (read), responder (acknowledge / resolve / comment / assign alerts, one or
many at once; create and expire silences; run rule vectors), admin (rule changes, deleting silences)."""


class SecurityHeaders(BaseHTTPMiddleware):
    def __init__(self, app: object, tls: bool) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.tls = tls

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        headers = response.headers
        headers["Content-Security-Policy"] = CSP
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "no-referrer"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if not request.url.path.startswith("/static/"):
            headers["Cache-Control"] = "no-store"
        if self.tls:
            headers["Strict-Transport-Security"] = "max-age=31536000"
        return response


def create_app(settings: WebSettings, services: Services) -> FastAPI:
    """The ASGI app. ``services`` stay owned by the caller (close them after serving)."""
    # openapi_url=None: FastAPI's own schema route would be public; ours is behind auth.
    app = FastAPI(
        title="stackwatch",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.services = services
    app.state.limiter = LoginLimiter(settings.login_rate)
    app.state.keystone = None
    app.state.keystone_sessions = None
    if settings.keystone is not None:
        app.state.keystone = KeystoneAuth(settings.keystone, services.data_dir)
        app.state.keystone_sessions = KeystoneSessions(services.users.path)
    app.add_middleware(SecurityHeaders, tls=settings.tls)
    _protect_openapi(app)
    for module in routes.MODULES:
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, exc: NotAuthenticated) -> Response:
        if wants_html(request):
            target = request.url.path
            if request.url.query:
                target += "?" + request.url.query
            return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)
        return JSONResponse({"detail": exc.detail}, status_code=401, headers=exc.headers)

    @app.exception_handler(StoreError)
    async def store_error(request: Request, exc: StoreError) -> Response:
        return _error(request, 400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if wants_html(request):
            return _error(
                request,
                400,
                "invalid request: "
                + "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()),
            )
        return JSONResponse({"detail": exc.errors()}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if wants_html(request) and exc.status_code in (400, 403, 404, 429):
            response = _error(request, exc.status_code, str(exc.detail))
            for name, value in (exc.headers or {}).items():
                response.headers[name] = value
            return response
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    return app


def _error(request: Request, status: int, message: str) -> Response:
    if wants_html(request):
        return render(request, "error.html", status=status, status_code=status, message=message)
    return JSONResponse({"detail": message}, status_code=status)


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


def _protect_openapi(app: FastAPI) -> None:
    """The schema documents the API surface: behind authentication like everything else."""

    @app.get(OPENAPI_URL, include_in_schema=False)
    async def openapi(principal: Annotated[Principal, Depends(viewer)]) -> JSONResponse:
        return JSONResponse(app.openapi())
