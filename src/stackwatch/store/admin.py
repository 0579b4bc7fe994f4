"""The monitor's own admin actions as events in the same verifiable log.

Rule changes, alert acknowledgements, responses, retention runs, promotions: each becomes an
event with ``kind="admin"``, ``service="stackwatch"``, ``action`` the admin action (dotted,
e.g. ``alert.status``, ``retention.run``, ``rule.change``, ``response.run``,
``store.promote``), ``initiator.name`` the actor, ``target.name`` what it was done to, and
``attrs`` the details. ``raw`` is the canonical JSON of the action, so the record of what was
done is chained, Merkle-logged, checkpointed and sealed like every other record.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from stackwatch.core.event import Event, Initiator, Target
from stackwatch.store.base import Store

KIND: Final = "admin"
SERVICE: Final = "stackwatch"
ORIGIN: Final = "stackwatch:admin"

AUDIT_SPOOL = "stackwatch-audit.jsonl"
"""Admin/audit events a process could not append itself (another holds the append lock) wait
in this file of the data folder, one Event JSON per line, until the appending process takes them in."""


def admin_event(
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, Any] | None = None,
    *,
    now: datetime | None = None,
    host: str | None = None,
) -> Event:
    """The event describing one admin action."""
    when = now or datetime.now(UTC)
    attrs = dict(details or {})
    raw = orjson.dumps(
        {"actor": actor, "action": action, "target": target, "details": attrs, "time": when.isoformat()},
        option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
        default=str,
    ).decode()
    summary = ", ".join(f"{k}={v}" for k, v in sorted(attrs.items()))
    return Event(
        time=when,
        received=when,
        host=host or socket.gethostname() or "localhost",
        service=SERVICE,
        severity="notice",
        message=f"{actor}: {action} {target}" + (f" ({summary})" if summary else ""),
        kind=KIND,
        action=action,
        outcome="success",
        initiator=Initiator(name=actor),
        target=Target(type=action.split(".")[0], name=target),
        attrs=attrs,
        raw=raw,
        origin=ORIGIN,
        ref=f"admin:{action}",
    )


def record_admin_action(
    store: Store, actor: str, action: str, target: str, details: Mapping[str, Any] | None = None
) -> int | None:
    """Store an admin action in the log; returns its seq once it is in the log.

    The embedded store takes it through its admin outbox: written at once when this process
    is (or can briefly become) the appender, else by the appender at its next commit (None
    is returned then; the action is already durable in the outbox)."""
    return store.record_admin(admin_event(actor, action, target, details))
