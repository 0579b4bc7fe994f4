"""Stored events and alerts as JSON-ready dicts (times ISO 8601, UTC)."""

from __future__ import annotations

from typing import Any

import msgspec

from stackwatch.store.base import StoredAlert, StoredEvent


def event_dict(stored: StoredEvent, *, raw: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {"seq": stored.seq, **msgspec.to_builtins(stored.event)}
    if not raw:
        data.pop("raw", None)
    return data


def alert_dict(stored: StoredAlert, *, evidence: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": stored.id,
        **msgspec.to_builtins(stored.alert),
        "updated": stored.updated.isoformat(),
        "assignee": stored.assignee,
        "silenced_by": stored.silenced_by,
    }
    if not evidence:
        data.pop("evidence", None)
    if stored.history:
        data["history"] = [
            {"time": h.time.isoformat(), "actor": h.actor, "status": h.status, "comment": h.comment}
            for h in stored.history
        ]
    return data
