"""The v2 writer's ledger: chain head and Merkle accumulator over block leaves."""

from __future__ import annotations

from typing import Final

from stackwatch.store.chain import GENESIS
from stackwatch.store.integrity.blocks import DIGEST_SIZE, block_leaf, chain_link, tree_root
from stackwatch.store.integrity.io import LedgerIO, StoredBlock
from stackwatch.store.merkle import MerkleAccumulator

NODE_LEVEL: Final = 4
"""Cache perfect subtree roots from 16 blocks up (a proof then reads O(log n) rows)."""


class BlockLedger:
    """Loaded from and saved through a ``LedgerIO`` in the writer's transactions. ``size``
    counts records (the last seq chained, as in format 1), ``blocks`` the Merkle leaves."""

    def __init__(self, size: int = 0, head: bytes = GENESIS, merkle: bytes | None = None) -> None:
        self.nodes: list[tuple[int, int, bytes]] = []
        self.size = size
        self.head = head
        self.acc = self._acc(merkle)
        if (self.acc.size == 0) != (size == 0):
            raise ValueError("ledger state: accumulator size does not match")

    @property
    def blocks(self) -> int:
        return self.acc.size

    def _acc(self, merkle: bytes | None) -> MerkleAccumulator:
        if merkle:
            return MerkleAccumulator.from_bytes(merkle, node_sink=self._sink, sink_min_level=NODE_LEVEL)
        return MerkleAccumulator(node_sink=self._sink, sink_min_level=NODE_LEVEL)

    def _sink(self, level: int, index: int, h: bytes) -> None:
        self.nodes.append((level, index, h))

    @classmethod
    def load(cls, io: LedgerIO) -> BlockLedger:
        size, head, merkle = io.load_state()
        if size == 0:
            head = io.anchor() or GENESIS
        return cls(size, head, merkle)

    def snapshot(self) -> tuple[int, bytes, bytes]:
        return self.size, self.head, self.acc.to_bytes()

    def restore(self, snap: tuple[int, bytes, bytes]) -> None:
        self.size, self.head = snap[0], snap[1]
        self.acc = self._acc(snap[2])
        self.nodes.clear()

    def add(self, first_seq: int, data: bytes, digests: bytes) -> StoredBlock:
        """Chain and accumulate the next block."""
        number = self.acc.size + 1
        count = len(digests) // DIGEST_SIZE
        leaf = block_leaf(number, first_seq, digests)
        self.head = chain_link(self.head, leaf)
        self.acc.append(leaf)
        self.size = first_seq + count - 1
        return StoredBlock(number, first_seq, count, digests, data, self.head)

    def root(self) -> bytes:
        """What a checkpoint at ``size`` records signs (``blocks.tree_root``)."""
        return tree_root(self.acc.size, self.acc.root())

    def save(self, io: LedgerIO) -> None:
        io.save_state(self.size, self.head, self.acc.to_bytes(), self.nodes)
        self.nodes.clear()
