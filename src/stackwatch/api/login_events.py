"""Logins as stackwatch events: every success and failure (local or keystone, form or
``X-Auth-Token``) is stored as a ``stackwatch_audit`` event (action ``authenticate``), so the
monitor's own access is monitored like keystone's."""

from __future__ import annotations

from fastapi import Request

from stackwatch.api.audit import audit_event


def record_login(request: Request, outcome: str, name: str, *, reason: str = "",
                 method: str = "local") -> None:
    ip = request.client.host if request.client else "unknown"
    agent = request.headers.get("user-agent", "")[:200] or None
    message = (
        f"stackwatch login {'failed' if outcome == 'failure' else 'succeeded'} for {name!r} from {ip}"
        + (f" ({method})" if method != "local" else "") + (f": {reason}" if reason else "")
    )
    attrs = {**({"reason": reason} if reason else {}), **({"method": method} if method != "local" else {})}
    request.app.state.services.audit.record(
        audit_event(
            "authenticate",
            actor=name[:256],
            source_ip=ip,
            user_agent=agent,
            outcome=outcome,
            message=message,
            target_type="service",
            target_name="stackwatch",
            attrs=attrs or None,
        )
    )
