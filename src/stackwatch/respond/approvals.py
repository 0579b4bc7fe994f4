"""The queue of planned response actions, in the data folder (SQLite), with approvals.

Statuses: ``pending`` (waits for an operator), ``approved`` (will run once due), ``rejected``,
``done``, ``failed`` (the next run retries it) and ``cancelled`` (the owner turned out to
exist). Enqueueing is idempotent: the same action on the same resource is queued once, so a
periodic sweep does not pile up duplicates, and a rejected action stays rejected.

The Python API the web UI calls: ``list_pending()``, ``approve(id, actor)``,
``reject(id, actor, reason)``. With a store, each decision is appended to it as an event
(kind ``response``, action ``response.approve`` / ``response.reject``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from stackwatch.core.errors import StackwatchError
from stackwatch.core.event import Event, Initiator, Target
from stackwatch.core.types import EventLog
from stackwatch.respond.policy import PlannedAction

QUEUE_FILE: Final = "respond/actions.sqlite"
STATUSES: Final = ("pending", "approved", "rejected", "done", "failed", "cancelled")
RUNNABLE: Final = ("approved", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    action TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    resource_name TEXT,
    owner_kind TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    step INTEGER NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    due REAL NOT NULL,
    decided_by TEXT,
    decided_at REAL,
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_status ON actions (status, due);
"""


class ApprovalError(StackwatchError):
    """An approval or rejection that cannot be made (unknown id, not pending)."""


@dataclass(frozen=True, slots=True)
class QueuedAction:
    id: int
    planned: PlannedAction
    status: str
    created: datetime
    due: datetime
    decided_by: str | None
    reason: str | None
    attempts: int
    result: str | None

    def to_dict(self) -> dict[str, Any]:
        p = self.planned
        return {"id": self.id, "action": p.action, "resource_type": p.resource_type,
                "resource_id": p.resource_id, "resource_name": p.resource_name, "owner_kind": p.owner_kind,
                "owner_id": p.owner_id, "params": p.params, "status": self.status,
                "created": self.created.isoformat(), "due": self.due.isoformat(),
                "decided_by": self.decided_by, "reason": self.reason, "attempts": self.attempts,
                "result": self.result}


