"""The append-only hash chain over stored records, as pure functions.

Every record gets canonical bytes (``canonical_record_bytes``), whose Merkle leaf hash
``leaf_seq = SHA-256(0x00 || record_bytes)`` (``merkle.leaf_hash``, leaf index ``seq - 1``) is
the one hash taken over them; the chain links the leaves:
``h_seq = SHA-256(h_{seq-1} || leaf_seq)`` starting from ``GENESIS``. So one encoding and one
pass over the record's bytes serve both structures (the chain adds a 64-byte hash per record;
before schema version 4 it hashed the record bytes a second time, see ``record_ledger.rechain_over_leaves``).

Canonical record bytes (all integers big endian)::

    b"SWR1" | seq u64 | received_us i64 | len(raw) u32 | len(normalized) u32 | len(origin) u32
            | raw | normalized | origin (UTF-8, lone surrogates kept with "surrogatepass")

All lengths come first, so the encoding is injective: two different records never share bytes.

What the chain alone can and cannot show (``verify_chain``): a record changed without
recomputing hashes is reported exactly; a record changed *and* its own hash recomputed shows up
at the next record (the reason says so); an intruder who recomputes every later hash passes the
chain, which is why ``verify_chain`` can also check Merkle roots from signed checkpoints: the
fault then names the checkpoint interval that holds the altered record.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Final, NamedTuple

from stackwatch.store.merkle import MerkleAccumulator

MAGIC: Final = b"SWR1"
GENESIS: Final = sha256(b"stackwatch chain genesis v1").digest()
"""The chain hash 'before' the first record."""
FIRST_SEQ: Final = 1

RECORD_HEAD: Final = struct.Struct(">4sQqIII")
"""The canonical record bytes' header: MAGIC, seq, received, then the lengths of raw, normalized, origin."""
LEAF_HEAD: Final = struct.Struct(">c4sQqIII")
"""0x00 (the Merkle leaf prefix) + RECORD_HEAD: the hot paths build a record's leaf input in one
concatenation, since record bytes are only ever hashed as a leaf."""
_U32_MAX: Final = 0xFFFFFFFF
_HEAD_SIZE: Final = RECORD_HEAD.size
_unpack_head: Final = RECORD_HEAD.unpack_from


class RecordFields(NamedTuple):
    seq: int
    raw: bytes
    normalized: bytes
    received_us: int
    origin: str


_fields: Final = tuple.__new__  # what RecordFields._make calls, without its checks (5 fields known)


def canonical_record_bytes(seq: int, raw: bytes, normalized: bytes, received_us: int, origin: str) -> bytes:
    """The unambiguous bytes the chain and the Merkle tree hash for one record."""
    o = origin.encode("utf-8", "surrogatepass")
    try:
        head = RECORD_HEAD.pack(MAGIC, seq, received_us, len(raw), len(normalized), len(o))
        return head + raw + normalized + o
    except struct.error as exc:  # negative seq, time out of i64, field over 4 GiB
        raise ValueError(f"record {seq} cannot be encoded: {exc}") from None


def record_parts(data: bytes) -> tuple[int, bytes, bytes, int, str]:
    """``decode_record_bytes`` as a plain tuple, in ``RecordFields`` order, for the read hot
    paths (a NamedTuple's ``__new__`` is a Python function: ~0.5 µs a record)."""
    if len(data) < _HEAD_SIZE:
        raise ValueError("record bytes too short")
    magic, seq, received_us, n_raw, n_norm, n_origin = _unpack_head(data)
    if magic != MAGIC:
        raise ValueError("record bytes do not start with the SWR1 tag")
    b = _HEAD_SIZE + n_raw
    c = b + n_norm
    if c + n_origin != len(data):
        raise ValueError("record bytes length does not match the lengths in their header")
    return seq, data[_HEAD_SIZE:b], data[b:c], received_us, data[c:].decode("utf-8", "surrogatepass")


def decode_record_bytes(data: bytes) -> RecordFields:
    """Inverse of ``canonical_record_bytes``; ``ValueError`` on anything else."""
    return _fields(RecordFields, record_parts(data))


def chain_hash(prev_hash: bytes, record_bytes: bytes) -> bytes:
    """``SHA-256(prev_hash || leaf_hash(record_bytes))``."""
    return chain_link(prev_hash, sha256(b"\x00" + record_bytes).digest())


def chain_link(prev_hash: bytes, leaf: bytes) -> bytes:
    """``SHA-256(prev_hash || leaf)``: the chain hash of a record given its Merkle leaf hash."""
    return sha256(prev_hash + leaf).digest()


def extend_chain(prev_hash: bytes, records: Sequence[bytes],
                 merkle: MerkleAccumulator | None = None) -> tuple[bytes, list[bytes], list[bytes]]:
    """The append hot path for a batch: ``(new head, chain hashes, leaf hashes)`` for
    ``records`` (canonical bytes, in seq order), also appending the leaf hashes to ``merkle``."""
    hashes: list[bytes] = []
    leaves: list[bytes] = []
    push_h, push_l = hashes.append, leaves.append
    h = prev_hash
    for rec in records:
        leaf = sha256(b"\x00" + rec).digest()
        h = sha256(h + leaf).digest()
        push_h(h)
        push_l(leaf)
    if merkle is not None:
        merkle.extend(leaves)
    return h, hashes, leaves


