"""What the integrity layer needs from a database: a small interface, not ``sqlite3``.

Everything the v2 chain, Merkle tree, checkpoints, verification and proofs read or write goes
through ``LedgerIO``. Calls that write run inside the caller's transaction: the backend owns
transactions (the writer commits blocks, index rows, ledger state and a checkpoint together).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StoredBlock:
    """One block as stored: its number (1-based; Merkle leaf ``number - 1``), the first seq
    and record count it holds, the records' digests, the compressed data and its chain hash."""

    number: int
    first_seq: int
    count: int
    digests: bytes
    data: bytes
    chain: bytes


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    epoch: int
    size: int
    body: bytes
    signature: bytes
    seal: bytes


class LedgerIO(Protocol):
    """The storage an integrity layer runs on (see the module docstring)."""

    # -- the writer's state -----------------------------------------------------------------
    def load_state(self) -> tuple[int, bytes, bytes | None]:
        """(blocks chained, chain head, Merkle accumulator bytes or None when empty)."""
        ...

    def save_state(
        self, size: int, head: bytes, merkle: bytes, nodes: Sequence[tuple[int, int, bytes]]
    ) -> None:
        """Store the state and new cached Merkle nodes (level, index, hash)."""
        ...

    def anchor(self) -> bytes | None:
        """The chain's genesis when it continues a migrated v1 store (else None: GENESIS)."""
        ...

    # -- blocks -----------------------------------------------------------------------------
    def insert_blocks(self, blocks: Sequence[StoredBlock]) -> None: ...

    def blocks(self, first: int = 1, last: int | None = None) -> Iterator[StoredBlock]:
        """Stored blocks with number in [first, last], by number (gaps and all, as stored)."""
        ...

    def block_of(self, seq: int) -> StoredBlock | None:
        """The block holding record ``seq``."""
        ...

    def block_count(self) -> int: ...

    def blocks_covering(self, records: int) -> int:
        """How many blocks hold records 1..``records`` (the tree size of a checkpoint at that size)."""
        ...

    def leaf_inputs(self, start: int, end: int) -> list[tuple[int, int, bytes]]:
        """(number, first_seq, digests) of blocks start+1..end (Merkle leaves start..end-1)."""
        ...

    def node(self, level: int, index: int) -> bytes | None:
        """A cached perfect subtree root, or None."""
        ...

    def pruned(self) -> tuple[int, int, bytes, bytes] | None:
        """After retention: (records expired, blocks expired, chain hash of the last expired block,
        Merkle frontier at it); None when nothing was expired."""
        ...

    def pruned_leaves(self, start: int, end: int) -> list[bytes]:
        """Leaf hashes start..end-1 kept of expired blocks (the last partial cached group)."""
        ...

    def expire(
        self,
        records: int,
        blocks: int,
        head: bytes,
        frontier: bytes,
        leaves: Sequence[tuple[int, bytes]],
        time_us: int,
    ) -> None:
        """Delete blocks 1..``blocks`` (records 1..``records``), keeping what verification and
        proofs of the rest need (inside the caller's transaction)."""
        ...

    # -- checkpoints ------------------------------------------------------------------------
    def insert_checkpoint(self, row: CheckpointRow, time_us: int) -> None: ...

    def checkpoints(self) -> list[CheckpointRow]:
        """Every checkpoint, by epoch."""
        ...

    def last_checkpoint(self) -> CheckpointRow | None: ...

    def signers(self) -> list[tuple[int, bytes]]:
        """(from epoch, public key) of every signer segment, by epoch."""
        ...