def queue_path(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / QUEUE_FILE


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class ApprovalQueue:
    """Planned actions and their approvals. One SQLite file; safe to open from several
    processes (the CLI and the service) thanks to SQLite's locking."""

    def __init__(self, path: str | os.PathLike[str], *, store: EventLog | None = None,
                 clock: Any = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.store = store
        self.clock = clock
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    @classmethod
    def open(cls, data_dir: str | os.PathLike[str], **options: Any) -> ApprovalQueue:
        return cls(queue_path(data_dir), **options)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ApprovalQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _now(self) -> float:
        return self.clock.now().timestamp() if self.clock is not None else time.time()

    # ------------------------------------------------------------------ planning side

    def enqueue(self, actions: Iterable[PlannedAction], *, approval: bool, grace: float) -> list[int]:
        """Queue ``actions`` (``pending`` when approval is needed, else ``approved``), due after
        ``grace`` seconds. Returns the ids of the newly queued ones; known actions are left as
        they are."""
        now = self._now()
        status = "pending" if approval else "approved"
        added = []
        with self._db:
            for a in actions:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO actions (key, action, resource_type, resource_id, resource_name,"
                    " owner_kind, owner_id, params, step, status, created, due, updated)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (a.key, a.action, a.resource_type, a.resource_id, a.resource_name, a.owner_kind,
                     a.owner_id, json.dumps(a.params, sort_keys=True), a.step, status, now, now + grace, now))
                if cursor.rowcount:
                    added.append(int(cursor.lastrowid or 0))
        return added

    def due(self, now: float | None = None) -> list[QueuedAction]:
        """Runnable actions (approved, or failed before) whose grace period is over, in plan
        order per owner."""
        rows = self._db.execute(
            "SELECT * FROM actions WHERE status IN ('approved', 'failed') AND due <= ?"
            " ORDER BY owner_kind, owner_id, step, id", (self._now() if now is None else now,))
        return [self._row(r) for r in rows]

    def mark(self, action_id: int, status: str, result: str, attempts: int) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with self._db:
            self._db.execute("UPDATE actions SET status=?, result=?, attempts=attempts+?, updated=?"
                             " WHERE id=?", (status, result, attempts, self._now(), action_id))

    # ------------------------------------------------------------------ operator side (CLI, web)

    def actions(self, status: str | None = None) -> list[QueuedAction]:
        if status is None:
            rows = self._db.execute("SELECT * FROM actions ORDER BY id")
        else:
            rows = self._db.execute("SELECT * FROM actions WHERE status=? ORDER BY id", (status,))
        return [self._row(r) for r in rows]

    def list_pending(self) -> list[QueuedAction]:
        """Actions waiting for an operator's decision."""
        return self.actions("pending")

    def get(self, action_id: int) -> QueuedAction | None:
        row = self._db.execute("SELECT * FROM actions WHERE id=?", (action_id,)).fetchone()
        return self._row(row) if row is not None else None

    def approve(self, action_id: int, actor: str) -> QueuedAction:
        """Approve a pending action; it runs at the next run once its grace period is over."""
        return self._decide(action_id, actor, "approved", None)

    def reject(self, action_id: int, actor: str, reason: str) -> QueuedAction:
        """Reject a pending action; it is never run (and never queued again)."""
        if not reason.strip():
            raise ApprovalError("a rejection needs a reason")
        return self._decide(action_id, actor, "rejected", reason)

    def _decide(self, action_id: int, actor: str, status: str, reason: str | None) -> QueuedAction:
        if not actor.strip():
            raise ApprovalError("an approval or rejection needs an actor")
        now = self._now()
        with self._db:
            cursor = self._db.execute(
                "UPDATE actions SET status=?, decided_by=?, decided_at=?, reason=?, updated=?"
                " WHERE id=? AND status='pending'", (status, actor, now, reason, now, action_id))
        item = self.get(action_id)
        if item is None:
            raise ApprovalError(f"no queued action with id {action_id}")
        if not cursor.rowcount:
            raise ApprovalError(f"action {action_id} is {item.status}, not pending")
        if self.store is not None:
            self.store.append_events([decision_event(item, actor, status, reason, _dt(now))])
            self.store.flush()
        return item

    @staticmethod
    def _row(row: sqlite3.Row) -> QueuedAction:
        planned = PlannedAction(row["action"], row["resource_type"], row["resource_id"], row["resource_name"],
                                row["owner_kind"], row["owner_id"], json.loads(row["params"]))
        return QueuedAction(row["id"], planned, row["status"], _dt(row["created"]), _dt(row["due"]),
                            row["decided_by"], row["reason"], row["attempts"], row["result"])


def decision_event(item: QueuedAction, actor: str, status: str, reason: str | None, when: datetime) -> Event:
    verb = "approve" if status == "approved" else "reject"
    p = item.planned
    attrs: dict[str, Any] = {"queue_id": item.id, "planned_action": p.action,
                             "owner": f"{p.owner_kind}:{p.owner_id}"}
    if reason:
        attrs["reason"] = reason
    return Event(time=when, received=when, host="", service="stackwatch", severity="notice",
                 message=f"{actor} {verb}d {p.action} on {p.resource_type} {p.resource_id}"
                         + (f": {reason}" if reason else ""),
                 kind="response", action=f"response.{verb}", outcome="success",
                 initiator=Initiator(name=actor), target=Target(type=p.resource_type, id=p.resource_id,
                                                                name=p.resource_name),
                 attrs=attrs, origin="stackwatch:respond", ref=f"respond:{item.id}:{verb}")
