"""A cluster partition's checkpoint in the embedded store: the analyzer's detection state
(detect/snapshot.py) and its position (the last batch taken from each collector), written in
the same transaction as the batch's events, so a standby that opens the store after a crash
finds state and events that agree (cluster/analyzer.py)."""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

SCHEMA = """CREATE TABLE IF NOT EXISTS partition_state (
    partition TEXT PRIMARY KEY,
    position BLOB NOT NULL,   -- JSON: {collector: [epoch, last batch seq]}
    state BLOB,               -- detect/snapshot.capture (kept when a commit carries none)
    saved INTEGER NOT NULL    -- microseconds since the epoch
) WITHOUT ROWID"""


def save(conn: sqlite3.Connection, partition: str, position: dict[str, Any], state: bytes | None,
         now: int) -> None:
    """Inside the caller's write transaction; ``state`` None keeps the last one."""
    conn.execute(SCHEMA)
    conn.execute("INSERT INTO partition_state (partition, position, state, saved) VALUES (?, ?, ?, ?) "
                 "ON CONFLICT (partition) DO UPDATE SET position = excluded.position, "
                 "state = coalesce(excluded.state, partition_state.state), saved = excluded.saved",
                 (partition, msgspec.json.encode(position), state, now))


def load(conn: sqlite3.Connection, partition: str) -> tuple[dict[str, Any], bytes] | None:
    """The partition's last checkpoint, None if it has none (a store no analyzer wrote)."""
    try:
        row = conn.execute("SELECT position, state FROM partition_state WHERE partition = ?",
                           (partition,)).fetchone()
    except sqlite3.OperationalError:  # no such table: never checkpointed
        return None
    if row is None or row[1] is None:
        return None
    return msgspec.json.decode(row[0]), bytes(row[1])
