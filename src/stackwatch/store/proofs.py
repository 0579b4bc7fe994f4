"""Inclusion and consistency proofs from a store folder, as JSON documents that
``python -m stackwatch.store.auditor`` checks without the database."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from stackwatch.core.errors import StoreError
from stackwatch.store import auditor
from stackwatch.store.record_ledger import iter_ledger, pruned_size, reader
from stackwatch.store.seal import Checkpoint


def _connect(data_dir: Path) -> sqlite3.Connection:
    db = Path(data_dir) / "stackwatch.db"
    if not db.is_file():
        raise StoreError(f"no store at {data_dir}")
    return sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)


def _checkpoints(conn: sqlite3.Connection) -> list[tuple[Checkpoint, bytes, bytes, bytes]]:
    signers = conn.execute("SELECT from_epoch, public_key FROM signers ORDER BY from_epoch").fetchall()
    out = []
    for body, signature in conn.execute("SELECT body, signature FROM checkpoints ORDER BY epoch"):
        cp = Checkpoint.from_bytes(bytes(body))
        key = next((bytes(k) for e, k in reversed(signers) if e <= cp.epoch), b"")
        out.append((cp, bytes(body), bytes(signature), key))
    return out


def prove(data_dir: str | Path, seq: int, tree_size: int | None = None) -> dict[str, Any]:
    """Inclusion proof of record ``seq`` in the first checkpoint covering it (or at ``tree_size``;
    record format 2: a size in blocks, and the proof is the block's plus the record's offset)."""
    conn = _connect(Path(data_dir))
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'blocks'").fetchone():
            from stackwatch.store.integrity.proofs import prove_record
            from stackwatch.store.integrity.sqlite_io import SQLiteLedgerIO

            return prove_record(SQLiteLedgerIO(conn), seq, tree_size=tree_size)
        if seq <= pruned_size(conn):
            raise StoreError(f"record {seq} was expired by retention: only its checkpoint attests it")
        cps = [
            c
            for c in _checkpoints(conn)
            if c[0].size >= seq and (tree_size is None or c[0].size == tree_size)
        ]
        if not cps:
            raise StoreError(f"no checkpoint covers record {seq} yet (run stackwatch store checkpoint)")
        cp, body, signature, key = cps[0]
        record = next((rec for s, rec, _ in iter_ledger(conn, seq, seq) if s == seq), None)
        if record is None:
            raise StoreError(f"record {seq} is not in the store")
        proof = reader(conn).inclusion_proof(seq - 1, cp.size)
        return auditor.inclusion_document(seq - 1, cp.size, proof, body, signature, key, record=record)
    finally:
        conn.close()


def consistency(data_dir: str | Path, old_size: int, new_size: int) -> dict[str, Any]:
    """Consistency proof from ``old_size`` to the checkpoint at ``new_size``."""
    conn = _connect(Path(data_dir))
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'blocks'").fetchone():
            return _block_consistency(conn, old_size, new_size)
        cps = {c[0].size: c for c in _checkpoints(conn)}
        if new_size not in cps:
            raise StoreError(
                f"no checkpoint at tree size {new_size}; checkpoint sizes: "
                + ", ".join(str(s) for s in sorted(cps)[-10:])
            )
        if not 0 <= old_size <= new_size:
            raise StoreError("OLD_SIZE must be between 0 and NEW_SIZE")
        if 0 < old_size < pruned_size(conn) and old_size not in cps:
            raise StoreError(f"size {old_size} lies in the range expired by retention: use a checkpoint size")
        _, body, signature, key = cps[new_size]
        rd = reader(conn)
        proof = rd.consistency_proof(old_size, new_size)
        old = cps.get(old_size)
        if old is not None:
            return auditor.consistency_document(
                old_size, new_size, proof, body, signature, key, old_checkpoint=(old[1], old[2])
            )
        return auditor.consistency_document(
            old_size, new_size, proof, body, signature, key, old_root=rd.root(old_size)
        )
    finally:
        conn.close()


def _block_consistency(conn: sqlite3.Connection, old_size: int, new_size: int) -> dict[str, Any]:
    """Record format 2: the proof is over block leaves between two format 2 checkpoints (or from
    a block end to a checkpoint); sizes stay in records, as the checkpoints count them."""
    from stackwatch.store.integrity.blocks import tree_root
    from stackwatch.store.integrity.proofs import block_consistency
    from stackwatch.store.integrity.sqlite_io import SQLiteLedgerIO

    row = conn.execute("SELECT value FROM meta WHERE name = 'v2_epoch'").fetchone()
    v2_epoch = int(row[0]) if row else 0  # a migrated store: format 1 checkpoints before it
    every = _checkpoints(conn)
    cps = {c[0].size: c for c in every if c[0].epoch >= v2_epoch}
    if new_size not in cps:
        raise StoreError(
            f"no format 2 checkpoint at size {new_size}; checkpoint sizes: "
            + ", ".join(str(s) for s in sorted(cps)[-10:])
        )
    if any(c[0].size == old_size and c[0].epoch < v2_epoch for c in every) and old_size not in cps:
        raise StoreError(
            f"size {old_size} is a format 1 checkpoint, from before the store was migrated: the "
            "migration's anchor links the two (stackwatch store verify checks it); consistency "
            "proofs run between format 2 checkpoints"
        )
    c = block_consistency(SQLiteLedgerIO(conn), old_size, new_size)
    _, body, signature, key = cps[new_size]
    old = cps.get(old_size)
    return auditor.block_consistency_document(
        old_size, new_size, c.old_blocks, c.new_blocks, c.old_mth, c.new_mth, c.proof, body, signature, key,
        old_checkpoint=(old[1], old[2]) if old is not None else None,
        old_root=None if old is not None else tree_root(c.old_blocks, c.old_mth),
    )
