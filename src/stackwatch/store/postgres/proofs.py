"""Consistency proofs of one writer's log on the shared store (``store consistency``).

The embedded store's record format 2 proof (``store/proofs._block_consistency``) on a writer's
``PGLedgerIO``: over block leaves, from OLD records (a checkpoint's size, or any block end) to
the checkpoint at NEW records, signed by the writer's key; ``python -m stackwatch.store.auditor``
checks it offline. Sizes count the writer's own records (its seqs), as its checkpoints do.
"""

from __future__ import annotations

from typing import Any

import psycopg

from stackwatch.core.errors import StoreError
from stackwatch.store import auditor
from stackwatch.store.integrity.blocks import tree_root
from stackwatch.store.integrity.proofs import block_consistency
from stackwatch.store.postgres.ledger_io import PGLedgerIO
from stackwatch.store.postgres.schema import exists, use_schema
from stackwatch.store.postgres.store import DEFAULT_SCHEMA, split_url
from stackwatch.store.seal import Checkpoint


def consistency(url: str, writer: str | None, old_size: int, new_size: int) -> dict[str, Any]:
    """The proof that ``writer``'s log at ``old_size`` records is a prefix of its checkpoint at
    ``new_size``; ``writer`` may be None when the store has one writer."""
    libpq_url, own = split_url(url)
    schema = own.get("schema") or DEFAULT_SCHEMA
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        if not exists(conn, schema):
            raise StoreError(f"no stackwatch store in schema {schema!r} of this database")
        use_schema(conn, schema)
        conn.execute(b"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")  # one view of the log
        try:
            names = {str(n): int(i) for i, n in conn.execute(b"SELECT id, name FROM writers ORDER BY id")}
            if writer is None:
                if len(names) != 1:
                    raise StoreError("give --writer: each writer's log has its own sizes (writers: "
                                     + (", ".join(names) or "none") + ")")
                writer = next(iter(names))
            if writer not in names:
                raise StoreError(f"this store has no writer {writer!r} (writers: {', '.join(names)})")
            return _document(PGLedgerIO(conn, names[writer]), old_size, new_size)
        finally:
            conn.execute(b"ROLLBACK")


def _document(io: PGLedgerIO, old_size: int, new_size: int) -> dict[str, Any]:
    signers = io.signers()
    cps: dict[int, tuple[bytes, bytes, bytes]] = {}
    for row in io.checkpoints():
        cp = Checkpoint.from_bytes(row.body)
        key = next((k for e, k in reversed(signers) if e <= cp.epoch), b"")
        cps[cp.size] = (row.body, row.signature, key)
    if new_size not in cps:
        raise StoreError(f"no checkpoint of this writer at size {new_size}; its checkpoint sizes: "
                         + ", ".join(str(s) for s in sorted(cps)[-10:]))
    c = block_consistency(io, old_size, new_size)
    body, signature, key = cps[new_size]
    old = cps.get(old_size)
    return auditor.block_consistency_document(
        old_size, new_size, c.old_blocks, c.new_blocks, c.old_mth, c.new_mth, c.proof, body, signature, key,
        old_checkpoint=(old[0], old[1]) if old is not None else None,
        old_root=None if old is not None else tree_root(c.old_blocks, c.old_mth),
    )
