"""Record inclusion proofs of a v2 store: the block's Merkle proof plus the record's offset.

The document carries the record's bytes, the block's number, first seq and record digests
(which the block's leaf hashes), the record's offset in the block, the Merkle audit path of
the block in the first checkpoint covering it, and that checkpoint signed: the auditor checks
the record against its digest, recomputes the block's leaf and the root, and the signature,
without the block's other records or the database (``stackwatch.store.auditor``).
"""

from __future__ import annotations

from typing import Any

from stackwatch.core.errors import StoreError
from stackwatch.store import auditor
from stackwatch.store.integrity import blocks as codec
from stackwatch.store.integrity.io import LedgerIO
from stackwatch.store.integrity.ledger import NODE_LEVEL
from stackwatch.store.merkle import MerkleReader
from stackwatch.store.seal import Checkpoint


class _Nodes:
    """The stored Merkle node cache as a MerkleReader cache (new nodes stay in memory)."""

    def __init__(self, io: LedgerIO) -> None:
        self._io = io
        self._mem: dict[tuple[int, int], bytes] = {}

    def get(self, key: tuple[int, int], /) -> bytes | None:
        return self._mem.get(key) or self._io.node(*key)

    def __setitem__(self, key: tuple[int, int], value: bytes, /) -> None:
        self._mem[key] = value


def reader(io: LedgerIO) -> MerkleReader:
    def leaves(start: int, end: int) -> list[bytes]:
        stored = [codec.block_leaf(n, f, d) for n, f, d in io.leaf_inputs(start, end)]
        if len(stored) < end - start:  # expired blocks: their leaves as kept by retention
            kept = io.pruned_leaves(start, end)
            return kept + stored if len(kept) + len(stored) == end - start else stored
        return stored

    return MerkleReader(leaves, _Nodes(io), cache_min_level=NODE_LEVEL)


def prove_record(
    io: LedgerIO, seq: int, *, tree_size: int | None = None, log_id: str | None = None
) -> dict[str, Any]:
    """Inclusion proof of record ``seq`` in the first checkpoint covering it (or the one at
    ``tree_size`` records)."""
    block = io.block_of(seq)
    if block is None:
        raise StoreError(f"record {seq} is not in the store")
    signers = io.signers()
    for row in io.checkpoints():
        cp = Checkpoint.from_bytes(row.body)
        if cp.size >= seq and (tree_size is None or cp.size == tree_size):
            break
    else:
        raise StoreError(f"no checkpoint covers record {seq} yet (run stackwatch store checkpoint)")
    key = next((k for e, k in reversed(signers) if e <= cp.epoch), b"")
    offset = seq - block.first_seq
    try:
        record = codec.records(block.data)[offset]
    except (codec.BlockError, IndexError) as exc:
        raise StoreError(f"block {block.number} is damaged: run stackwatch store verify ({exc})") from None
    blocks = io.blocks_covering(cp.size)
    path = reader(io).inclusion_proof(block.number - 1, blocks)
    return auditor.block_inclusion_document(
        seq, block.number, block.first_seq, block.digests, record, blocks, path, row.body, row.signature, key
    )
