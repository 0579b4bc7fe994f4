"""A cluster partition's checkpoint in the embedded store: the analyzer's detection state
(detect/snapshot.py) and its position (the last batch taken from each collector), written in
the same transaction as the batch's events, so a standby that opens the store after a crash
finds state and events that agree (cluster/analyzer.py).

The row also holds the partition's ownership epoch (store/fencing.py): an analyzer that becomes
the partition's active consumer takes the next one (``claim``), and every write transaction of
its store checks that it is still the current one (``check``), so an analyzer the broker cut
off cannot commit after its successor took over."""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

from stackwatch.store.fencing import PartitionFenced

SCHEMA = """CREATE TABLE IF NOT EXISTS partition_state (
    partition TEXT PRIMARY KEY,
    position BLOB NOT NULL,   -- JSON: {collector: [epoch, last batch seq]}
    state BLOB,               -- detect/snapshot.capture (kept when a commit carries none)
    saved INTEGER NOT NULL,   -- microseconds since the epoch
    epoch INTEGER NOT NULL DEFAULT 0  -- ownership: raised by each analyzer taking the partition
) WITHOUT ROWID"""


def ensure(conn: sqlite3.Connection) -> None:
    """The table, with the epoch column also in a store written before it existed."""
    conn.execute(SCHEMA)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(partition_state)")}
    if "epoch" not in columns:
        conn.execute("ALTER TABLE partition_state ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0")


def save(conn: sqlite3.Connection, partition: str, position: dict[str, Any], state: bytes | None,
         now: int) -> None:
    """Inside the caller's write transaction; ``state`` None keeps the last one."""
    ensure(conn)
    conn.execute("INSERT INTO partition_state (partition, position, state, saved) VALUES (?, ?, ?, ?) "
                 "ON CONFLICT (partition) DO UPDATE SET position = excluded.position, "
                 "state = coalesce(excluded.state, partition_state.state), saved = excluded.saved",
                 (partition, msgspec.json.encode(position), state, now))


def claim(conn: sqlite3.Connection, partition: str, now: int) -> int:
    """Take the partition's next ownership epoch, in a transaction of its own; the new epoch.
    A partition never checkpointed gets a row without state (``load`` still says none)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        ensure(conn)
        conn.execute("INSERT INTO partition_state (partition, position, state, saved, epoch) "
                     "VALUES (?, '{}', NULL, ?, 1) ON CONFLICT (partition) DO UPDATE SET "
                     "epoch = partition_state.epoch + 1", (partition, now))
        epoch = int(conn.execute("SELECT epoch FROM partition_state WHERE partition = ?",
                                 (partition,)).fetchone()[0])
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return epoch


def check(conn: sqlite3.Connection, partition: str, epoch: int) -> None:
    """Inside the caller's write transaction (BEGIN IMMEDIATE: no claim can come between this
    and its commit): PartitionFenced unless ``epoch`` is still the partition's current one."""
    row = conn.execute("SELECT epoch FROM partition_state WHERE partition = ?", (partition,)).fetchone()
    current = None if row is None else int(row[0])
    if current != epoch:
        raise PartitionFenced(partition, epoch, current)


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
