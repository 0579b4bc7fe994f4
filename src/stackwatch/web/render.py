"""Rendering pages: one Jinja2 environment (autoescaped), the layout's shared context."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

STATIC_DIR: Final = Path(__file__).parent / "static"

NAV: Final = (
    ("/", "Overview"),
    ("/alerts", "Alerts"),
    ("/silences", "Silences"),
    ("/sources", "Sources"),
    ("/keystone", "Keystone access"),
    ("/activity", "Activity"),
    ("/search", "Search"),
    ("/rules", "Rules"),
    ("/integrity", "Integrity"),
    ("/responses", "Responses"),
)


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:
            return value
    return "–" if value is None else str(value)


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


env = Environment(
    loader=PackageLoader("stackwatch.web", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters["when"] = _when
env.filters["ago"] = _ago


def with_query(request: Request, **changes: Any) -> str:
    """The current page's URL with some query parameters changed (pagers, drill-downs)."""
    params = dict(request.query_params)
    params.update({k: str(v) for k, v in changes.items() if v is not None})
    for k in [k for k, v in changes.items() if v is None]:
        params.pop(k, None)
    return request.url.path + ("?" + urlencode(params) if params else "")


env.globals["with_query"] = with_query


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    principal = getattr(request.state, "principal", None)
    html = env.get_template(template).render(
        request=request,
        principal=principal,
        csrf=getattr(principal, "csrf", None) or "",
        nav=NAV,
        path=request.url.path,
        **context,
    )
    return HTMLResponse(html, status_code=status)
