"""The tamper-evident ledger inside the SQLite store: record bytes, chain, Merkle tree, checkpoints.

Every stored event row becomes canonical record bytes (``chain.canonical_record_bytes``)::

    raw        = the events.raw column (the record's exact bytes)
    normalized = orjson array of the stored normalized fields, in NORMALIZED_FIELDS order
                 (time, host, service, severity, kind, action, outcome, initiator x6, target x3,
                 observer, request_id, message, attrs (the stored JSON text), ref)
    received   = events.received (microseconds), origin = events.origin

so verification recomputes them from exactly what a query would read (host and service by
name, not by the internal source id: rewriting the ``sources`` table is caught). The Merkle leaf
is ``leaf_hash(record bytes)`` at index ``seq-1``; the chain hash ``SHA-256(previous || leaf)``
goes into ``events.chain``.
``ledger_state`` (one row) holds the chain head and the accumulator; ``merkle_nodes`` caches
perfect subtree roots of level >= NODE_LEVEL. Both are written in the same transaction as the
rows they describe, so a restart continues exactly where the last commit ended.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Callable, Iterator, Sequence
from hashlib import sha256
from pathlib import Path
from typing import Final

import orjson

from stackwatch.store.chain import GENESIS, LEAF_HEAD, MAGIC, RECORD_HEAD
from stackwatch.store.merkle import MerkleAccumulator, MerkleReader
from stackwatch.store.rows import Row, clean_row

NODE_LEVEL: Final = 8
KEYS_DIR: Final = "keys"
SIGN_KEY: Final = "sign.key"
SIGN_PUB: Final = "sign.pub"
SEAL_KEY: Final = "seal.key"

NORMALIZED_FIELDS: Final = (
    "time",
    "host",
    "service",
    "severity",
    "kind",
    "action",
    "outcome",
    "init_name",
    "init_id",
    "init_project",
    "init_domain",
    "init_ip",
    "init_agent",
    "target_type",
    "target_id",
    "target_name",
    "observer",
    "request_id",
    "message",
    "attrs",
    "ref",
)

# seq, received, raw, origin, chain, then the normalized fields: row[5:] is the normalized tuple.
LEDGER_SELECT: Final = (  # fixed column names
    "SELECT e.seq, e.received, e.raw, e.origin, e.chain, e.time, s.host, s.service, "  # noqa: S608
    + ", ".join(f"e.{c}" for c in NORMALIZED_FIELDS[3:])
    + " FROM events AS e LEFT JOIN sources AS s ON s.id = e.source"
)

_dumps = orjson.dumps


def key_paths(data_dir: Path) -> tuple[Path, Path, Path]:
    """(signing key, public key, sealing key) in the data folder."""
    keys = Path(data_dir) / KEYS_DIR
    return keys / SIGN_KEY, keys / SIGN_PUB, keys / SEAL_KEY


def iter_ledger(
    conn: sqlite3.Connection, first: int, last: int | None = None, chunk: int = 8192
) -> Iterator[tuple[int, bytes, bytes]]:
    """``(seq, record bytes, stored chain hash)`` in seq order from ``first``. A row whose columns
    an intruder gave the wrong types yields empty bytes (it then fails the chain check)."""
    # One statement read with fetchmany (no per-chunk re-query, no gap probing): the verify
    # loop is bound by SQLite handing over the columns, so the Python side stays minimal.
    pack, dumps, magic = RECORD_HEAD.pack, _dumps, MAGIC
    if last is None:
        cur = conn.execute(LEDGER_SELECT + " WHERE e.seq >= ? ORDER BY e.seq", (first,))
    else:
        cur = conn.execute(LEDGER_SELECT + " WHERE e.seq BETWEEN ? AND ? ORDER BY e.seq", (first, last))
    fetch = cur.fetchmany
    while rows := fetch(chunk):
        for row in rows:
            raw = row[2]
            try:
                norm = dumps(row[5:])
                o = row[3].encode("utf-8", "surrogatepass")
                rec = pack(magic, row[0], row[1], len(raw), len(norm), len(o)) + raw + norm + o
            except (TypeError, ValueError, AttributeError, struct.error, orjson.JSONEncodeError):
                rec = b""
            chain = row[4]
            yield row[0], rec, chain if type(chain) is bytes else b""


# The verify fast path: the same record bytes with the normalized array built by SQLite's
# json_array (byte-identical to orjson's for the ints, texts and NULLs rows hold: same escapes,
# UTF-8 kept as is) and origin as its stored UTF-8, so one row is 6 values instead of 26.
# It is only trusted to say "all good": any difference (a blob where text belongs, a type
# change, an escape SQLite writes differently) makes a hash differ, and the caller then runs the
# reference path (iter_ledger + chain.verify_chain), which reports the exact fault.
_SCAN_SELECT: Final = (  # fixed column names
    "SELECT e.seq, e.received, e.raw, "  # noqa: S608
    "CASE WHEN typeof(e.origin) = 'text' THEN CAST(e.origin AS BLOB) END, e.chain, "
    "CAST(json_array(e.time, s.host, s.service, "
    + ", ".join(f"e.{c}" for c in NORMALIZED_FIELDS[3:])
    + ") AS BLOB) FROM events AS e LEFT JOIN sources AS s ON s.id = e.source "
    "WHERE e.seq BETWEEN ? AND ? ORDER BY e.seq"
)


def scan_ledger(
    conn: sqlite3.Connection,
    first: int,
    last: int,
    prev_hash: bytes,
    acc: MerkleAccumulator | None = None,
    sizes: Sequence[int] = (),
    at_size: Callable[[int], bool] | None = None,
    chunk: int = 8192,
) -> bytes | None:
    """Fast check that records ``first..last`` are all present in order and each stored chain
    hash follows from ``prev_hash``: the last chain hash, or None on *any* doubt (the caller
    then runs the reference check). With ``acc`` (at ``first - 1`` leaves) the leaf hashes are
    appended to it and ``at_size(s)`` is called at each of ``sizes`` (ascending, within the
    range) once ``acc`` holds ``s`` leaves; False from it also means doubt."""
    pack, magic = LEAF_HEAD.pack, MAGIC
    size_iter = iter(sizes)
    next_size = next(size_iter, 0)
    leaves: list[bytes] = []
    push = leaves.append
    expected = first
    h = prev_hash
    try:
        fetch = conn.execute(_SCAN_SELECT, (first, last)).fetchmany
        while rows := fetch(chunk):
            if acc is None:
                for seq, received, raw, o, stored, norm in rows:
                    if seq != expected:
                        return None
                    leaf = sha256(pack(b"\x00", magic, seq, received, len(raw), len(norm), len(o))
                                  + raw + norm + o).digest()
                    h = sha256(h + leaf).digest()
                    if h != stored:
                        return None
                    expected += 1
                continue
            for seq, received, raw, o, stored, norm in rows:
                if seq != expected:
                    return None
                leaf = sha256(pack(b"\x00", magic, seq, received, len(raw), len(norm), len(o))
                              + raw + norm + o).digest()
                h = sha256(h + leaf).digest()
                if h != stored:
                    return None
                push(leaf)
                if seq == next_size:
                    acc.extend(leaves)
                    leaves.clear()
                    if at_size is None or not at_size(seq):
                        return None
                    next_size = next(size_iter, 0)
                expected += 1
            acc.extend(leaves)
            leaves.clear()
    except (sqlite3.Error, TypeError, ValueError, struct.error):
        return None
    return h if expected == last + 1 else None


class LedgerState:
    """The writer's ledger: chain head and Merkle accumulator, loaded from and saved to the
    database in the writer's transactions."""

    def __init__(self, size: int = 0, head: bytes = GENESIS, merkle: bytes | None = None) -> None:
        self.nodes: list[tuple[int, int, bytes]] = []
        self.size = size
        self.head = head
        sink = self._sink
        self.acc = (
            MerkleAccumulator.from_bytes(merkle, node_sink=sink, sink_min_level=NODE_LEVEL)
            if merkle
            else MerkleAccumulator(node_sink=sink, sink_min_level=NODE_LEVEL)
        )
        if self.acc.size != size:
            raise ValueError("ledger state: accumulator size does not match")

    def _sink(self, level: int, index: int, h: bytes) -> None:
        self.nodes.append((level, index, h))

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> LedgerState:
        row = conn.execute("SELECT size, head, merkle FROM ledger_state WHERE id = 1").fetchone()
        if row is None:
            return cls()
        return cls(row[0], row[1], row[2])

    def snapshot(self) -> tuple[int, bytes, bytes]:
        return self.size, self.head, self.acc.to_bytes()

    def root(self) -> bytes:
        """What a checkpoint at ``size`` signs (as ``BlockLedger.root`` for format 2)."""
        return self.acc.root()

    def restore(self, snap: tuple[int, bytes, bytes]) -> None:
        """Back to a snapshot (after a rolled-back transaction)."""
        self.size, self.head = snap[0], snap[1]
        self.acc = MerkleAccumulator.from_bytes(snap[2], node_sink=self._sink, sink_min_level=NODE_LEVEL)
        self.nodes.clear()

    def chain_rows(self, rows: list[Row], names: dict[int, tuple[str, str]]) -> list[Row]:
        """Rows (EVENT_COLUMNS order) with their chain hash appended; advances head and
        accumulator (see ``chain_batch``)."""
        out, leaves, head = chain_batch(rows, names, self.head)
        self.advance(leaves, head)
        return out

    def advance(self, leaves: list[bytes], head: bytes) -> None:
        """Take in records chained elsewhere (``chain_batch``, ``RowBuilder.chained_rows``):
        their leaf hashes in seq order and the chain hash of the last one."""
        self.acc.extend(leaves)  # the whole batch at once, level by level
        self.head = head
        self.size += len(leaves)

    def save(self, conn: sqlite3.Connection) -> None:
        """Write head, accumulator and new cache nodes (inside the caller's transaction)."""
        if self.nodes:
            conn.executemany("INSERT OR REPLACE INTO merkle_nodes VALUES (?, ?, ?)", self.nodes)
            self.nodes.clear()
        conn.execute(
            "UPDATE ledger_state SET size = ?, head = ?, merkle = ? WHERE id = 1",
            (self.size, self.head, self.acc.to_bytes()),
        )


