"""What countermeasures changed, so each can be undone and expired: the ledger of applied state.

One row per action key (``deny_address:address:203.0.113.9``...): what was there before (a
port's security groups, whether the server was locked), what has been done so far (a retry of a
half-done action continues from there and never records the quarantine group as "before"), when
it expires, and whether it was undone. SQLite in the data folder, beside the approval queue.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

APPLIED_FILE: Final = "respond/applied.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS applied (
    key TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    queue_id INTEGER,
    state TEXT NOT NULL DEFAULT '{}',
    applied_at REAL,
    expires_at REAL,
    undone_at REAL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS applied_expiry ON applied (undone_at, expires_at);
CREATE TABLE IF NOT EXISTS refused (key TEXT PRIMARY KEY, at REAL NOT NULL);
"""


@dataclass(slots=True)
class Applied:
    key: str
    action: str
    resource_type: str
    resource_id: str
    queue_id: int | None
    state: dict[str, Any]
    applied_at: float | None  # None: started, not complete
    expires_at: float | None
    undone_at: float | None

    @property
    def active(self) -> bool:
        return self.applied_at is not None and self.undone_at is None


class AppliedLedger:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    @classmethod
    def open(cls, data_dir: str | os.PathLike[str]) -> AppliedLedger:
        return cls(Path(data_dir) / APPLIED_FILE)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> AppliedLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, key: str) -> Applied | None:
        row = self._db.execute("SELECT * FROM applied WHERE key=?", (key,)).fetchone()
        return _row(row) if row is not None else None

    def find(self, queue_id: int) -> Applied | None:
        row = self._db.execute("SELECT * FROM applied WHERE queue_id=?", (queue_id,)).fetchone()
        return _row(row) if row is not None else None

    def begin(self, key: str, action: str, resource_type: str, resource_id: str,
              queue_id: int | None) -> Applied:
        """The row of an action about to run: a new one, or the one a previous (partial or
        undone) run left, whose recorded state is kept."""
        now = time.time()
        with self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO applied (key, action, resource_type, resource_id, queue_id, updated)"
                " VALUES (?,?,?,?,?,?)", (key, action, resource_type, resource_id, queue_id, now))
            if queue_id is not None:
                self._db.execute("UPDATE applied SET queue_id=? WHERE key=?", (queue_id, key))
        item = self.get(key)
        assert item is not None
        return item

    def save(self, item: Applied) -> None:
        """Record progress (called after every step, so a crash or failure loses none of it)."""
        with self._db:
            self._db.execute("UPDATE applied SET state=?, updated=? WHERE key=?",
                             (json.dumps(item.state, sort_keys=True), time.time(), item.key))

    def complete(self, item: Applied, expiry: float) -> None:
        now = time.time()
        item.applied_at, item.undone_at = now, None
        item.expires_at = now + expiry if expiry else None
        with self._db:
            self._db.execute("UPDATE applied SET state=?, applied_at=?, expires_at=?, undone_at=NULL,"
                             " updated=? WHERE key=?", (json.dumps(item.state, sort_keys=True), now,
                                                        item.expires_at, now, item.key))

    def undone(self, item: Applied) -> None:
        """The action was reversed: the next run starts afresh (records the state anew)."""
        now = time.time()
        item.undone_at = now
        with self._db:
            self._db.execute("UPDATE applied SET undone_at=?, state='{}', updated=? WHERE key=?",
                             (now, now, item.key))

    def refuse_once(self, key: str) -> bool:
        """True the first time a refusal (action, target, alert) is seen: it is recorded once."""
        with self._db:
            cursor = self._db.execute("INSERT OR IGNORE INTO refused (key, at) VALUES (?, ?)",
                                      (key, time.time()))
        return bool(cursor.rowcount)

    def expired(self, now: float | None = None) -> list[Applied]:
        rows = self._db.execute(
            "SELECT * FROM applied WHERE undone_at IS NULL AND applied_at IS NOT NULL"
            " AND expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at",
            (time.time() if now is None else now,))
        return [_row(r) for r in rows]

    def active(self) -> list[Applied]:
        rows = self._db.execute("SELECT * FROM applied WHERE undone_at IS NULL AND applied_at IS NOT NULL"
                                " ORDER BY applied_at")
        return [_row(r) for r in rows]


def _row(row: sqlite3.Row) -> Applied:
    return Applied(row["key"], row["action"], row["resource_type"], row["resource_id"], row["queue_id"],
                   json.loads(row["state"]), row["applied_at"], row["expires_at"], row["undone_at"])
