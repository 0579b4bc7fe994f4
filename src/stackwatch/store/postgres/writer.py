"""One writer's log on PostgreSQL: rows -> blocks -> one transaction per batch.

A batch commits in one transaction: queued admin events (taken with SKIP LOCKED, so two
writers never take the same), the blocks (record format 2: ``integrity.blocks``), the narrow
rows by COPY, this writer's source statistics, its ledger state and, when due, a signed and
sealed checkpoint. The ledger is the integrity layer's (``integrity.block_ledger.BlockLedger``) over
``PGLedgerIO``: nothing here hashes or chains on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import msgspec
import psycopg

from stackwatch.core.event import Event
from stackwatch.store.checkpoints import Checkpointer
from stackwatch.store.integrity import blocks as codec
from stackwatch.store.integrity.block_ledger import BlockLedger
from stackwatch.store.integrity.io import StoredBlock
from stackwatch.store.integrity.records import stored_record
from stackwatch.store.postgres import partitions, ticks
from stackwatch.store.postgres import text as fts
from stackwatch.store.postgres.attempts import PGAttemptFolder
from stackwatch.store.postgres.ids import WRITER_SHIFT
from stackwatch.store.postgres.ledger_io import PGLedgerIO
from stackwatch.store.rows import Row, clean_row, source_stats

_COPY_EVENTS: Final = (
    "COPY events (id, writer, seq, time, received, source, severity, kind, action, outcome, init_name, "
    "init_id, init_project, init_domain, init_ip, target_id, target_name, request_id, words) FROM STDIN")
_NARROW_TEXT: Final = (4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 16, 18)
"""Row positions of the narrow text columns (PostgreSQL text holds no NUL)."""
_STATS: Final = (
    b"INSERT INTO source_stats AS t VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (writer, source) DO UPDATE "
    b"SET first_seen = least(t.first_seen, EXCLUDED.first_seen), "
    b"last_seen = greatest(t.last_seen, EXCLUDED.last_seen), count = t.count + EXCLUDED.count, "
    b"last_received = greatest(t.last_received, EXCLUDED.last_received)")
OUTBOX_BATCH: Final = 1000


def without_nul(row: Row) -> Row:
    """``row`` with NUL in its narrow text columns as U+FFFD (the record then says the same as
    its index row); other columns keep it (they live in the block only)."""
    if not any("\x00" in row[i] for i in _NARROW_TEXT):
        return row
    out = list(row)
    for i in _NARROW_TEXT:
        out[i] = out[i].replace("\x00", "\ufffd")
    return tuple(out)


class LogWriter:
    """The state of this process's log: its number, next seq, ledger and checkpointer."""

    def __init__(self, conn: psycopg.Connection, writer: int, names: dict[int, tuple[str, str]],
                 checkpointer: Checkpointer, decode_rows: Callable[[list[Event], int], list[Row]]) -> None:
        self.conn = conn
        self.writer = writer
        self.io = PGLedgerIO(conn, writer)
        self.ledger = BlockLedger.load(self.io)
        self.next_seq = self.ledger.size + 1
        self.names = names
        self.checkpointer = checkpointer
        self._rows_of = decode_rows
        self._encoder = codec.BlockEncoder()
        self.attempts: PGAttemptFolder | None = None  # the store sets it: written with each batch

    def write(self, rows: list[Row], now_us: int, *, force_checkpoint: bool = False,
              partition: partitions.Staged | None = None,
              fence: tuple[str, int] | None = None) -> list[Row]:
        """Commit ``rows`` (numbered from the ledger's size + 1), queued admin events and a
        cluster partition's checkpoint; the rows as stored. On any error nothing is stored and
        the ledger is as before. ``fence``: the partition and ownership epoch this writer commits
        for (store/fencing.py), checked first when there is anything of it to commit."""
        snap = self.ledger.snapshot()
        made = None
        folder = self.attempts if self.attempts is not None and self.attempts.ready else None
        released = folder.released() if folder is not None else []
        try:
            with self.conn.transaction():
                if fence is not None and (rows or partition is not None):
                    partitions.check(self.conn, *fence)
                rows = rows + self._outbox(self.ledger.size + len(rows) + 1)
                try:
                    with self.conn.transaction():  # a savepoint: a NUL in a column retries clean
                        stored = self._store(rows)
                except psycopg.DataError:
                    self.ledger.restore(snap)
                    stored = self._store([without_nul(clean_row(r)) for r in rows])
                if folder is not None:
                    folder.write(self.conn)
                self.ledger.save(self.io)
                if partition is not None:
                    partitions.save(self.conn, self.writer, partition, now_us)
                cp = self.checkpointer
                if (force_checkpoint and cp.enabled) or cp.due(self.ledger.size, now_us):
                    made = cp.make(self.io, self.ledger.size, self.ledger.root(), now_us)
                if stored:  # last: its lock is held until the commit (ticks.py)
                    ticks.stamp(self.conn, self.writer, stored[0][0], stored[-1][0])
        except BaseException:
            self.ledger.restore(snap)
            if folder is not None and folder.released() is not released:
                folder.rollback(released)  # written in the transaction that failed: again next time
            raise
        if made is not None:
            self.checkpointer.committed(made)
        self.next_seq = self.ledger.size + 1
        return stored

    def _outbox(self, first: int) -> list[Row]:
        taken = self.conn.execute(
            b"DELETE FROM admin_outbox WHERE id IN (SELECT id FROM admin_outbox ORDER BY id "
            b"FOR UPDATE SKIP LOCKED LIMIT %s) RETURNING id, event", (OUTBOX_BATCH,)).fetchall()
        if not taken:
            return []
        events = [msgspec.json.decode(bytes(blob), type=Event) for _, blob in sorted(taken)]
        return self._rows_of(events, first)

    def _store(self, rows: list[Row]) -> list[Row]:
        if not rows:
            return rows
        rows, made = self._blocks(rows)
        self.io.insert_blocks(made)
        base = self.writer << WRITER_SHIFT
        writer = self.writer
        with self.conn.cursor() as cur, cur.copy(_COPY_EVENTS) as copy:
            write = copy.write_row
            for r in rows:
                seq = r[0]
                write((base | seq, writer, seq, r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                       r[10], r[11], r[12], r[15], r[16], r[18], fts.vector(r[19])))
        stats = sorted(source_stats(rows).items())
        with self.conn.cursor() as cur:
            cur.executemany(_STATS, [(writer, source, *s) for source, s in stats])
        return rows

    def _blocks(self, rows: list[Row]) -> tuple[list[Row], list[StoredBlock]]:
        """Rows as stored (cleaned where JSON could not take them) and their blocks, chained."""
        names, ledger, encode = self.names, self.ledger, self._encoder.encode
        out: list[Row] = []
        records: list[bytes] = []
        made: list[StoredBlock] = []
        size, first = 0, rows[0][0]
        for row in rows:
            r, rec = stored_record(row, names)
            out.append(r)
            records.append(rec)
            size += len(rec)
            if size >= codec.BLOCK_BYTES:
                made.append(ledger.add(first, *encode(records)))
                first, size, records = r[0] + 1, 0, []
        if records:
            made.append(ledger.add(first, *encode(records)))
        return out, made
