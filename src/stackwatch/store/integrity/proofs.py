"""Record inclusion proofs of a v2 store: the block's Merkle proof plus the record's offset.

The document carries the record's bytes, the block's number, first seq and record digests
(which the block's leaf hashes), the record's offset in the block, the Merkle audit path of
the block in the first checkpoint covering it, and that checkpoint signed: the auditor checks
the record against its digest, recomputes the block's leaf and the root, and the signature,
without the block's other records or the database (``stackwatch.store.auditor``).
Consistency proofs run over block leaves (``block_consistency``): the trees' block counts and
tree hashes travel with the proof, and make the roots checkpoints sign.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stackwatch.core.errors import StoreError
from stackwatch.store import auditor
from stackwatch.store.integrity import blocks as codec
from stackwatch.store.integrity.block_ledger import NODE_LEVEL
from stackwatch.store.integrity.io import LedgerIO
from stackwatch.store.merkle import MerkleReader, verify_consistency
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


@dataclass(frozen=True, slots=True)
class BlockConsistency:
    """RFC 9162 consistency between two trees of block leaves, with what binds them to the
    roots checkpoints sign (``blocks.tree_root``: the block count and the Merkle tree hash)."""

    old_blocks: int
    new_blocks: int
    old_mth: bytes
    new_mth: bytes
    proof: list[bytes]


def blocks_at(io: LedgerIO, records: int) -> int:
    """How many blocks hold exactly records 1..``records``; StoreError when a block straddles it
    (a consistency proof needs tree sizes at block ends: a checkpoint's size always is one)."""
    if records == 0:
        return 0
    block = io.block_of(records)
    if block is not None:
        if block.first_seq + block.count - 1 != records:
            raise StoreError(f"size {records} falls inside block {block.number}: use a checkpoint size")
        return block.number
    pruned = io.pruned()
    if pruned is not None and pruned[0] == records:
        return pruned[1]
    raise StoreError(f"size {records} is not the end of a block the store holds: use a checkpoint size")


def block_consistency(io: LedgerIO, old_size: int, new_size: int) -> BlockConsistency:
    """Consistency of the tree at ``old_size`` records with the one at ``new_size`` (both block ends)."""
    if not 0 <= old_size <= new_size:
        raise StoreError("OLD_SIZE must be between 0 and NEW_SIZE")
    old_blocks, new_blocks = blocks_at(io, old_size), blocks_at(io, new_size)
    rd = reader(io)
    return BlockConsistency(
        old_blocks,
        new_blocks,
        rd.root(old_blocks),
        rd.root(new_blocks),
        rd.consistency_proof(old_blocks, new_blocks),
    )


def check_block_consistency(old_root: bytes, new_root: bytes, c: BlockConsistency) -> str | None:
    """None when the tree signed as ``old_root`` is a prefix of the one signed as ``new_root``,
    else the reason (the standby's and the auditor's check)."""
    if codec.tree_root(c.old_blocks, c.old_mth) != old_root:
        return f"the old tree ({c.old_blocks} blocks) does not have the old root"
    if codec.tree_root(c.new_blocks, c.new_mth) != new_root:
        return f"the new tree ({c.new_blocks} blocks) does not have the new root"
    if not verify_consistency(c.old_blocks, c.new_blocks, c.old_mth, c.new_mth, c.proof):
        return f"the consistency proof from {c.old_blocks} to {c.new_blocks} blocks does not verify"
    return None
