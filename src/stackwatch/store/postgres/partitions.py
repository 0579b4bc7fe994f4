"""A cluster partition's checkpoint in the shared PostgreSQL store: the analyzer's detection
state (detect/snapshot.py) and its position (the last batch taken from each collector), keyed
by partition and written inside the writer's transaction that commits the batch's events
(``writer.LogWriter.write``), so a standby of another writer that takes the partition over
finds state and events that agree (cluster/analyzer.py)."""

from __future__ import annotations

from typing import Any, Final

import msgspec
import psycopg

TABLE: Final = """CREATE TABLE IF NOT EXISTS partition_state (
    partition text COLLATE "C" PRIMARY KEY,
    writer integer NOT NULL,           -- the writer (analyzer) that committed it last
    position bytea NOT NULL,           -- JSON: {collectors: {name: [epoch, seq]}, stored, buckets}
    state bytea,                       -- detect/snapshot.capture (kept when a commit carries none)
    saved bigint NOT NULL)             -- microseconds since the epoch"""

_SAVE: Final = (
    b"INSERT INTO partition_state AS t (partition, writer, position, state, saved) "
    b"VALUES (%s, %s, %s, %s, %s) ON CONFLICT (partition) DO UPDATE SET writer = EXCLUDED.writer, "
    b"position = EXCLUDED.position, state = coalesce(EXCLUDED.state, t.state), saved = EXCLUDED.saved")

Staged = tuple[str, dict[str, Any], bytes | None]


def save(conn: psycopg.Connection, writer: int, staged: Staged, now_us: int) -> None:
    """Inside the caller's transaction; a state of None keeps the last one."""
    partition, position, state = staged
    conn.execute(_SAVE, (partition, writer, msgspec.json.encode(position), state, now_us))


def load(conn: psycopg.Connection, partition: str) -> tuple[dict[str, Any], bytes] | None:
    """The partition's last checkpoint, None if it has none."""
    row = conn.execute(b"SELECT position, state FROM partition_state WHERE partition = %s",
                       (partition,)).fetchone()
    if row is None or row[1] is None:
        return None
    return msgspec.json.decode(bytes(row[0])), bytes(row[1])