@dataclass(frozen=True, slots=True)
class ChainFault:
    """The first problem found: ``seq`` is the first record that is not as it should be.

    kind: ``gap`` (seq missing), ``reordered`` (records out of seq order or repeated),
    ``mismatch`` (stored hash differs from the recomputed one), ``root`` (Merkle root at a
    checkpoint differs: some record in ``first_seq..seq`` was altered and the chain
    recomputed), ``truncated`` (records missing at the end).
    """

    seq: int
    kind: str
    reason: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.kind}: {self.reason}"


def verify_chain(items: Iterable[tuple[int, bytes, bytes]], *, prev_hash: bytes = GENESIS,
                 first_seq: int = FIRST_SEQ, end_seq: int | None = None,
                 roots: Mapping[int, bytes] | None = None,
                 merkle: MerkleAccumulator | None = None) -> ChainFault | None:
    """Check ``(seq, record_bytes, stored_hash)`` items in storage order; the first fault or None.

    ``prev_hash``/``first_seq`` resume from a known-good point. ``end_seq`` is the last seq
    that must be present (from a checkpoint or the store's own count): ending earlier is a
    truncation. ``roots`` maps tree sizes to Merkle roots that must hold (from verified
    checkpoints); ``merkle`` is the accumulator at ``first_seq - 1`` leaves (a new one when
    starting from the beginning) and is advanced as records are checked (after a fault its
    state is unspecified).
    """
    acc = merkle if merkle is not None else (MerkleAccumulator() if roots else None)
    if acc is not None and acc.size != first_seq - 1:
        raise ValueError("the Merkle accumulator is not at first_seq - 1 leaves")
    sizes = sorted(s for s in roots if s >= first_seq) if roots else []
    last_size = sizes[-1] if sizes else -1
    size_iter = iter(sizes)
    next_size = next(size_iter, -1)
    interval_start = first_seq
    # Leaf hashes are batched into MerkleAccumulator.extend (its loop is inlined): a method call
    # per record would cost more than the hashing.
    pending: list[bytes] | None = [] if acc is not None else None
    expected = first_seq
    prev = prev_hash
    it = iter(items)
    for seq, rec, stored in it:
        if seq != expected:
            return _order_fault(expected, seq, it)
        leaf = sha256(b"\x00" + rec).digest()
        h = sha256(prev + leaf).digest()
        if h != stored:
            return ChainFault(seq, "mismatch", _mismatch_reason(seq, first_seq, prev_hash))
        if pending is not None:
            pending.append(leaf)
            if seq == next_size:
                acc.extend(pending)  # type: ignore[union-attr]
                pending.clear()
                if acc.root() != roots[seq]:  # type: ignore[union-attr,index]
                    return ChainFault(seq, "root", f"Merkle root at tree size {seq} differs from the signed "
                                      f"checkpoint: a record in seqs {interval_start}..{seq} was altered "
                                      "and the chain hashes recomputed")
                interval_start = seq + 1
                next_size = next(size_iter, -1)
            elif len(pending) >= 65536:
                acc.extend(pending)  # type: ignore[union-attr]
                pending.clear()
        prev = h
        expected += 1
    if pending:
        acc.extend(pending)  # type: ignore[union-attr]
    last = expected - 1
    if end_seq is not None and last < end_seq:
        return ChainFault(expected, "truncated",
                          f"chain ends at seq {last}, expected records up to {end_seq}")
    if next_size != -1:
        return ChainFault(expected, "truncated",
                          f"chain ends at seq {last} but a checkpoint attests tree size {last_size}")
    return None


def _mismatch_reason(seq: int, first_seq: int, prev_hash: bytes) -> str:
    if seq == first_seq:
        start = "genesis" if prev_hash == GENESIS else "the resume point"
        return f"stored hash does not follow from {start}: record {seq} (or its hash) was altered"
    return (f"stored hash does not follow from record {seq - 1}: record {seq} was altered, "
            f"or record {seq - 1} was altered and its hash recomputed")


def _order_fault(expected: int, seq: int, rest: Iterable[tuple[int, bytes, bytes]]) -> ChainFault:
    if seq < expected:
        return ChainFault(expected, "reordered", f"seq {seq} appears where seq {expected} should be "
                          "(repeated or out of order)")
    following = next(iter(rest), None)  # one record of lookahead tells a swap from a hole
    if following is not None and following[0] == expected:
        return ChainFault(expected, "reordered", f"seq {seq} stored before seq {expected}")
    missing = f"{expected}" if seq == expected + 1 else f"{expected}..{seq - 1}"
    return ChainFault(expected, "gap", f"seq {missing} missing (next present is {seq})")
