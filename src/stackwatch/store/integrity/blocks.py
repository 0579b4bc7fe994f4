"""Blocks: many records' exact bytes, compressed, hashed once.

A record's bytes are v1's canonical record bytes (``chain.canonical_record_bytes``: seq,
received, the raw line, the normalized fields as a JSON array, the origin), so a record reads
back as an Event without re-parsing, and a migrated v1 record is byte for byte what v1
hashed. A block holds consecutive seqs: its payload is their concatenation (each record is
self-delimiting), compressed with zstd. Its Merkle leaf hashes ``BLOCK_HEAD`` (number, first
seq, count) and the records' digests (the first DIGEST_SIZE bytes of each record's v1 leaf
hash): a flipped byte is pinned to one record, and a record's inclusion proof needs only the
digest list, not the block's data. The chain links block leaves: ``chain = SHA-256(previous
chain || leaf)``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from hashlib import sha256
from typing import Final

import zstandard

from stackwatch.store.chain import MAGIC, RECORD_HEAD
from stackwatch.store.merkle import leaf_hash

BLOCK_BYTES: Final = 128 * 1024
"""A block closes once its records reach this many (uncompressed) bytes, or at a commit."""
DIGEST_SIZE: Final = 16
"""Bytes of a record's digest in the block's leaf (128 bits: second preimages stay out of reach)."""
ZSTD_LEVEL: Final = 1
"""Measured on block payloads here: level 1 is both faster and smaller than 3 (47 vs 51 bytes a
record at 760k vs 690k records/s); 6-12 save 10% at a tenth of the speed."""
BLOCK_MAGIC: Final = b"SWB1"
BLOCK_HEAD: Final = struct.Struct(">4sQQI")  # magic, block number, first seq, record count
_LEAF_PREFIX: Final = b"\x00"


class BlockError(ValueError):
    """A block's data cannot be decoded into records."""


def record_digest(record: bytes) -> bytes:
    """The record's v1 Merkle leaf hash, cut to DIGEST_SIZE bytes."""
    return sha256(_LEAF_PREFIX + record).digest()[:DIGEST_SIZE]


def block_leaf(number: int, first_seq: int, digests: bytes) -> bytes:
    """The block's Merkle leaf hash (RFC 6962: SHA-256(0x00 || leaf input))."""
    count = len(digests) // DIGEST_SIZE
    return leaf_hash(BLOCK_HEAD.pack(BLOCK_MAGIC, number, first_seq, count) + digests)


def chain_link(prev: bytes, leaf: bytes) -> bytes:
    return sha256(prev + leaf).digest()


ANCHOR_TAG: Final = b"stackwatch-v2-anchor\x00"


def anchor_of(checkpoint_body: bytes) -> bytes:
    """The genesis of a migrated store's block chain: it commits to the last signed format 1
    checkpoint (its size, record tree root and epoch), so the new chain continues the old history."""
    return sha256(ANCHOR_TAG + checkpoint_body).digest()


ROOT_TAG: Final = b"stackwatch-blocks-root\x00"


def tree_root(blocks: int, mth: bytes) -> bytes:
    """The root a checkpoint signs: the Merkle tree hash of ``blocks`` block leaves, bound to
    that count (a checkpoint's size counts records, as in format 1, so the block count the tree
    has is signed here)."""
    return sha256(ROOT_TAG + blocks.to_bytes(8, "big") + mth).digest()


class BlockEncoder:
    """Compresses blocks (one zstd context, reused: the writer's thread only)."""

    def __init__(self, level: int = ZSTD_LEVEL) -> None:
        self._zstd = zstandard.ZstdCompressor(level=level, write_checksum=False, write_content_size=True)

    def encode_unchained(self, records: Sequence[bytes]) -> tuple[bytes, bytes]:
        """Benchmarks only (``benchmark_unchained.UnchainedBlockStore``): zeros for digests."""
        return self._zstd.compress(b"".join(records)), bytes(DIGEST_SIZE * len(records))

    def encode(self, records: Sequence[bytes]) -> tuple[bytes, bytes]:
        """(compressed data, digests) of ``records``."""
        prefix = _LEAF_PREFIX
        digests = b"".join([sha256(prefix + r).digest()[:DIGEST_SIZE] for r in records])
        return self._zstd.compress(b"".join(records)), digests


_DECOMPRESSOR: Final = zstandard.ZstdDecompressor()


def payload(data: bytes) -> bytes:
    """The block's uncompressed payload; BlockError when the data is not one intact zstd frame."""
    try:
        return _DECOMPRESSOR.decompress(data)
    except zstandard.ZstdError as exc:
        raise BlockError(f"block data does not decompress: {exc}") from None


def content_size(data: bytes) -> int | None:
    """The payload size a block's zstd frame header declares (the writer always writes it)."""
    try:
        size = zstandard.frame_content_size(data)
    except zstandard.ZstdError:
        return None
    return size if size >= 0 else None


def salvage(data: bytes, chunk: int = 64) -> bytes:
    """As much of a damaged block's payload as decompresses (for naming its first bad record)."""
    out = bytearray()
    stream = zstandard.ZstdDecompressor().decompressobj()
    for i in range(0, len(data), chunk):
        try:
            out += stream.decompress(data[i : i + chunk])
        except zstandard.ZstdError:
            break
    return bytes(out)


def split_records(body: bytes) -> Iterator[bytes]:
    """The records of a payload, in order; stops (BlockError) at the first malformed one."""
    size = RECORD_HEAD.size
    pos, end = 0, len(body)
    unpack = RECORD_HEAD.unpack_from
    while pos < end:
        if end - pos < size:
            raise BlockError(f"truncated record header at byte {pos}")
        magic, _, _, n_raw, n_norm, n_origin = unpack(body, pos)
        if magic != MAGIC:
            raise BlockError(f"no record tag at byte {pos}")
        stop = pos + size + n_raw + n_norm + n_origin
        if stop > end:
            raise BlockError(f"record at byte {pos} runs past the block")
        yield body[pos:stop]
        pos = stop


def records(data: bytes) -> list[bytes]:
    """Every record of a block's (intact) data."""
    return list(split_records(payload(data)))


def digests_of(digests: bytes) -> list[bytes]:
    return [digests[i : i + DIGEST_SIZE] for i in range(0, len(digests), DIGEST_SIZE)]
