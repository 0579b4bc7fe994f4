"""``LedgerIO`` on the embedded store's SQLite database (tables made by ``ensure_schema``).

The v2 ledger reuses v1's ``ledger_state`` (its size counts blocks), ``merkle_nodes``,
``checkpoints`` (their size counts blocks) and ``signers``; blocks have their own table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, Final

from stackwatch.store.integrity.io import CheckpointRow, StoredBlock
from stackwatch.store.merkle import MerkleAccumulator

FORMAT_META: Final = "format"
ANCHOR_META: Final = "v2_anchor"
_SELECT_BLOCKS: Final = "SELECT id, first_seq, count, digests, data, chain FROM blocks "


def ensure_schema(conn: sqlite3.Connection) -> None:
    """The blocks table (inside the caller's transaction; re-runnable)."""
    conn.execute("""CREATE TABLE IF NOT EXISTS blocks (
        id INTEGER PRIMARY KEY,       -- block number, 1-based (Merkle leaf id - 1)
        first_seq INTEGER NOT NULL,   -- its records are seqs first_seq .. first_seq + count - 1
        count INTEGER NOT NULL,
        digests BLOB NOT NULL,        -- DIGEST_SIZE bytes per record, in seq order
        data BLOB NOT NULL,           -- zstd frame of the records' bytes
        chain BLOB NOT NULL)          -- SHA-256(chain of id - 1 || leaf)""")
    conn.execute("CREATE INDEX IF NOT EXISTS blocks_first_seq ON blocks (first_seq)")


class SQLiteLedgerIO:
    """See ``io.LedgerIO``; ``schema`` names the attached database holding the tables."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def load_state(self) -> tuple[int, bytes, bytes | None]:
        row = self.conn.execute("SELECT size, head, merkle FROM ledger_state WHERE id = 1").fetchone()
        if row is None:
            raise sqlite3.DatabaseError("no ledger_state row")
        return int(row[0]), bytes(row[1]), bytes(row[2]) if row[2] else None

    def save_state(
        self, size: int, head: bytes, merkle: bytes, nodes: Sequence[tuple[int, int, bytes]]
    ) -> None:
        if nodes:
            self.conn.executemany("INSERT OR REPLACE INTO merkle_nodes VALUES (?, ?, ?)", nodes)
        self.conn.execute(
            "UPDATE ledger_state SET size = ?, head = ?, merkle = ? WHERE id = 1", (size, head, merkle)
        )

    def anchor(self) -> bytes | None:
        row = self.conn.execute("SELECT value FROM meta WHERE name = ?", (ANCHOR_META,)).fetchone()
        return bytes.fromhex(row[0]) if row else None

    def insert_blocks(self, blocks: Sequence[StoredBlock]) -> None:
        self.conn.executemany(
            "INSERT INTO blocks (id, first_seq, count, digests, data, chain) VALUES (?, ?, ?, ?, ?, ?)",
            [(b.number, b.first_seq, b.count, b.digests, b.data, b.chain) for b in blocks],
        )

    def blocks(self, first: int = 1, last: int | None = None) -> Iterator[StoredBlock]:
        high = last if last is not None else 2**62
        cur = self.conn.execute(_SELECT_BLOCKS + "WHERE id BETWEEN ? AND ? ORDER BY id", (first, high))
        for row in cur:
            yield _block(row)

    def block_of(self, seq: int) -> StoredBlock | None:
        row = self.conn.execute(
            _SELECT_BLOCKS + "WHERE first_seq <= ? ORDER BY first_seq DESC LIMIT 1", (seq,)
        ).fetchone()
        if row is None or not row[1] <= seq < row[1] + row[2]:
            return None
        return _block(row)

    def block_count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM blocks").fetchone()[0])

    def blocks_covering(self, records: int) -> int:
        row = self.conn.execute("SELECT coalesce(max(id), 0) FROM blocks WHERE first_seq <= ?", (records,))
        return int(row.fetchone()[0])

    def leaf_inputs(self, start: int, end: int) -> list[tuple[int, int, bytes]]:
        rows = self.conn.execute(
            "SELECT id, first_seq, digests FROM blocks WHERE id > ? AND id <= ? ORDER BY id", (start, end)
        ).fetchall()
        return [(int(i), int(f), bytes(d)) for i, f, d in rows]

    def node(self, level: int, index: int) -> bytes | None:
        row = self.conn.execute(
            "SELECT hash FROM merkle_nodes WHERE level = ? AND idx = ?", (level, index)
        ).fetchone()
        return bytes(row[0]) if row else None

    def pruned(self) -> tuple[int, int, bytes, bytes] | None:
        row = self.conn.execute(
            "SELECT pruned_to, pruned_head, pruned_merkle FROM ledger_state WHERE id = 1"
        ).fetchone()
        if row is None or not row[0]:
            return None
        frontier = bytes(row[2] or b"")
        try:
            blocks = MerkleAccumulator.from_bytes(frontier).size
        except ValueError:
            blocks = -1  # an altered frontier: verification reports it
        return int(row[0]), blocks, bytes(row[1] or b""), frontier

    def pruned_leaves(self, start: int, end: int) -> list[bytes]:
        return [
            bytes(h)
            for (h,) in self.conn.execute(
                "SELECT hash FROM pruned_leaves WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end)
            )
        ]

    def expire(
        self,
        records: int,
        blocks: int,
        head: bytes,
        frontier: bytes,
        leaves: Sequence[tuple[int, bytes]],
        time_us: int,
    ) -> None:
        c = self.conn
        c.execute(
            "UPDATE ledger_state SET pruned_to = ?, pruned_head = ?, pruned_merkle = ?, pruned_time = ?",
            (records, head, frontier, time_us),
        )
        c.execute("DELETE FROM pruned_leaves")
        c.executemany("INSERT INTO pruned_leaves VALUES (?, ?)", leaves)
        c.execute("DELETE FROM blocks WHERE id <= ?", (blocks,))

    def insert_checkpoint(self, row: CheckpointRow, time_us: int) -> None:
        self.conn.execute(
            "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?)",
            (row.epoch, row.size, time_us, row.body, row.signature, row.seal),
        )

    def checkpoints(self) -> list[CheckpointRow]:
        return [
            CheckpointRow(int(e), int(s), bytes(b), bytes(g), bytes(x))
            for e, s, b, g, x in self.conn.execute(
                "SELECT epoch, size, body, signature, seal FROM checkpoints ORDER BY epoch"
            )
        ]

    def last_checkpoint(self) -> CheckpointRow | None:
        row = self.conn.execute(
            "SELECT epoch, size, body, signature, seal FROM checkpoints ORDER BY epoch DESC LIMIT 1"
        ).fetchone()
        return (
            None
            if row is None
            else CheckpointRow(int(row[0]), int(row[1]), bytes(row[2]), bytes(row[3]), bytes(row[4]))
        )

    def signers(self) -> list[tuple[int, bytes]]:
        return [
            (int(e), bytes(k))
            for e, k in self.conn.execute("SELECT from_epoch, public_key FROM signers ORDER BY from_epoch")
        ]


def _block(row: tuple[Any, ...]) -> StoredBlock:
    number, first, count, digests, data, chain = row
    return StoredBlock(int(number), int(first), int(count), bytes(digests), bytes(data), bytes(chain))
