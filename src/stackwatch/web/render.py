"""Rendering pages: one Jinja2 environment (autoescaped), the layout's shared context."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup

from stackwatch.web.timerange import PARAMS, RANGES, TimeWindow, display_zone, time_window

STATIC_DIR: Final = Path(__file__).parent / "static"

NAV: Final = (
    ("/", "Overview"),
    ("/alerts", "Alerts"),
    ("/silences", "Silences"),
    ("/sources", "Sources"),
    ("/keystone", "Keystone access"),
    ("/activity", "Activity"),
    ("/usage", "Usage"),
    ("/search", "Search"),
    ("/rules", "Rules"),
    ("/integrity", "Integrity"),
    ("/cluster", "Cluster"),
    ("/responses", "Responses"),
)
TENANT_PAGES: Final = ("/", "/alerts", "/keystone", "/activity", "/search")
TENANT_NAV: Final = tuple(item for item in NAV if item[0] in TENANT_PAGES)
"""The pages a tenant may open (the others are the infrastructure's and refuse tenants)."""


@pass_context
def _when(context: Context, value: Any) -> Any:
    """A timestamp in the page's display zone, the zone written after it (naive means UTC)."""
    if isinstance(value, str) and value:
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(value, datetime):
        return "–" if value is None else str(value)
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    shown = moment.astimezone(context.get("zone") or UTC)
    return Markup('<time datetime="{}">{} {}</time>').format(
        moment.isoformat(), shown.strftime("%Y-%m-%d %H:%M:%S"), shown.strftime("%Z") or "UTC")


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


def window_link(request: Request, span: str) -> str:
    """The current page over the last ``span`` (``''``: all time), its other parameters kept."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in PARAMS and k != "offset"]
    if span:
        params.append(("range", span))
    return request.url.path + ("?" + urlencode(params) if params else "")


def _seconds(value: float | None) -> str:
    """A short duration (a lag): 240ms, 3.5s; an em dash when unknown."""
    from stackwatch.cluster.status import format_seconds

    return format_seconds(value, "—")


env.globals["with_query"] = with_query
env.globals["seconds"] = _seconds
env.globals["window_link"] = window_link


def _picker(request: Request) -> dict[str, Any]:
    """What the layout's time picker needs: the window asked for (all time when the
    parameters are malformed: the page itself reports that) and the parameters it keeps."""
    honoured = getattr(request.state, "window_honoured", False)
    try:
        window = time_window(request)
    except HTTPException:
        window = TimeWindow()
    request.state.window_honoured = honoured
    keep = [(k, v) for k, v in request.query_params.multi_items() if k not in PARAMS and k != "offset"]
    return {"window": window, "picker_keep": keep, "ranges": RANGES, "window_honoured": honoured}


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    principal = getattr(request.state, "principal", None)
    zone = display_zone(request)
    html = env.get_template(template).render(
        request=request,
        principal=principal,
        csrf=getattr(principal, "csrf", None) or "",
        nav=TENANT_NAV if getattr(principal, "scope", None) is not None else NAV,
        path=request.url.path,
        zone=zone,
        zone_name=str(zone),
        **{**_picker(request), **context},
    )
    return HTMLResponse(html, status_code=status)
