"""Record format v2 in the embedded store: raw records in chained, compressed blocks.

Same data folder, same alerts, silences, sources, rollups and search index as format 1
(``sqlite``); what changes is where a record lives and what is chained:

* a record's exact bytes (``chain.canonical_record_bytes``: raw line, normalized fields,
  received time, origin) go into a block (``integrity.blocks``) of consecutive seqs, closed at
  BLOCK_BYTES or at a commit, zstd-compressed, with one Merkle leaf and one chain link per
  block, sealed by the same checkpoints and ratchet (a checkpoint's size counts blocks);
* the ``events`` table keeps a **narrow row** per record (``narrow``: encoded with the record's
  bytes in one pass from the event): seq, time, received, source and the
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
from collections.abc import Callable, Sequence
from typing import Any, Final

from stackwatch.core.errors import IntegrityError, StoreError
from stackwatch.core.event import Event
from stackwatch.store.base import QueryError, StoredEvent
from stackwatch.store.block_messages import block_messages
from stackwatch.store.integrity import blocks as codec
from stackwatch.store.integrity.block_ledger import BlockLedger
from stackwatch.store.integrity.io import StoredBlock
from stackwatch.store.integrity.records import record_event, record_row
from stackwatch.store.integrity.sqlite_io import FORMAT_META, SQLiteLedgerIO, ensure_schema
from stackwatch.store.narrow import INSERT_NARROW, NarrowEncoder, from_rows, narrow_row
from stackwatch.store.rows import Row
from stackwatch.store.scope import Scope
from stackwatch.store.sqlite import SQLiteStore, _json_ints
from stackwatch.store.sqlite_scope import event_condition

FORMAT: Final = 2
CACHED_BLOCKS: Final = 32
MAX_BLOCK_PAYLOAD: Final = 64 * 1024 * 1024
"""A received block claiming a larger payload is refused before it is decompressed."""
TEXTS_KEPT: Final = 400_000
"""Most messages kept in memory for the indexer (see ``BlockStore._texts``)."""


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
        # does not decompress and decode them again (5.5 µs a record measured): one list per
        # commit, (first seq, messages), at most TEXTS_KEPT messages in all; past that, or for
        # records another process wrote, the indexer reads the blocks.
        self._texts: list[tuple[int, list[str]]] = []
        self._texts_held = 0
        self._texts_lock = threading.Lock()
        # The buffer beside self._rows (narrow rows): each record's bytes and message.
        self._records: list[bytes] = []
        self._messages: list[str] = []
        self._staged_messages: list[str] = []
        super().__init__(*args, **options)
        self._narrow = NarrowEncoder(self._sources, self._names, self._allocate_source, self._builder.rows)
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
        io = SQLiteLedgerIO(self._conn)
        pruned = io.pruned()
        # the ledger counts every Merkle leaf; retention deleted the rows of the expired blocks
        # (its frontier's size), so those count as held: else a pruned store never opens again
        expired = pruned[1] if pruned is not None else 0
        return (
            self._ledger.blocks == io.block_count() + expired
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
            rows, records, messages = self._narrow.encode(events, first)
            self._rows.extend(rows)
            self._records.extend(records)
            self._messages.extend(messages)
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
            messages: list[str] = []
            received: list[tuple[int, bytes, bytes, bytes]] = []
            for w in wire_blocks:
                got, first, count = int(w[0]), int(w[1]), int(w[2])
                digests, data, chain = bytes(w[3]), bytes(w[4]), bytes(w[5])
                if (got, first) != (number, seq):
                    raise IntegrityError(
                        f"the primary sent block {got} from seq {first} where block {number} "
                        f"from seq {seq} was due"
                    )
                for row in self._verified_rows(number, first, count, digests, data):
                    rows.append(narrow_row(row))
                    messages.append(row[19])
                received.append((first, data, digests, chain))
                seq, number = first + count, number + 1
            self._rows, self._messages, self._next_seq = rows, messages, seq
            try:
                self._write_rows(replicated=received, checkpoints=checkpoints)
            except BaseException:
                self._rows, self._messages = [], []
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

    def _blocks(self, first: int, records: list[bytes], ledger: BlockLedger) -> list[StoredBlock]:
        """The blocks holding ``records`` (seqs ``first``...), each closed at BLOCK_BYTES of
        record bytes, chained onto ``ledger``."""
        made: list[StoredBlock] = []
        encode = self._encoder.encode if self._chained else self._encoder.encode_unchained
        limit = codec.BLOCK_BYTES
        start = size = 0
        for n, rec in enumerate(records):
            size += len(rec)
            if size >= limit:
                made.append(ledger.add(first + start, *encode(records[start : n + 1])))
                start, size = n + 1, 0
        if start < len(records):
            made.append(ledger.add(first + start, *encode(records[start:])))
        return made

    # -- format hooks of SQLiteStore._write_rows -------------------------------------------------

    def _stage(self, extra: list[Row], replicated: Any) -> tuple[list[Row], Any]:
        """The rows as stored and their blocks, chained onto the ledger (the standby's:
        ``replicated`` = the primary's blocks (first seq, data, digests, chain hash) holding the
        buffered rows)."""
        assert isinstance(self._ledger, BlockLedger)
        rows, records, messages = self._rows, self._records, self._messages
        if extra:
            more = from_rows(extra, self._names)
            rows, records, messages = rows + more[0], records + more[1], messages + more[2]
        self._staged_messages = messages
        if replicated is not None:
            return rows, self._chain_received(replicated, self._ledger)
        return rows, self._blocks(rows[0][0], records, self._ledger) if rows else []

    def _insert(self, rows: list[Row], staged: Any) -> None:
        self._io.insert_blocks(staged)
        self._conn.executemany(INSERT_NARROW, rows)

    def _save_ledger(self) -> None:
        assert isinstance(self._ledger, BlockLedger)
        self._ledger.save(self._io)

    def _checkpoints_made(self) -> bool:
        return True

    def _make_checkpoint(self, now: int) -> Any:
        assert isinstance(self._ledger, BlockLedger) and self._checkpointer is not None
        return self._checkpointer.make(self._io, self._ledger.size, self._ledger.root(), now)

    def _committed(self, rows: list[Row]) -> None:
        messages, self._staged_messages = self._staged_messages, []
        self._records, self._messages = [], []
        if rows and self._index_process is None:  # the indexer process reads the blocks
            with self._texts_lock:
                if self._texts_held < TEXTS_KEPT:
                    self._texts.append((rows[0][0], messages))
                    self._texts_held += len(messages)

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
        got: list[tuple[int, str]] = []
        with self._texts_lock:
            kept: list[tuple[int, list[str]]] = []
            for first, messages in self._texts:
                end = first + len(messages)  # one past the chunk's last seq
                if first <= high and end > low + 1:
                    start, stop = max(first, low + 1), min(end, high + 1)
                    got.extend(zip(range(start, stop), messages[start - first : stop - first], strict=True))
                if end > high + 1:  # not yet wholly indexed (chunks wholly at or below low were
                    kept.append((first, messages))  # indexed by another process meanwhile)
            self._texts = kept
            self._texts_held = sum(len(m) for _, m in kept)
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
