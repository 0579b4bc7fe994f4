"""The SQLite store without its tamper-evident chain: for the benchmark's chain-off comparison only.

``benchmarks.stage parse_detect_store_nochain`` measures what the chain costs end to end by
running the same pipeline into this store: the same schema, the same row building, the same
batched ``INSERT``s, source statistics and search indexing, with only the per-record canonical
bytes, chain hash, Merkle leaf and node hashing, ledger state and checkpoints left out.

It is deliberately not an option of ``open_store`` (configuration passes its options there):
only code that imports this class gets a store without a chain. It must start empty, and it
marks the store (a ``meta`` row) so that ``SQLiteStore`` refuses to open it afterwards: a store
written this way can never pass for a tamper-evident one (``store verify`` fails it, too).
"""

from __future__ import annotations

from stackwatch.store.sqlite import SQLiteStore
from stackwatch.store.sqlite_blocks import BlockStore


class UnchainedBenchmarkStore(SQLiteStore):
    """``SQLiteStore`` minus the chain (see the module docstring); for benchmarks only."""

    _chained = False


class UnchainedBlockStore(BlockStore):
    """Record format 2 minus its chain work: blocks without record digests (zeros), the rest
    (compression, block rows, narrow rows, rollups, indexing) as in ``BlockStore``; marked and
    refused afterwards like ``UnchainedBenchmarkStore``. For benchmarks only."""

    _chained = False
