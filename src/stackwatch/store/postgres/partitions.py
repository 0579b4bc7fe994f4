"""A cluster partition's checkpoint in the shared PostgreSQL store: the analyzer's detection
state (detect/snapshot.py) and its position (the last batch taken from each collector), keyed
by partition and written inside the writer's transaction that commits the batch's events
(``writer.LogWriter.write``), so a standby of another writer that takes the partition over
finds state and events that agree (cluster/analyzer.py).

The row also holds the partition's ownership epoch (store/fencing.py): ``claim`` takes the next
one for an analyzer becoming active, ``check`` (first in each of its write transactions, the
row locked until the commit) refuses the commits of one whose epoch was superseded."""

from __future__ import annotations

from typing import Any, Final

import msgspec
import psycopg

from stackwatch.store.fencing import PartitionFenced

TABLE: Final = """CREATE TABLE IF NOT EXISTS partition_state (
    partition text COLLATE "C" PRIMARY KEY,
    writer integer NOT NULL,           -- the writer (analyzer) that committed it last
    position bytea NOT NULL,           -- JSON: {collectors: {name: [epoch, seq]}, stored, buckets}
    state bytea,                       -- detect/snapshot.capture (kept when a commit carries none)
    saved bigint NOT NULL,             -- microseconds since the epoch
    epoch bigint NOT NULL DEFAULT 0)   -- ownership: raised by each analyzer taking the partition"""
EPOCH: Final = "ALTER TABLE partition_state ADD COLUMN IF NOT EXISTS epoch bigint NOT NULL DEFAULT 0"
"""The epoch in a store of schema version 3 (before it existed)."""

_SAVE: Final = (
    b"INSERT INTO partition_state AS t (partition, writer, position, state, saved) "
    b"VALUES (%s, %s, %s, %s, %s) ON CONFLICT (partition) DO UPDATE SET writer = EXCLUDED.writer, "
    b"position = EXCLUDED.position, state = coalesce(EXCLUDED.state, t.state), saved = EXCLUDED.saved")

_CLAIM: Final = (
    b"INSERT INTO partition_state AS t (partition, writer, position, state, saved, epoch) "
    b"VALUES (%s, %s, %s, NULL, %s, 1) ON CONFLICT (partition) DO UPDATE SET epoch = t.epoch + 1 "
    b"RETURNING epoch")

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


def claim(conn: psycopg.Connection, writer: int, partition: str, now_us: int) -> int:
    """The partition's next ownership epoch, in a transaction of its own (a row without state
    for a partition never checkpointed: ``load`` still says none)."""
    with conn.transaction():
        row = conn.execute(_CLAIM, (partition, writer, b"{}", now_us)).fetchone()
    assert row is not None
    return int(row[0])


def check(conn: psycopg.Connection, partition: str, epoch: int) -> None:
    """Inside the caller's transaction: lock the partition's row until the commit (a claim
    waits for it) and raise PartitionFenced unless ``epoch`` is still the current one."""
    row = conn.execute(b"SELECT epoch FROM partition_state WHERE partition = %s FOR UPDATE",
                       (partition,)).fetchone()
    current = None if row is None else int(row[0])
    if current != epoch:
        raise PartitionFenced(partition, epoch, current)
