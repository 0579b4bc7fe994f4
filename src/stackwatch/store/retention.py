"""Retention: expire the oldest records without breaking verification of the rest.

Records are expired up to a *checkpoint boundary* S (the newest checkpoint at or below the
cutoff; one is made first so the newest records are sealed). Kept, in the same transaction
that deletes records 1..S: the chain hash of record S, the Merkle frontier at S (the roots of
the perfect subtrees S decomposes into; its root must equal the signed checkpoint's root at
S, which ``verify`` checks), the leaf hashes of the last partial 256-leaf block below S (so
proofs for the remaining records still compute), every cached node and every checkpoint.
Records 1..S are then attested only by checkpoints: their count and Merkle root are signed
and sealed, their content is gone. The run is itself an admin event in the log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson

from stackwatch.core.errors import StoreError
from stackwatch.store import sqlite_attempts, sqlite_rollup
from stackwatch.store.admin import admin_event
from stackwatch.store.merkle import MerkleAccumulator
from stackwatch.store.record_ledger import NODE_LEVEL, leaf_source, reader
from stackwatch.store.retention_margin import hold_back
from stackwatch.store.rows import to_micros
from stackwatch.store.sqlite import SQLiteStore

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZES = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}


def parse_age(text: str) -> timedelta:
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if m is None:
        raise StoreError(f"age {text!r}: use a number and s, m, h, d or w (e.g. 90d)")
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    if m is None or m.group(2).upper() not in _SIZES:
        raise StoreError(f"size {text!r}: use e.g. 500MB or 10GB")
    return int(float(m.group(1)) * _SIZES[m.group(2).upper()])


@dataclass(frozen=True, slots=True)
class RetentionResult:
    pruned_from: int
    pruned_to: int  # 0 when nothing was expired
    cutoff: int  # the seq the policy asked for (pruning stops at the checkpoint at or below it)
    admin_seq: int | None


def expire(
    store: SQLiteStore,
    *,
    max_age: timedelta | None = None,
    max_size: int | None = None,
    actor: str = "stackwatch",
) -> RetentionResult:
    """Apply a retention policy (by record age on ``received``, or by database size)."""
    if (max_age is None) == (max_size is None):
        raise StoreError("give exactly one of max_age and max_size")
    if store.format == 2:
        return _expire_blocks(store, max_age=max_age, max_size=max_size, actor=actor)
    with store._lock:
        store.checkpoint()  # also takes the append lock; the newest records get sealed first
        conn = store._conn
        size = store.size
        old = conn.execute("SELECT pruned_to FROM ledger_state").fetchone()[0]
        if max_age is not None:
            limit = to_micros(store._clock.now() - max_age)
            first_young = conn.execute(
                "SELECT min(seq) FROM events WHERE received >= ?", (limit,)
            ).fetchone()[0]
            cutoff = size if first_young is None else first_young - 1
        else:
            pages = (
                conn.execute("PRAGMA page_count").fetchone()[0]
                - conn.execute("PRAGMA freelist_count").fetchone()[0]
            )
            total = pages * conn.execute("PRAGMA page_size").fetchone()[0]
            held = max(1, size - old)
            keep = int(held * max_size / total) if total > max_size else held  # type: ignore[operator]
            cutoff = size - keep
        target = _held_back(conn, cutoff, old)
        if target <= old:
            return RetentionResult(old + 1, 0, cutoff, None)
        rd = reader(conn)
        stack, start = [], 0
        for bit in range(target.bit_length() - 1, -1, -1):
            if target >> bit & 1:
                stack.append(rd.subtree_root(start, start + (1 << bit)))
                start += 1 << bit
        frontier = MerkleAccumulator(target, stack)
        root = conn.execute(
            "SELECT body FROM checkpoints WHERE size = ? ORDER BY epoch LIMIT 1", (target,)
        ).fetchone()
        from stackwatch.store.seal import Checkpoint

        if frontier.root() != Checkpoint.from_bytes(bytes(root[0])).root:
            raise StoreError(
                "the records do not match their checkpoint: run stackwatch store verify; nothing was expired"
            )
        block = target >> NODE_LEVEL << NODE_LEVEL
        leaves = leaf_source(conn)(block, target)
        head = conn.execute("SELECT chain FROM events WHERE seq = ?", (target,)).fetchone()[0]
        now = store._clock.now()
        details: dict[str, Any] = {
            "pruned_from": old + 1,
            "pruned_to": target,
            "policy": f"max_age={max_age}" if max_age is not None else f"max_size={max_size}",
        }

        def prune(c: Any) -> None:
            c.execute(
                "UPDATE ledger_state SET pruned_to = ?, pruned_head = ?, pruned_merkle = ?, pruned_time = ?",
                (target, head, frontier.to_bytes(), to_micros(now)),
            )
            c.execute("DELETE FROM pruned_leaves")
            c.executemany("INSERT INTO pruned_leaves VALUES (?, ?)", list(enumerate(leaves, block)))
            sqlite_rollup.forget(c, target)
            sqlite_attempts.forget(c, target)
            c.execute("DELETE FROM events WHERE seq <= ?", (target,))
            c.execute("UPDATE sources SET count = (SELECT count(*) FROM events WHERE source = sources.id)")

        store._queue_admin(admin_event(actor, "retention.run", "events", details, now=now))
        rows = store._write_rows(checkpoints=[prune])
        store.flush()
        return RetentionResult(old + 1, target, cutoff, rows[-1][0] if rows else None)


def _cutoff(store: SQLiteStore, size: int, old: int, max_age: timedelta | None, max_size: int | None) -> int:
    """The last seq the policy expires (before rounding down to a checkpoint)."""
    conn = store._conn
    if max_age is not None:
        limit = to_micros(store._clock.now() - max_age)
        first_young = conn.execute("SELECT min(seq) FROM events WHERE received >= ?", (limit,)).fetchone()[0]
        return size if first_young is None else int(first_young) - 1
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    pages -= conn.execute("PRAGMA freelist_count").fetchone()[0]
    total = pages * conn.execute("PRAGMA page_size").fetchone()[0]
    held = max(1, size - old)
    keep = int(held * max_size / total) if max_size is not None and total > max_size else held
    return size - keep


def _held_back(conn: Any, cutoff: int, old: int) -> int:
    """The checkpoint size to expire up to: at or below ``cutoff``, and below what the login
    correlator holds (``retention_margin``)."""
    meta = dict(conn.execute("SELECT name, value FROM meta WHERE name IN (?, ?)",
                             (sqlite_attempts._PENDING, sqlite_attempts._UPTO)).fetchall())
    upto = meta.get(sqlite_attempts._UPTO)

    def checkpoint_at(seq: int) -> int:
        found = conn.execute("SELECT max(size) FROM checkpoints WHERE size <= ?", (seq,)).fetchone()
        return int(found[0] or 0)

    return hold_back(cutoff, old=old, held=orjson.loads(meta.get(sqlite_attempts._PENDING) or "[]"),
                     upto=int(upto) if upto is not None else None, checkpoint_at=checkpoint_at)


@dataclass(frozen=True, slots=True)
class BlockExpiry:
    """What record format 2 keeps when records 1..``records`` (blocks 1..``blocks``) expire:
    the chain hash of the last expired block, the block tree's frontier there (its root is the
    signed checkpoint's at ``records``, checked here and by verify) and the leaf hashes of the
    last partial cached group (so proofs of the remaining blocks still compute)."""

    records: int
    blocks: int
    head: bytes
    frontier: bytes
    leaves: list[tuple[int, bytes]]


def plan_block_expiry(io: Any, target: int) -> BlockExpiry:
    """The expiry of one log (any backend's ``LedgerIO``) up to checkpoint size ``target``;
    StoreError, nothing to do, when the blocks do not match that checkpoint."""
    from stackwatch.store.integrity.block_ledger import NODE_LEVEL as BLOCK_NODE_LEVEL
    from stackwatch.store.integrity.blocks import tree_root
    from stackwatch.store.integrity.proofs import reader as block_reader
    from stackwatch.store.seal import Checkpoint

    blocks = io.blocks_covering(target)
    last = next(iter(io.blocks(blocks, blocks)), None) if blocks else None
    if last is None or last.first_seq + last.count - 1 != target:
        raise StoreError(f"no block ends at checkpoint size {target}: run stackwatch store verify")
    rd = block_reader(io)
    stack, start = [], 0
    for bit in range(blocks.bit_length() - 1, -1, -1):
        if blocks >> bit & 1:
            stack.append(rd.subtree_root(start, start + (1 << bit)))
            start += 1 << bit
    frontier = MerkleAccumulator(blocks, stack)
    body = next((row.body for row in reversed(io.checkpoints()) if row.size == target), None)
    if body is None or tree_root(blocks, frontier.root()) != Checkpoint.from_bytes(body).root:
        raise StoreError("the blocks do not match their checkpoint: run stackwatch store verify; "
                         "nothing was expired")
    group = blocks >> BLOCK_NODE_LEVEL << BLOCK_NODE_LEVEL
    leaves = list(enumerate(rd._leaves(group, blocks), group))
    return BlockExpiry(target, blocks, last.chain, frontier.to_bytes(), leaves)


def _expire_blocks(store: SQLiteStore, *, max_age: timedelta | None, max_size: int | None,
                   actor: str) -> RetentionResult:
    """Record format 2: expire whole blocks, up to the newest checkpoint at or below the cutoff
    (a checkpoint always ends at a block): ``plan_block_expiry`` says what is kept."""
    from stackwatch.store.integrity.sqlite_io import SQLiteLedgerIO

    with store._lock:
        store.checkpoint()
        conn = store._conn
        io = SQLiteLedgerIO(conn)
        size = store.size
        pruned = io.pruned()
        old = pruned[0] if pruned else 0
        cutoff = _cutoff(store, size, old, max_age, max_size)
        target = _held_back(conn, cutoff, old)
        if target <= old:
            return RetentionResult(old + 1, 0, cutoff, None)
        plan = plan_block_expiry(io, target)
        now = store._clock.now()
        details: dict[str, Any] = {"pruned_from": old + 1, "pruned_to": target, "blocks": plan.blocks,
                                   "policy": policy_text(max_age, max_size)}

        def prune(c: Any) -> None:
            SQLiteLedgerIO(c).expire(target, plan.blocks, plan.head, plan.frontier, plan.leaves,
                                     to_micros(now))
            sqlite_rollup.forget(c, target)
            sqlite_attempts.forget(c, target)
            c.execute("DELETE FROM events WHERE seq <= ?", (target,))
            c.execute("UPDATE sources SET count = (SELECT count(*) FROM events WHERE source = sources.id)")

        store._queue_admin(admin_event(actor, "retention.run", "events", details, now=now))
        rows = store._write_rows(checkpoints=[prune])
        store.flush()
        return RetentionResult(old + 1, target, cutoff, rows[-1][0] if rows else None)


def policy_text(max_age: timedelta | None, max_size: int | None) -> str:
    return f"max_age={max_age}" if max_age is not None else f"max_size={max_size}"
