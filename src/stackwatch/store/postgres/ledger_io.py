"""``LedgerIO`` (store/integrity/io.py) on PostgreSQL: one writer's log.

Every row is keyed by the writer's number, so the integrity layer (ledger, verification,
proofs) runs unchanged on one writer's blocks, state, Merkle nodes and checkpoints while
other writers append theirs to the same tables. Writes run in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final

import psycopg

from stackwatch.core.errors import StoreError
from stackwatch.store.integrity.io import CheckpointRow, StoredBlock
from stackwatch.store.merkle import MerkleAccumulator

_SELECT_BLOCKS: Final = "SELECT number, first_seq, count, digests, data, chain FROM blocks "
_BATCH: Final = 64  # blocks fetched a round trip while walking a log (8 MiB at 128 KiB a block)


class PGLedgerIO:
    """See ``io.LedgerIO``; ``writer`` is the number of the log read and written."""

    def __init__(self, conn: psycopg.Connection, writer: int) -> None:
        self.conn = conn
        self.writer = writer

    def _one(self, query: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        return self.conn.execute(query.encode(), params).fetchone()

    def load_state(self) -> tuple[int, bytes, bytes | None]:
        row = self._one("SELECT size, head, merkle FROM ledger_state WHERE writer = %s", (self.writer,))
        if row is None:
            raise StoreError(f"writer {self.writer} has no ledger state row")
        return int(row[0]), bytes(row[1]), bytes(row[2]) if row[2] else None

    def save_state(
        self, size: int, head: bytes, merkle: bytes, nodes: Sequence[tuple[int, int, bytes]]
    ) -> None:
        if nodes:
            with self.conn.cursor() as cur:
                cur.executemany(
                    b"INSERT INTO merkle_nodes VALUES (%s, %s, %s, %s) "
                    b"ON CONFLICT (writer, level, idx) DO UPDATE SET hash = EXCLUDED.hash",
                    [(self.writer, level, index, h) for level, index, h in nodes],
                )
        self.conn.execute(
            b"UPDATE ledger_state SET size = %s, head = %s, merkle = %s WHERE writer = %s",
            (size, head, merkle, self.writer),
        )

    def anchor(self) -> bytes | None:
        return None  # a PostgreSQL log starts new: no format 1 history to continue

    def insert_blocks(self, blocks: Sequence[StoredBlock]) -> None:
        if not blocks:
            return
        with self.conn.cursor() as cur, cur.copy(
            "COPY blocks (writer, number, first_seq, count, digests, data, chain) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int4", "int8", "int8", "int4", "bytea", "bytea", "bytea"])
            for b in blocks:
                copy.write_row((self.writer, b.number, b.first_seq, b.count, b.digests, b.data, b.chain))

    def blocks(self, first: int = 1, last: int | None = None) -> Iterator[StoredBlock]:
        high = last if last is not None else 2**62
        low = first
        while low <= high:
            rows = self.conn.execute(
                (_SELECT_BLOCKS + "WHERE writer = %s AND number BETWEEN %s AND %s "
                 "ORDER BY number LIMIT %s").encode(),
                (self.writer, low, high, _BATCH),
            ).fetchall()
            for row in rows:
                yield _block(row)
            if len(rows) < _BATCH:
                return
            low = int(rows[-1][0]) + 1

    def block_of(self, seq: int) -> StoredBlock | None:
        row = self._one(
            _SELECT_BLOCKS + "WHERE writer = %s AND first_seq <= %s ORDER BY first_seq DESC LIMIT 1",
            (self.writer, seq),
        )
        if row is None or not row[1] <= seq < row[1] + row[2]:
            return None
        return _block(row)

    def block_count(self) -> int:
        row = self._one("SELECT count(*) FROM blocks WHERE writer = %s", (self.writer,))
        return int(row[0]) if row else 0

    def blocks_covering(self, records: int) -> int:
        row = self._one("SELECT coalesce(max(number), 0) FROM blocks WHERE writer = %s AND first_seq <= %s",
                        (self.writer, records))
        return int(row[0]) if row else 0

    def leaf_inputs(self, start: int, end: int) -> list[tuple[int, int, bytes]]:
        rows = self.conn.execute(
            b"SELECT number, first_seq, digests FROM blocks WHERE writer = %s AND number > %s "
            b"AND number <= %s ORDER BY number", (self.writer, start, end)).fetchall()
        return [(int(i), int(f), bytes(d)) for i, f, d in rows]

    def node(self, level: int, index: int) -> bytes | None:
        row = self._one("SELECT hash FROM merkle_nodes WHERE writer = %s AND level = %s AND idx = %s",
                        (self.writer, level, index))
        return bytes(row[0]) if row else None

    def pruned(self) -> tuple[int, int, bytes, bytes] | None:
        row = self._one("SELECT pruned_to, pruned_head, pruned_merkle FROM ledger_state WHERE writer = %s",
                        (self.writer,))
        if row is None or not row[0]:
            return None
        frontier = bytes(row[2] or b"")
        try:
            blocks = MerkleAccumulator.from_bytes(frontier).size
        except ValueError:
            blocks = -1  # an altered frontier: verification reports it
        return int(row[0]), blocks, bytes(row[1] or b""), frontier

    def pruned_leaves(self, start: int, end: int) -> list[bytes]:
        rows = self.conn.execute(
            b"SELECT hash FROM pruned_leaves WHERE writer = %s AND idx >= %s AND idx < %s ORDER BY idx",
            (self.writer, start, end)).fetchall()
        return [bytes(h) for (h,) in rows]

    def expire(
        self,
        records: int,
        blocks: int,
        head: bytes,
        frontier: bytes,
        leaves: Sequence[tuple[int, bytes]],
        time_us: int,
    ) -> None:
        c, w = self.conn, self.writer
        c.execute(b"UPDATE ledger_state SET pruned_to = %s, pruned_head = %s, pruned_merkle = %s, "
                  b"pruned_time = %s WHERE writer = %s", (records, head, frontier, time_us, w))
        c.execute(b"DELETE FROM pruned_leaves WHERE writer = %s", (w,))
        with c.cursor() as cur:
            cur.executemany(b"INSERT INTO pruned_leaves VALUES (%s, %s, %s)", [(w, i, h) for i, h in leaves])
        c.execute(b"DELETE FROM blocks WHERE writer = %s AND number <= %s", (w, blocks))

    def insert_checkpoint(self, row: CheckpointRow, time_us: int) -> None:
        self.conn.execute(
            b"INSERT INTO checkpoints VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (self.writer, row.epoch, row.size, time_us, row.body, row.signature, row.seal),
        )

    def checkpoints(self) -> list[CheckpointRow]:
        rows = self.conn.execute(
            b"SELECT epoch, size, body, signature, seal FROM checkpoints WHERE writer = %s ORDER BY epoch",
            (self.writer,)).fetchall()
        return [CheckpointRow(int(e), int(s), bytes(b), bytes(g), bytes(x)) for e, s, b, g, x in rows]

    def last_checkpoint(self) -> CheckpointRow | None:
        row = self._one("SELECT epoch, size, body, signature, seal FROM checkpoints WHERE writer = %s "
                        "ORDER BY epoch DESC LIMIT 1", (self.writer,))
        if row is None:
            return None
        return CheckpointRow(int(row[0]), int(row[1]), bytes(row[2]), bytes(row[3]), bytes(row[4]))

    def signers(self) -> list[tuple[int, bytes]]:
        rows = self.conn.execute(
            b"SELECT from_epoch, public_key FROM signers WHERE writer = %s ORDER BY from_epoch",
            (self.writer,)).fetchall()
        return [(int(e), bytes(k)) for e, k in rows]


def _block(row: tuple[Any, ...]) -> StoredBlock:
    number, first, count, digests, data, chain = row
    return StoredBlock(int(number), int(first), int(count), bytes(digests), bytes(data), bytes(chain))
