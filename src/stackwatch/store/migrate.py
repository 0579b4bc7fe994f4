"""``stackwatch store migrate``: convert a format 1 store (a chained row per record) to record
format 2 (chained compressed blocks, narrow index rows), in place, keeping its history provable.

Steps: seal the tail (a format 1 checkpoint), verify the whole store (refuse on any problem),
then in one transaction: the records' exact bytes (format 1's canonical record bytes, which its
Merkle leaves hash) go into blocks, chained from an **anchor** that commits to the last signed
format 1 checkpoint (``blocks.anchor_of``); the wide columns of the rows are emptied; the ledger
state becomes the blocks'. Then a format 2 checkpoint is made (the ratchet goes on from the next
epoch) and the store verified again. ``store verify`` on a migrated store recomputes the format 1
record tree from the records in the blocks and checks it against every format 1 checkpoint, and
the anchor against the last one: the old signatures, seals and witnesses keep attesting the
same records. A store with records expired by retention is not migrated (not supported yet).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from stackwatch.core.errors import StoreError
from stackwatch.store.admin import admin_event
from stackwatch.store.integrity import blocks as codec
from stackwatch.store.integrity.block_ledger import BlockLedger
from stackwatch.store.integrity.sqlite_io import ANCHOR_META, FORMAT_META, SQLiteLedgerIO, ensure_schema
from stackwatch.store.record_ledger import iter_ledger
from stackwatch.store.sqlite import DB_FILE, SQLiteStore, stored_format
from stackwatch.store.verify import VerifyReport, verify_store

V2_EPOCH_META: Final = "v2_epoch"
_EMPTIED: Final = (
    "init_domain",
    "init_agent",
    "target_type",
    "observer",
    "message",
    "attrs",
    "origin",
    "ref",
)
INSERT_CHUNK: Final = 64


@dataclass(frozen=True, slots=True)
class MigrateResult:
    records: int
    blocks: int
    v2_epoch: int
    before: VerifyReport
    after: VerifyReport


def migrate_store(
    data_dir: str | Path, *, initial_keys: list[bytes] | None = None, actor: str = "stackwatch"
) -> MigrateResult:
    data = Path(data_dir)
    if stored_format(data) != 1:
        raise StoreError(f"no format 1 store in {data}")
    with SQLiteStore(data, background_index=False) as store:  # takes the append lock: no writer runs
        if store.checkpoint() is None:
            raise StoreError(
                "the store has no keys (stackwatch store init): there is no signed history to keep"
            )
    before = verify_store(data, initial_keys=initial_keys)
    if not before.ok():
        first = before.first_bad or before.problems[0]
        raise StoreError(f"the store does not verify, so it is not migrated: {first}")
    conn = sqlite3.connect(data / DB_FILE, isolation_level=None, timeout=30)
    try:
        records, blocks, v2_epoch = _convert(conn)
    finally:
        conn.close()
    from stackwatch.store.sqlite_blocks import BlockStore

    with BlockStore(data, background_index=False) as v2:
        v2.record_admin(
            admin_event(
                actor,
                "store.migrate",
                str(data),
                {"format": 2, "records": records, "blocks": blocks},
                now=v2._clock.now(),
            )
        )
        v2.checkpoint()
    sqlite3.connect(data / DB_FILE, isolation_level=None).execute("VACUUM").connection.close()
    after = verify_store(data, initial_keys=initial_keys)
    if not after.ok():
        raise StoreError(f"the migrated store does not verify: {after.first_bad}")
    return MigrateResult(records, blocks, v2_epoch, before, after)


def _convert(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """The conversion transaction: (records, blocks, first format 2 epoch)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        state = conn.execute("SELECT size, pruned_to FROM ledger_state WHERE id = 1").fetchone()
        if state[1]:
            raise StoreError("records of this store were expired by retention: migrating it is not supported")
        last = conn.execute(
            "SELECT epoch, size, body FROM checkpoints ORDER BY epoch DESC LIMIT 1"
        ).fetchone()
        if last is None or last[1] != state[0]:
            raise StoreError("the store's newest records are not sealed by a checkpoint")
        epoch, size, body = int(last[0]), int(last[1]), bytes(last[2])
        io = SQLiteLedgerIO(conn)
        ensure_schema(conn)
        conn.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [(FORMAT_META, "2"), (ANCHOR_META, codec.anchor_of(body).hex()), (V2_EPOCH_META, str(epoch + 1))],
        )
        ledger = BlockLedger(0, codec.anchor_of(body))
        encoder = codec.BlockEncoder()
        batch: list[bytes] = []
        pending = []
        first, used = 1, 0
        for seq, record, _ in iter_ledger(conn, 1):
            batch.append(record)
            used += len(record)
            if used >= codec.BLOCK_BYTES or seq == size:
                pending.append(ledger.add(first, *encoder.encode(batch)))
                first, used, batch = seq + 1, 0, []
                if len(pending) >= INSERT_CHUNK:
                    io.insert_blocks(pending)
                    pending = []
        io.insert_blocks(pending)
        if ledger.size != size:
            raise StoreError(f"the store holds {ledger.size} records, its ledger says {size}")
        emptied = ", ".join(f"{c} = ''" for c in _EMPTIED)
        conn.execute(f"UPDATE events SET {emptied}, raw = x'', chain = NULL")  # noqa: S608 - fixed names
        conn.execute("DELETE FROM merkle_nodes")
        ledger.save(io)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return size, ledger.blocks, epoch + 1