def chain_batch(
    rows: list[Row], names: dict[int, tuple[str, str]], head: bytes
) -> tuple[list[Row], list[bytes], bytes]:
    """``(rows with their chain hash appended, leaf hashes, new head)`` for rows (EVENT_COLUMNS
    order) following ``head``. Rows holding text SQLite cannot store are cleaned first (so what
    is hashed is exactly what is stored)."""
    out: list[Row] = []
    push = out.append
    leaves: list[bytes] = []
    leaf = leaves.append
    pack, dumps, magic = LEAF_HEAD.pack, _dumps, MAGIC
    h = head
    for r in rows:
        try:
            host, service = names[r[3]]
            norm = dumps((r[1], host, service, *r[4:21], r[23]))
            o = r[22].encode()
        except (orjson.JSONEncodeError, UnicodeEncodeError, TypeError):
            r = clean_row(r)
            host, service = names[r[3]]
            norm = dumps((r[1], host, service, *r[4:21], r[23]))
            o = r[22].encode()
        raw = r[21]
        lh = sha256(pack(b"\x00", magic, r[0], r[2], len(raw), len(norm), len(o)) + raw + norm + o).digest()
        h = sha256(h + lh).digest()
        leaf(lh)
        push((*r, bytearray(h)))  # sqlite3 binds a bytearray directly, bytes via an adapter lookup
    return out, leaves, h


