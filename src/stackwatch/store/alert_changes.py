"""Alert triage changes (status, assignee) and their admin events, the same for every backend.

Each backend passes its own row update (``set_status``/``set_assignee`` bound to its
connection) and its own admin outbox; this module holds what the change *means*: which
admin event each changed alert gets, with which details. It runs inside the backend's write
transaction, so a changed row and its admin event commit together (or neither does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from stackwatch.core.event import Event
from stackwatch.store.admin import admin_event
from stackwatch.store.base import ALERT_STATUSES, QueryError


def check_status(status: str) -> None:
    """Refuse a status no alert can have, before anything is written."""
    if status not in ALERT_STATUSES:
        raise QueryError(f"status must be one of {ALERT_STATUSES}, got {status!r}")


def change_statuses(
    alert_ids: Sequence[int],
    status: str,
    *,
    actor: str,
    comment: str | None,
    set_status: Callable[[int], bool],
    queue_admin: Callable[[Event], None],
    now: Callable[[], datetime],
) -> list[int]:
    """Set ``status`` on each alert ``set_status`` finds; one ``alert.status`` admin event per
    changed alert. Returns the ids changed (unknown ids are left out, not an error here)."""
    done = []
    for alert_id in alert_ids:
        if set_status(alert_id):
            details: dict[str, Any] = {"alert_id": alert_id, "status": status}
            if comment is not None:
                details["comment"] = comment
            queue_admin(admin_event(actor, "alert.status", f"alert:{alert_id}", details, now=now()))
            done.append(alert_id)
    return done


def change_assignee(
    alert_id: int,
    assignee: str | None,
    *,
    actor: str,
    set_assignee: Callable[[], bool],
    queue_admin: Callable[[Event], None],
    now: Callable[[], datetime],
) -> list[int]:
    """Assign (or, with None, unassign) one alert; an ``alert.assign`` admin event if it exists.
    Returns ``[alert_id]`` when it was changed, else ``[]``."""
    if not set_assignee():
        return []
    queue_admin(admin_event(actor, "alert.assign", f"alert:{alert_id}",
                            {"alert_id": alert_id, "assignee": assignee}, now=now()))
    return [alert_id]
