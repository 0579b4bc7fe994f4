"""Record format v2 in the embedded store: raw records in chained, compressed blocks.

Same data folder, same alerts, silences, sources, rollups and search index as format 1
(``sqlite``); what changes is where a record lives and what is chained:

* a record's exact bytes (``chain.canonical_record_bytes``: raw line, normalized fields,
  received time, origin) go into a block (``integrity.blocks``) of consecutive seqs, closed at
  BLOCK_BYTES or at a commit, zstd-compressed, with one Merkle leaf and one chain link per
  block, sealed by the same checkpoints and ratchet (a checkpoint's size counts blocks);
* the ``events`` table keeps a **narrow row** per record: seq, time, received, source and the
  columns searches filter and facet on (severity, kind, action, outcome, initiator name / id
  / project / domain / IP, target id / name, request id; the domain since tenant scopes match
  a user's name with it: rows stored before hold '' there, so no name-only failure among
  them reaches a tenant); message, attrs, raw line, origin, ref and
  the rest are '' there and read from the block. Searches, counts, histograms, facets and the
  rollups run on these rows exactly as in format 1; the full-text index is filled from the
  blocks' messages.

``store verify`` checks the blocks (``integrity.verify``) and also that every narrow row says
what its record says.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import orjson

from stackwatch.core.errors import IntegrityError, StoreError
from stackwatch.core.event import Event
from stackwatch.store import sqlite_rollup
from stackwatch.store.base import QueryError, StoredEvent
from stackwatch.store.integrity import blocks as codec
from stackwatch.store.integrity.io import StoredBlock
from stackwatch.store.integrity.ledger import BlockLedger
from stackwatch.store.integrity.records import record_bytes, record_event, record_message, record_row
from stackwatch.store.integrity.sqlite_io import FORMAT_META, SQLiteLedgerIO, ensure_schema
from stackwatch.store.rows import EVENT_COLUMNS, Row, clean_row, to_micros
from stackwatch.store.scope import Scope
from stackwatch.store.sqlite import _SOURCE_STATS, SQLiteStore, _json_ints
from stackwatch.store.sqlite_scope import event_condition

FORMAT: Final = 2
CACHED_BLOCKS: Final = 32
MAX_BLOCK_PAYLOAD: Final = 64 * 1024 * 1024
"""A received block claiming a larger payload is refused before it is decompressed."""
TEXTS_KEPT: Final = 400_000
"""Most messages kept in memory for the indexer (see ``BlockStore._texts``)."""
_KEPT: Final = frozenset(
    (
        "seq",
        "time",
        "received",
        "source",
        "severity",
        "kind",
        "action",
        "outcome",
        "init_name",
        "init_id",
        "init_project",
        "init_domain",  # a tenant's scope matches keystone failures by user name *and* domain
        "init_ip",
        "target_id",
        "target_name",
        "request_id",
    )
)
NARROW_COLUMNS: Final = tuple(c for c in EVENT_COLUMNS if c in _KEPT)


def _narrow_insert() -> str:
    # Numbered parameters bind the full row tuple as it is; the wide columns get '' (a byte in
    # the row header). ?24 (ref) is named once so the statement takes all 24 values.
    values = [
        f"?{n}" if c in _KEPT else ("x''" if c == "raw" else "''") for n, c in enumerate(EVENT_COLUMNS, 1)
    ]
    values[-1] = "substr(?24, 1, 0)"
    return f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join(values)})"  # noqa: S608


_INSERT_NARROW: Final = _narrow_insert()
def block_messages(conn: sqlite3.Connection, low: int, high: int) -> Iterable[tuple[int, str]]:
    """(seq, message) of records low+1..high, read from the blocks of the attached record ``ev``."""
    rows = conn.execute(
        "SELECT first_seq, data FROM ev.blocks WHERE first_seq <= ? AND first_seq + count > ? ORDER BY id",
        (high, low),
    ).fetchall()
    for first, data in rows:
        for offset, record in enumerate(codec.records(data)):
            seq = first + offset
            if low < seq <= high:
                yield record_message(record)


def _decoded_block(number: int, first: int, data: bytes) -> list[bytes]:
    try:
        return codec.records(data)
    except codec.BlockError as exc:
        raise StoreError(
            f"block {number} of the store is damaged ({exc}): run stackwatch store verify"
        ) from None


def block_events(
    conn: sqlite3.Connection,
    seqs: Sequence[int],
    *,
    scope: Scope | None = None,
    records_of: Callable[[int, int, bytes], list[bytes]] = _decoded_block,
) -> list[tuple[int, Event]]:
    """(seq, Event) of the records ``seqs`` whose narrow row is still stored (and, with
    ``scope``, is about that tenant), in seq order, read from the blocks through ``conn``.
    ``records_of(number, first_seq, data)`` decodes a block (the store passes its cache)."""
    wanted = sorted({int(seq) for seq in seqs})
    if not wanted:
        return []
    # a tenant's scope reads the narrow row's columns (init_project, target_id, init_id,
    # init_name, init_domain, init_ip are all kept there), the same condition as format 1's
    condition, params = event_condition(scope) if scope is not None else ("1", [])
    present = {seq for (seq,) in conn.execute(
        f"SELECT e.seq FROM events AS e WHERE e.seq IN (SELECT value FROM json_each(?)) AND {condition}",  # noqa: S608
        (_json_ints(wanted), *params))}
    wanted = [seq for seq in wanted if seq in present]  # retention may have removed some
    spans = conn.execute(
        "SELECT id, first_seq, count, data FROM blocks WHERE id IN (SELECT (SELECT id FROM blocks "
        "WHERE first_seq <= value ORDER BY first_seq DESC LIMIT 1) FROM json_each(?)) ORDER BY first_seq",
        (_json_ints(wanted),),
    ).fetchall()
    out: list[tuple[int, Event]] = []
    i = 0
    for number, first, count, data in spans:
        records: list[bytes] | None = None
        while i < len(wanted) and wanted[i] < first + count:
            seq = wanted[i]
            i += 1
            if seq < first:
                continue
            if records is None:
                records = records_of(number, first, data)
            stored_seq, event = record_event(records[seq - first])
            if stored_seq != seq:
                raise StoreError(
                    f"block {number} holds record {stored_seq} where {seq} was due: "
                    "run stackwatch store verify"
                )
            out.append((seq, event))
    return out


class BlockStore(SQLiteStore):
    """``SQLiteStore`` with record format v2 (see the module docstring)."""

    def __init__(self, *args: Any, **options: Any) -> None:
        self._encoder = codec.BlockEncoder()
        self._cache: OrderedDict[int, tuple[int, list[bytes]]] = OrderedDict()
        # Messages of committed records not indexed yet, handed to this process's indexer so it
        # does not decompress and decode them again (a bounded cache: past it, or for records
        # another process wrote, the indexer reads the blocks).
        self._texts: dict[int, str] = {}
        self._texts_lock = threading.Lock()
        super().__init__(*args, **options)
        self._io = SQLiteLedgerIO(self._conn)
        self._read_io = SQLiteLedgerIO(self._reader)
        if self.read_only and self._read_io.anchor() is None and not self._has_blocks_table():
            raise StoreError(f"the store in {self.data_dir} is not in record format 2")

    def _has_blocks_table(self) -> bool:
        return (
            self._reader.execute("SELECT 1 FROM sqlite_master WHERE name = 'blocks'").fetchone() is not None
        )

    @property
    def format(self) -> int:
        return FORMAT

    def _prepare_schema(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            fmt = self._conn.execute("SELECT value FROM meta WHERE name = ?", (FORMAT_META,)).fetchone()
            if fmt is None:
                if self._conn.execute("SELECT count(*) FROM events").fetchone()[0]:
                    raise StoreError(
                        f"the store in {self.data_dir} holds format 1 records: convert it with "
                        "stackwatch store migrate"
                    )
                self._conn.execute("INSERT INTO meta VALUES (?, ?)", (FORMAT_META, str(FORMAT)))
            elif int(fmt[0]) != FORMAT:
                raise StoreError(f"the store in {self.data_dir} is in record format {fmt[0]}")
            ensure_schema(self._conn)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    # -- the writer ------------------------------------------------------------------------

    def _load_ledger(self) -> BlockLedger:
        return BlockLedger.load(SQLiteLedgerIO(self._conn))

    def _ledger_matches(self) -> bool:
        assert isinstance(self._ledger, BlockLedger)
        return (
            self._ledger.blocks == SQLiteLedgerIO(self._conn).block_count()
            and self._ledger.size == self._next_seq - 1
        )

    def append_events(self, events: Sequence[Event]) -> list[int]:
        with self._lock:
            self._check_writable()
            if self._append_lock is None:
                self._take_append_lock()
            if self._role != "primary":
                raise StoreError(
                    f"the store in {self.data_dir} is a {self._role}: promote it first "
                    "(stackwatch store promote)"
                )
            first = self._next_seq
            self._rows.extend(self._builder.rows(events, first))
            self._next_seq = first + len(events)
            self._fold_attempts(events, first)
            if len(self._rows) >= self.batch_size:
                self._write_rows()
            return list(range(first, self._next_seq))

    def apply_replicated(
        self, wire_blocks: Sequence[Sequence[Any]], *, checkpoints: Sequence[Any] = ()
    ) -> None:
        """The standby's write path: whole blocks from the primary (number, first seq, count,
        digests, data, chain hash). Every record is checked against its digest and its narrow
        row rebuilt from it (rows are not taken from the wire); the blocks are chained here and
        each chain hash compared with the primary's (IntegrityError on any difference). Stored
        as received, so the standby's blocks, leaves and roots are the primary's."""
        with self._lock:
            self._check_writable()
            if self._role != "standby":
                raise StoreError("only a standby applies replicated records")
            if self._append_lock is None:
                self._take_append_lock(replicate=False)
            assert isinstance(self._ledger, BlockLedger)
            first_seq = self._next_seq
            seq, number = first_seq, self._ledger.blocks + 1
            rows: list[Row] = []
            received: list[tuple[int, bytes, bytes, bytes]] = []
            for w in wire_blocks:
                got, first, count = int(w[0]), int(w[1]), int(w[2])
                digests, data, chain = bytes(w[3]), bytes(w[4]), bytes(w[5])
                if (got, first) != (number, seq):
                    raise IntegrityError(
                        f"the primary sent block {got} from seq {first} where block {number} "
                        f"from seq {seq} was due"
                    )
                rows.extend(self._verified_rows(number, first, count, digests, data))
                received.append((first, data, digests, chain))
                seq, number = first + count, number + 1
            self._rows, self._next_seq = rows, seq
            try:
                self._write_rows(replicated=received, checkpoints=checkpoints)
            except BaseException:
                self._rows = []
                self._next_seq = first_seq
                raise

    def _verified_rows(self, number: int, first: int, count: int, digests: bytes, data: bytes) -> list[Row]:
        """The rows of a received block's records, each checked against its digest."""
        if count < 1 or len(digests) != count * codec.DIGEST_SIZE:
            raise IntegrityError(f"block {number} from the primary: {count} records but "
                                 f"{len(digests)} bytes of digests")
        size = codec.content_size(data)
        if size is None or size > MAX_BLOCK_PAYLOAD:
            raise IntegrityError(f"block {number} from the primary: no or too large a payload size")
        try:
            records = codec.records(data)
        except codec.BlockError as exc:
            raise IntegrityError(f"block {number} from the primary is damaged: {exc}") from None
        if len(records) != count:
            raise IntegrityError(f"block {number} from the primary holds {len(records)} records, not {count}")
        rows: list[Row] = []
        allocate = self._allocate_source
        for offset, record in enumerate(records):
            seq = first + offset
            at = offset * codec.DIGEST_SIZE
            if codec.record_digest(record) != digests[at : at + codec.DIGEST_SIZE]:
                raise IntegrityError(
                    f"record {seq} from the primary does not match its digest in block {number}"
                )
            try:
                stored, row, host, service = record_row(record)
            except (ValueError, IndexError, TypeError) as exc:
                raise IntegrityError(f"record {seq} from the primary cannot be read: {exc}") from None
            if stored != seq:
                raise IntegrityError(
                    f"block {number} from the primary holds record {stored} where {seq} was due"
                )
            source = self._sources.get((host, service)) or allocate(host, service)
            rows.append((*row[:3], source, *row[4:]))
        return rows

    def _block_rows(self, rows: list[Row], ledger: BlockLedger) -> tuple[list[Row], list[StoredBlock]]:
        """Rows as stored (cleaned where SQLite or JSON could not take them) and the blocks holding
        them, chained onto ``ledger``."""
        names = self._names
        out: list[Row] = []
        records: list[bytes] = []
        made: list[StoredBlock] = []
        size, first = 0, rows[0][0] if rows else 0
        limit = codec.BLOCK_BYTES
        encode = self._encoder.encode if self._chained else self._encoder.encode_unchained
        for r in rows:
            host, service = names[r[3]]
            try:
                rec = record_bytes(r, host, service)
            except (orjson.JSONEncodeError, UnicodeEncodeError, TypeError):
                r = clean_row(r)
                rec = record_bytes(r, *names[r[3]])
            out.append(r)
            records.append(rec)
            size += len(rec)
            if size >= limit:
                made.append(ledger.add(first, *encode(records)))
                first, size, records = r[0] + 1, 0, []
        if records:
            made.append(ledger.add(first, *encode(records)))
        return out, made

    def _write_rows(
        self,
        *,
        force_checkpoint: bool = False,
        expect: Sequence[bytes] | None = None,
        checkpoints: Sequence[Any] = (),
        replicated: Sequence[tuple[int, bytes, bytes, bytes]] | None = None,
    ) -> list[Row]:
        """One write transaction: buffered rows (and queued admin events) as blocks and narrow
        rows, the ledger state, and a checkpoint when due. ``replicated``/``checkpoints`` are the
        standby's: the primary's blocks (first seq, data, digests, chain hash) holding the
        buffered rows, and its checkpoints (already verified)."""
        if expect is not None:
            raise StoreError("record format 2 replicates blocks, not chain hashes of rows")
        assert isinstance(self._ledger, BlockLedger) and self._checkpointer is not None
        conn, io, ledger = self._conn, self._io, self._ledger
        snap = ledger.snapshot()
        next_seq = self._next_seq
        made = None
        attempts: list[tuple[Any, ...]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            outbox, extra = self._outbox() if replicated is None else ([], [])
            rows = self._rows + extra if extra else self._rows
            if replicated is not None:
                new_blocks = self._chain_received(replicated, ledger)
            elif rows:
                rows, new_blocks = self._block_rows(rows, ledger)
            if rows:
                if self._new_sources:
                    conn.executemany(
                        "INSERT INTO sources (id, host, service) VALUES (?, ?, ?)", self._new_sources
                    )
                io.insert_blocks(new_blocks)
                conn.executemany(_INSERT_NARROW, rows)
                conn.execute(_SOURCE_STATS, (rows[0][0], rows[-1][0]))
                sqlite_rollup.fold(conn, rows)
            if self._attempts.ready:
                attempts = self._attempts.write(conn)
            if outbox:
                conn.execute("DELETE FROM admin_outbox WHERE id BETWEEN ? AND ?", (outbox[0], outbox[-1]))
            ledger.save(io)
            for insert in checkpoints:  # signer rows of store init / promote
                insert(conn)
            self._save_partition_state(conn)
            now = to_micros(self._clock.now())
            if replicated is None and (
                (force_checkpoint and self._checkpointer.enabled) or self._checkpointer.due(ledger.size, now)
            ):
                made = self._checkpointer.make(io, ledger.size, ledger.root(), now)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            ledger.restore(snap)
            self._next_seq = next_seq
            self._attempts.rollback(attempts)
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"writing events failed: {exc}") from exc
            raise
        if made is not None:
            self._checkpointer.committed(made)
        self._rows, self._leaves, self._tail = [], [], None
        self._partition_pending = None
        self._new_sources.clear()
        with self._texts_lock:
            if len(self._texts) < TEXTS_KEPT:
                self._texts.update((r[0], r[19]) for r in rows)
        self._since_index += len(rows)
        if self.replica is not None:
            self.replica.committed(ledger.size)
        self._after_commit()
        return rows

    @staticmethod
    def _chain_received(
        received: Sequence[tuple[int, bytes, bytes, bytes]], ledger: BlockLedger
    ) -> list[StoredBlock]:
        made = []
        for first, data, digests, chain in received:
            block = ledger.add(first, data, digests)
            if block.chain != chain:
                raise IntegrityError(f"block {block.number} from the primary does not match its chain hash")
            made.append(block)
        return made

    def _index_messages(self, conn: sqlite3.Connection, low: int, high: int) -> list[tuple[int, str]]:
        with self._texts_lock:
            texts = self._texts
            stale = [seq for seq in texts if seq <= low] if next(iter(texts), high) <= low else []
            for seq in stale:  # indexed by another process meanwhile
                del texts[seq]
            got = [(seq, texts.pop(seq)) for seq in range(low + 1, high + 1) if seq in texts]
        if len(got) == high - low:
            return got
        have = {seq for seq, _ in got}
        return sorted([*got, *(m for m in block_messages(conn, low, high) if m[0] not in have)])

    # -- reading ---------------------------------------------------------------------------

    def _block_records(self, number: int, first: int, data: bytes) -> list[bytes]:
        hit = self._cache.get(number)
        if hit is not None and hit[0] == first:
            self._cache.move_to_end(number)
            return hit[1]
        found = _decoded_block(number, first, data)
        self._cache[number] = (first, found)
        if len(self._cache) > CACHED_BLOCKS:
            self._cache.popitem(last=False)
        return found

    def get_events(self, seqs: Sequence[int], *, scope: Scope | None = None) -> list[StoredEvent]:
        if len(seqs) > 10_000:
            raise QueryError("at most 10000 seqs per call")
        with self._lock:
            self._ready_to_read(index=False)
            found = block_events(self._reader, seqs, scope=scope, records_of=self._block_records)
        return [StoredEvent(seq, event) for seq, event in found]

    def search_events(self, query: Any) -> list[StoredEvent]:
        seqs = [row[0] for row in self._search_rows(query, "SELECT e.seq")]
        by_seq = {stored.seq: stored for stored in self.get_events(seqs)}
        return [by_seq[seq] for seq in seqs if seq in by_seq]

    def inclusion_proof(self, seq: int) -> dict[str, Any] | None:
        from stackwatch.store.integrity.proofs import prove_record

        self.flush()
        with self._lock:
            try:
                return prove_record(SQLiteLedgerIO(self._reader), seq, log_id=self._store_id)
            except StoreError:
                return None