class DbNodeCache:
    """merkle_nodes as a MerkleReader cache (reads the table; new nodes stay in memory)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._mem: dict[tuple[int, int], bytes] = {}

    def get(self, key: tuple[int, int], /) -> bytes | None:
        hit = self._mem.get(key)
        if hit is None:
            row = self._conn.execute(
                "SELECT hash FROM merkle_nodes WHERE level = ? AND idx = ?", key
            ).fetchone()
            hit = row[0] if row else None
        return hit

    def __setitem__(self, key: tuple[int, int], value: bytes, /) -> None:
        self._mem[key] = value


def leaf_source(conn: sqlite3.Connection) -> Callable[[int, int], list[bytes]]:
    """``get_leaf_hashes(start, end)`` over the stored records (and the leaves kept for the
    boundary of a pruned range)."""
    pruned_to = pruned_size(conn)

    def get(start: int, end: int) -> list[bytes]:
        out: list[bytes] = []
        if start < pruned_to:
            kept = dict(
                conn.execute(
                    "SELECT idx, hash FROM pruned_leaves WHERE idx BETWEEN ? AND ?",
                    (start, min(end, pruned_to) - 1),
                ).fetchall()
            )
            for i in range(start, min(end, pruned_to)):
                if i not in kept:
                    raise LookupError(f"leaf {i} (seq {i + 1}) was pruned by retention")
                out.append(kept[i])
            start = pruned_to
        if start < end:
            for _, rec, _ in iter_ledger(conn, start + 1, end):
                out.append(sha256(b"\x00" + rec).digest())
        return out

    return get


def pruned_size(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT pruned_to FROM ledger_state WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


def reader(conn: sqlite3.Connection) -> MerkleReader:
    return MerkleReader(leaf_source(conn), DbNodeCache(conn), NODE_LEVEL)


def rechain_over_leaves(conn: sqlite3.Connection) -> int:
    """The v3 -> v4 upgrade (inside the caller's transaction): chain hashes were
    ``SHA-256(previous || record bytes)``, they become ``SHA-256(previous || leaf hash)``.
    Merkle leaves, roots and checkpoints are unchanged. Each record's old hash is checked
    before it is replaced, so an upgrade never launders a broken chain: at the first record
    that does not follow, re-chaining stops and everything from there keeps its old hash,
    which ``store verify`` then reports at that same record. Returns the records re-chained."""
    row = conn.execute("SELECT pruned_to, pruned_head FROM ledger_state WHERE id = 1").fetchone()
    if row is None:
        return 0
    old = new = row[1] if row[0] else GENESIS
    done = 0
    updates: list[tuple[bytes, int]] = []
    for seq, rec, stored in iter_ledger(conn, row[0] + 1):
        leaf = sha256(b"\x00" + rec).digest()
        if done == 0 and stored == sha256(new + leaf).digest():
            return 0  # already chained over leaves (chain_existing ran in this same upgrade)
        old = sha256(old + rec).digest()
        if stored != old:
            break
        new = sha256(new + leaf).digest()
        updates.append((new, seq))
        done += 1
        if len(updates) >= 20_000:
            conn.executemany("UPDATE events SET chain = ? WHERE seq = ?", updates)
            updates.clear()
    else:
        conn.execute("UPDATE ledger_state SET head = ? WHERE id = 1", (new,))
    conn.executemany("UPDATE events SET chain = ? WHERE seq = ?", updates)
    return done


def chain_existing(conn: sqlite3.Connection) -> LedgerState:
    """Chain every event already stored (the v2 -> v3 upgrade), inside the caller's transaction."""
    state = LedgerState()
    names = {i: (h, s) for i, h, s in conn.execute("SELECT id, host, service FROM sources")}
    last = 0
    while True:
        rows = conn.execute(
            "SELECT seq, time, received, source, severity, kind, action, outcome, init_name, "
            "init_id, init_project, init_domain, init_ip, init_agent, target_type, target_id, "
            "target_name, observer, request_id, message, attrs, raw, origin, ref FROM events "
            "WHERE seq > ? ORDER BY seq LIMIT 20000",
            (last,),
        ).fetchall()
        if not rows:
            break
        chained = state.chain_rows([(*r[:21], bytearray(r[21]), *r[22:]) for r in rows], names)
        conn.executemany("UPDATE events SET chain = ? WHERE seq = ?", [(r[-1], r[0]) for r in chained])
        last = rows[-1][0]
    return state
