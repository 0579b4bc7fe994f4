"""The embedded store: SQLite files in a data folder (the default backend).

``stackwatch.db`` holds the record (events, sources, alerts), in WAL mode with
``synchronous=NORMAL``: readers never block the writer, and a commit survives a process
crash (a power loss may lose the last commits, never corrupt the file).
``stackwatch-index.db`` holds the derived search index (see ``sqlite_index``).

Appending: ``append_events`` numbers events at once (seq is dense and monotonic) and buffers
rows; every ``batch_size`` rows, and on ``flush()``, the buffer goes to SQLite with one
``executemany`` in one transaction. Events are durable and visible to other connections once
``flush()`` returns. One process appends at a time: the first append takes an exclusive lock
on ``stackwatch.db.append-lock`` (seq numbers are handed out by the writer, and the hash
chain of the tamper-evident store needs a single writer too). Anything else (alerts, status
changes, searches, indexing) may run in any number of processes.

Tamper evidence (see ``ledger``, ``checkpoints`` and docs/store.md): each write transaction
also stores every row's chain hash, the Merkle state and cache nodes, and, when due, a signed
and sealed checkpoint. Admin events (alert status changes...) made by a process that is not
the appender go through ``admin_outbox`` in the same transaction as the change, and enter the
log at the appender's next commit. With a standby configured in sync mode, ``flush()``
returns only once the standby has acknowledged every committed record.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

import msgspec

from stackwatch.core.clock import SystemClock
from stackwatch.core.errors import IntegrityError, StoreError
from stackwatch.core.event import Event
from stackwatch.store import (
    alert_changes,
    search_terms,
    sqlite_alerts,
    sqlite_attempts,
    sqlite_partitions,
    sqlite_rollup,
    sqlite_search,
    sqlite_silences,
)
from stackwatch.store.base import (
    EventQuery,
    QueryError,
    SourceStats,
    StoreCounts,
    StoredEvent,
)
from stackwatch.store.checkpoints import Checkpointer
from stackwatch.store.fencing import PartitionFenced
from stackwatch.store.index_process import IndexProcess
from stackwatch.store.permissions import make_private
from stackwatch.store.record_ledger import LedgerState, chain_batch
from stackwatch.store.rows import (
    EVENT_COLUMNS,
    RowBuilder,
    clean_text,
    from_micros,
    row_event,
    to_micros,
)
from stackwatch.store.scope import Scope
from stackwatch.store.sqlite_index import Indexer, connect_index, indexed_seq
from stackwatch.store.sqlite_schema import SCHEMA_VERSION, migrate
from stackwatch.store.sqlite_scope import event_condition
from stackwatch.store.witness import configured as configured_witnesses
from stackwatch.store.witness import parse_witness

DB_FILE: Final = "stackwatch.db"
INDEX_FILE: Final = "stackwatch-index.db"
log = logging.getLogger(__name__)

T = TypeVar("T")
WAL_CHECKPOINT_PAGES: Final = 16384  # 64 MB of 4 kB pages

_INSERT: Final = (f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}, chain) "  # noqa: S608 - fixed columns
                   f"VALUES ({', '.join('?' * (len(EVENT_COLUMNS) + 1))})")
_INSERT_UNCHAINED: Final = (f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "  # noqa: S608 - fixed columns
                            f"VALUES ({', '.join('?' * len(EVENT_COLUMNS))})")
UNCHAINED_META: Final = "unchained_benchmark"
"""meta row marking a store written by ``benchmark_unchained.UnchainedBenchmarkStore`` (no chain:
unusable)."""
_SELECT: Final = "SELECT " + ", ".join(f"e.{c}" for c in EVENT_COLUMNS) + ", s.host, s.service"


FORMATS: Final = (1, 2)
DEFAULT_FORMAT: Final = 2
FORMAT_ENV: Final = "STACKWATCH_STORE_FORMAT"
"""Record format of a new store when none is asked for (``store init --format``): else
DEFAULT_FORMAT. A store keeps the format it was created with (format 1 stores stay readable,
verifiable, writable, and ``store migrate`` converts them)."""


def stored_format(data_dir: str | os.PathLike[str]) -> int | None:
    """The record format of the store in ``data_dir`` (1 or 2), None when there is none yet."""
    db = Path(data_dir) / DB_FILE
    if not db.is_file():
        return None
    try:
        conn = sqlite3.connect(_read_only_uri(db), uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store database {db}: {exc}") from exc
    try:
        row = conn.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
    except sqlite3.Error:
        return None  # an empty or foreign file: the opener says what is wrong with it
    finally:
        conn.close()
    return int(row[0]) if row else 1


def new_store_format(asked: int | None = None) -> int:
    """The format for a store about to be created: ``asked``, else $STACKWATCH_STORE_FORMAT, else 2."""
    value: Any = asked if asked is not None else os.environ.get(FORMAT_ENV) or DEFAULT_FORMAT
    try:
        fmt = int(value)
    except ValueError:
        fmt = 0
    if fmt not in FORMATS:
        raise StoreError(f"unknown store format {value!r}: use one of {FORMATS}")
    return fmt


def open_store(data_dir: str | os.PathLike[str], *, format: int | None = None,
               **options: Any) -> SQLiteStore:
    """Open (creating or upgrading as needed) the store in ``data_dir``, in the record format
    it was created with (a new store: ``format``, see ``new_store_format``)."""
    fmt = stored_format(data_dir)
    if fmt is None:
        fmt = new_store_format(format)
    if fmt == 2:
        from stackwatch.store.sqlite_blocks import BlockStore

        return BlockStore(data_dir, **options)
    return SQLiteStore(data_dir, **options)


class SQLiteStore(alert_changes.TriageStore):
    """See the module docstring. Options: ``batch_size`` rows per insert transaction;
    ``background_index`` to fill the search index from a thread (else the writer indexes every
    ``index_every`` rows); ``index_process`` to fill it from a process of its own instead
    (``store/index_process.py``: the index's CPU leaves this process, for ``analyze --jobs N``
    whose bound this process is); ``read_only`` opens without creating, upgrading or writing anything
    (its searches see what the writer has indexed so far, at most ``index_interval`` seconds old)."""

    # False only in benchmark_unchained.UnchainedBenchmarkStore (a benchmark's chain-off comparison): a
    # class attribute, not an option, so no configuration can turn the chain off.
    _chained: bool = True

    def __init__(self, data_dir: str | os.PathLike[str], *, batch_size: int = 20_000,
                 background_index: bool = True, index_every: int = 100_000, index_interval: float = 2.0,
                 index_process: bool = False, read_only: bool = False, timeout: float = 30.0,
                 clock: Any = None,
                 checkpoint_every: int = 100_000, checkpoint_interval: float = 60.0,
                 witnesses: Sequence[str] | None = None, replication: dict[str, Any] | None = None) -> None:
        self.data_dir: Path = Path(data_dir)
        self.read_only = read_only
        self.batch_size = max(1, batch_size)
        self._index_every = index_every
        self._clock = clock or SystemClock()
        self._lock = threading.RLock()  # the store may be handed between threads, not shared at once
        self._held_texts: dict[str, str] = {}  # full-text query -> TEMP table (holding_search)
        self._held_hits: tuple[tuple[str, tuple[Any, ...]], sqlite_search.Where] | None = None
        self._closed = False
        # Buffered rows are chained as they are built (rows + chain hash, their leaf hashes, the
        # chain hash of the last one); the ledger state takes them in at the commit.
        self._rows: list[tuple[Any, ...]] = []
        # a cluster partition's checkpoint, committed with the next write (stage_partition_state)
        self._partition_pending: tuple[str, dict[str, Any], bytes | None] | None = None
        # the partition this store writes for and its ownership epoch (claim_partition)
        self._fence: tuple[str, int] | None = None
        self._fenced = False  # a write was refused: taken over, nothing more is written
        self._leaves: list[bytes] = []
        self._tail: bytes | None = None
        self._since_index = 0
        self._append_lock: int | None = None  # fd holding the exclusive append lock
        self._next_seq = 0
        self._sources: dict[tuple[str, str], int] = {}
        self._new_sources: list[tuple[int, str, str]] = []
        # The keystone login attempts, correlated as they are appended (sqlite_attempts)
        self._attempts = sqlite_attempts.AttemptFolder()
        self._builder = RowBuilder(self._sources, self._allocate_source)
        self._indexer: Indexer | None = None
        self._index_process: IndexProcess | None = None
        self._names: dict[int, tuple[str, str]] = {}  # source id -> (host, service) as stored
        self._ledger: LedgerState | None = None
        self._checkpointer: Checkpointer | None = None
        self._checkpoint_every = checkpoint_every
        self._checkpoint_interval = checkpoint_interval
        self._witness_specs = witnesses
        self._replication_options = replication
        self.replica: Any = None  # replication.Primary when this writer ships to a standby
        self._db = self.data_dir / DB_FILE
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise StoreError(f"{self.data_dir} is not a folder (expected the store's data folder)")
        if read_only:
            if not self._db.is_file():
                raise StoreError(f"no store at {self.data_dir}")
            self._conn = self._connect(_read_only_uri(self._db), uri=True, timeout=timeout)
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                self._conn.close()
                raise StoreError(f"the store's schema version is {version}, this stackwatch needs "
                                 f"{SCHEMA_VERSION}: open it once read-write to upgrade")
            self._load_meta()
        else:
            if not self._db.exists():
                make_private(self.data_dir)  # a new store: folder 0700, database files 0600
            self._conn = self._connect(str(self._db), timeout=timeout)
            try:
                migrate(self._conn)
                self._prepare_schema()
            except BaseException:
                self._conn.close()
                raise
            self._load_meta()
            self._check_chain_mode()
            if background_index:
                # The indexer thread checkpoints the WAL; the writer only does so as a safety
                # net when the WAL passes WAL_CHECKPOINT_PAGES (the thread fell behind).
                self._conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
            store_id = self._store_id
            index = connect_index(self.data_dir / INDEX_FILE, self._db, store_id=store_id,
                                  last_seq=self._max_seq(), timeout=timeout)
            if background_index and index_process:
                try:
                    self._index_process = IndexProcess(
                        self._db, self.data_dir / INDEX_FILE, record_format=self.format,
                        store_id=store_id, last_seq=self._max_seq(), interval=index_interval,
                        timeout=timeout)
                except OSError as exc:  # no process to be had: the thread does it
                    log.warning("cannot start the search indexer process (%s): indexing in a thread", exc)
            # With the process, this connection still serves the searches' catch-ups and the
            # close's last round (the index's write lock keeps the two from overlapping).
            self._indexer = Indexer(index, background=background_index and self._index_process is None,
                                    interval=index_interval, messages=self._index_messages)
        self._background = background_index
        self._last_index = time.monotonic()
        self._index_interval = index_interval
        # Searches read through a connection with the index attached: kept apart from the
        # writer's, because a write transaction on a connection locks every attached file.
        index_path = self.data_dir / INDEX_FILE
        self._reader = self._connect(_read_only_uri(self._db), uri=True, timeout=timeout)
        if index_path.exists():
            self._reader.execute("ATTACH DATABASE ? AS idx", (_read_only_uri(index_path),))
        self._has_index = index_path.exists()

    _index_messages: Any = None
    """Format 2: where the indexer reads messages from (they are not in the events rows)."""

    def _prepare_schema(self) -> None:
        """After the migrations: what this record format adds (format 2: its blocks)."""

    def _ledger_matches(self) -> bool:
        """Whether the ledger state covers exactly the stored records."""
        assert self._ledger is not None
        return not self._chained or self._ledger.size == self._next_seq - 1

    def _load_meta(self) -> None:
        meta = dict(self._conn.execute("SELECT name, value FROM meta").fetchall())
        self._store_id = str(meta["store_id"])
        self._role = str(meta.get("role", "primary"))
        if str(meta.get("format", "1")) != str(self.format):
            self._conn.close()
            raise StoreError(f"the store in {self.data_dir} is in record format {meta.get('format', 1)}: "
                             "open it with stackwatch.store.open_store, which picks its backend")
        if UNCHAINED_META in meta and self._chained:
            self._conn.close()
            raise StoreError(f"the store in {self.data_dir} was written without its hash chain (a "
                             "benchmark's chain-off comparison): it is not a tamper-evident store and "
                             "cannot be used")

    def _check_chain_mode(self) -> None:
        """An unchained store must start empty, and is marked so it is never opened as a chained one."""
        if self._chained:
            return
        marked = self._conn.execute("SELECT 1 FROM meta WHERE name = ?", (UNCHAINED_META,)).fetchone()
        if marked is None:
            if self._max_seq() or self._conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0]:
                self._conn.close()
                raise StoreError(f"the store in {self.data_dir} is chained: it cannot be written "
                                 "without its chain")
            self._conn.execute("INSERT INTO meta VALUES (?, 1)", (UNCHAINED_META,))

    @property
    def format(self) -> int:
        """The record format (1: a chained row per record; 2: ``sqlite_blocks``)."""
        return 1

    @property
    def role(self) -> str:
        """``primary`` (appends) or ``standby`` (follows a primary; ``store promote`` changes it)."""
        return self._role

    @property
    def log_id(self) -> str:
        return self._store_id

    @property
    def size(self) -> int:
        """Records committed to the ledger (the Merkle tree size)."""
        with self._lock:
            if self._ledger is not None:
                return self._ledger.size
            row = self._conn.execute("SELECT size FROM ledger_state WHERE id = 1").fetchone()
            return int(row[0]) if row else 0

    @staticmethod
    def _connect(target: str, *, timeout: float, uri: bool = False) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(target, isolation_level=None, timeout=timeout, uri=uri,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA cache_size = -32768")  # 32 MB
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the store database {target}: {exc}") from exc
        return conn

    # -- appending -------------------------------------------------------------------------

    def append_events(self, events: Sequence[Event]) -> list[int]:
        with self._lock:
            self._check_writable()
            if self._append_lock is None:
                self._take_append_lock()
            if self._role != "primary":
                raise StoreError(f"the store in {self.data_dir} is a {self._role}: promote it first "
                                 "(stackwatch store promote)")
            first = self._next_seq
            if not self._chained:
                self._rows.extend(self._builder.rows(events, first))
            else:
                self._buffer(self._builder.chained_rows(events, first, self._head(), self._names)
                             or chain_batch(self._builder.rows(events, first), self._names, self._head()))
            self._next_seq = first + len(events)
            self._fold_attempts(events, first)
            if len(self._rows) >= self.batch_size:
                self._write_rows()
            return list(range(first, self._next_seq))

    def _fold_attempts(self, events: Sequence[Event], first: int) -> None:
        """Feed the login attempts' correlator (written by ``_write_rows``, same transaction)."""
        if not self._attempts.ready:
            try:
                self._attempts.catch_up(self._conn)
            except sqlite3.Error as exc:
                raise StoreError(f"reading the held login attempts failed: {exc}") from exc
        self._attempts.push(events, first)

    def _head(self) -> bytes:
        """The chain hash the next built row follows (of the last buffered row, else the ledger's)."""
        assert self._ledger is not None
        return self._tail if self._tail is not None else self._ledger.head

    def _buffer(self, chained: tuple[list[tuple[Any, ...]], list[bytes], bytes]) -> None:
        rows, leaves, tail = chained
        if rows:
            self._rows.extend(rows)
            self._leaves.extend(leaves)
            self._tail = tail

    def _take_append_lock(self, *, replicate: bool = True) -> None:
        fd = os.open(f"{self._db}.append-lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(f"another process is appending to the store in {self.data_dir}") from None
        self._append_lock = fd
        try:
            self._start_writer(replicate=replicate)
        except BaseException:
            self._append_lock = None
            os.close(fd)
            raise

    def _start_writer(self, *, replicate: bool) -> None:
        # Only now, holding the lock, are seq and source numbering ours to continue.
        self._next_seq = self._max_seq() + 1
        for source, host, service in self._conn.execute("SELECT id, host, service FROM sources"):
            self._sources[(host, service)] = source
            self._names[source] = (host, service)
        self._ledger = self._load_ledger()
        if not self._ledger_matches():
            raise StoreError(f"the ledger state covers {self._ledger.size} records but the store holds "
                             f"{self._next_seq - 1}: the store was altered; run stackwatch store verify")
        witnesses = (configured_witnesses(self.data_dir) if self._witness_specs is None
                     else [parse_witness(w) for w in self._witness_specs])
        self._checkpointer = Checkpointer(self.data_dir, self._store_id, self._conn,
                                          every=self._checkpoint_every, interval=self._checkpoint_interval,
                                          witnesses=witnesses)
        options = self._replication_options
        if options is None:
            from stackwatch.store.replication import configured as configured_replication
            options = configured_replication(self.data_dir)
        if options and replicate and self._role == "primary":
            from stackwatch.store.replication import Primary
            self.replica = Primary(self.data_dir, **options)

    def _load_ledger(self) -> Any:
        return LedgerState.load(self._conn)

    def _allocate_source(self, host: str, service: str) -> int:
        key = (clean_text(host), clean_text(service))  # what the sources table can hold
        source = self._sources.get(key)
        if source is None:
            source = max(self._sources.values(), default=0) + 1
            self._sources[key] = source
            self._names[source] = key
            self._new_sources.append((source, *key))
        self._sources[(host, service)] = source
        return source

    def stage_partition_state(self, partition: str, position: dict[str, Any], state: bytes | None) -> None:
        """A cluster partition's checkpoint (detection state and position), committed by the
        next ``flush`` in the same transaction as the events appended before it."""
        with self._lock:
            self._check_writable()
            if self._append_lock is None:
                self._take_append_lock()
            self._partition_pending = (partition, position, state)

    def _save_partition_state(self, conn: sqlite3.Connection) -> None:
        """Inside ``_write_rows``' transaction: the staged partition checkpoint, with the events."""
        if self._partition_pending is not None:
            sqlite_partitions.save(conn, *self._partition_pending, to_micros(self._clock.now()))

    def partition_state(self, partition: str) -> tuple[dict[str, Any], bytes] | None:
        """The last committed checkpoint of ``partition`` (None: none yet)."""
        with self._lock:
            self._check_open()
            return sqlite_partitions.load(self._conn, partition)

    def claim_partition(self, partition: str) -> int:
        """Take ``partition``'s next ownership epoch and fence this store's later writes with
        it (store/fencing.py). Needs no append lock: a cut-off predecessor that still holds it
        is refused at its next commit, gives the partition up and closes (releasing the lock)."""
        with self._lock:
            self._check_writable()
            try:
                epoch = sqlite_partitions.claim(self._conn, partition, to_micros(self._clock.now()))
            except sqlite3.Error as exc:
                raise StoreError(f"claiming partition {partition} failed: {exc}") from exc
            self._fence = (partition, epoch)
            return epoch

    def _check_alert_fence(self) -> None:
        self._check_fence(self._conn)

    def _check_fence(self, conn: sqlite3.Connection) -> None:
        """Inside a write transaction that carries the partition's data: PartitionFenced if it
        was taken over. The buffered rows and checkpoint are dropped then (never to be written)."""
        if self._fence is None:
            return
        if self._fenced:
            raise PartitionFenced(self._fence[0], self._fence[1], None)
        try:
            sqlite_partitions.check(conn, *self._fence)
        except PartitionFenced:
            self._fenced = True
            raise

    def _max_seq(self) -> int:
        return int(self._conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])

    def flush(self) -> None:
        """Commit everything buffered; with a standby in sync mode, also wait until it has
        acknowledged every committed record (StoreError if it does not within its timeout:
        the records are then stored here but not acknowledged)."""
        with self._lock:
            if self._closed or self.read_only:
                return
            if self._rows or self._partition_pending:
                self._write_rows()
            if self.replica is not None and self._ledger is not None:
                self.replica.wait_acked(self._ledger.size)

    def integrity_status(self) -> dict[str, Any]:
        """Checkpoints, last verification and witnesses, for the dashboard (store/status.py)."""
        from stackwatch.store.status import integrity_status

        with self._lock:
            self._check_open()
            specs = (list(self._witness_specs) if self._witness_specs is not None
                     else [str(w) for w in configured_witnesses(self.data_dir)])
            return integrity_status(self._conn, self.data_dir, specs)

    def inclusion_proof(self, seq: int) -> dict[str, Any] | None:
        """An inclusion proof of record ``seq`` (auditor JSON), or None when no checkpoint covers it."""
        from stackwatch.store.proofs import prove

        self.flush()
        try:
            return prove(self.data_dir, seq)
        except StoreError:
            return None

    def checkpoint(self) -> int | None:
        """Commit what is buffered and make a checkpoint now (even with no new record: one per
        epoch). Returns its epoch, or None when the store has no keys (``store init``)."""
        with self._lock:
            self._check_writable()
            if self._append_lock is None:
                self._take_append_lock()
            assert self._checkpointer is not None
            if not self._checkpointer.enabled:
                return None
            self._write_rows(force_checkpoint=True)
            epoch = self._checkpointer.sealer.epoch - 1  # type: ignore[union-attr]
        self.flush()
        return epoch

    def tick(self) -> None:
        """Make a checkpoint if its time has come (for a writer that is idle)."""
        with self._lock:
            if (self._checkpointer is not None and self._ledger is not None
                    and self._checkpointer.due(self._ledger.size + len(self._rows),
                                               to_micros(self._clock.now()))):
                self._write_rows()

    def apply_replicated(self, wire_rows: Sequence[Sequence[Any]], *,
                         checkpoints: Sequence[Any] = ()) -> None:
        """The standby's write path: rows from the primary (seq, time, received, host, service, the
        other columns, chain hash) in one transaction, their chain hashes recomputed here and
        compared (IntegrityError on any difference), plus checkpoint inserts already verified."""
        with self._lock:
            self._check_writable()
            if self._role != "standby":
                raise StoreError("only a standby applies replicated records")
            if self._append_lock is None:
                self._take_append_lock(replicate=False)
            rows: list[tuple[Any, ...]] = []
            expect: list[bytes] = []
            seq = self._next_seq
            for w in wire_rows:
                if w[0] != seq:
                    raise IntegrityError(f"the primary sent seq {w[0]} where seq {seq} was due")
                host, service = w[3], w[4]
                source = self._sources.get((host, service)) or self._allocate_source(host, service)
                rows.append((seq, w[1], w[2], source, *w[5:21], w[21], bytearray(w[22]), w[23], w[24]))
                expect.append(bytes(w[25]))
                seq += 1
            try:
                self._buffer(chain_batch(rows, self._names, self._head()))
                self._next_seq = seq
                self._write_rows(replicated=expect, checkpoints=checkpoints)
            except BaseException:
                self._rows, self._leaves, self._tail = [], [], None
                self._next_seq = seq - len(rows)
                raise

    def _outbox(self) -> tuple[list[int], list[tuple[Any, ...]]]:
        """Admin events queued by other processes, as rows numbered after the buffer."""
        pending = self._conn.execute("SELECT id, event FROM admin_outbox ORDER BY id").fetchall()
        if not pending:
            return [], []
        events = [msgspec.json.decode(blob, type=Event) for _, blob in pending]
        rows = self._builder.rows(events, self._next_seq)
        self._next_seq += len(rows)
        return [i for i, _ in pending], rows

    def _write_rows(self, *, force_checkpoint: bool = False, replicated: Any = None,
                    checkpoints: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One write transaction, the same for both record formats: buffered rows (and queued
        admin events) with what chains them, the ledger state, and a checkpoint when due. The
        format's hooks (``_stage``, ``_insert``, ``_save_ledger``, ``_make_checkpoint``,
        ``_committed``) say what its rows and chain are. ``replicated``/``checkpoints`` are
        the standby's: what the primary sent for the buffered rows (format 1: their chain
        hashes; format 2: its blocks), and its checkpoints (already verified)."""
        assert self._ledger is not None and self._checkpointer is not None
        conn = self._conn
        ledger = self._ledger
        snap = ledger.snapshot()
        next_seq = self._next_seq
        made = None
        attempts: list[tuple[Any, ...]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            if self._rows or self._partition_pending is not None:
                self._check_fence(conn)
            outbox, extra = self._outbox() if replicated is None else ([], [])
            rows, staged = self._stage(extra, replicated)
            if rows:
                if self._new_sources:
                    conn.executemany("INSERT INTO sources (id, host, service) VALUES (?, ?, ?)",
                                     self._new_sources)
                self._insert(rows, staged)
                sqlite_rollup.fold_sources(conn, rows)
                sqlite_rollup.fold(conn, rows)
            if replicated is None and self._attempts.ready:
                attempts = self._attempts.write(conn)
            if outbox:
                conn.execute("DELETE FROM admin_outbox WHERE id BETWEEN ? AND ?", (outbox[0], outbox[-1]))
            self._save_ledger()
            for insert in checkpoints:  # e.g. signer rows of store init / promote, retention's prune
                insert(conn)
            self._save_partition_state(conn)
            now = to_micros(self._clock.now())
            cp = self._checkpointer
            if replicated is None and self._checkpoints_made() and (
                    (force_checkpoint and cp.enabled) or cp.due(ledger.size, now)):
                made = self._make_checkpoint(now)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            ledger.restore(snap)
            self._next_seq = next_seq
            self._attempts.rollback(attempts)
            if self._fenced:  # taken over: what was buffered is the successor's to write, not ours
                self._rows, self._leaves, self._tail = [], [], None
                self._partition_pending = None
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"writing events failed: {exc}") from exc
            raise
        if made is not None:
            self._checkpointer.committed(made)
        self._rows, self._leaves, self._tail = [], [], None
        self._partition_pending = None
        self._new_sources.clear()
        self._committed(rows)
        self._since_index += len(rows)
        if self.replica is not None:
            self.replica.committed(ledger.size)
        self._after_commit()
        return rows

    # Format hooks of _write_rows (format 1 here: a chained row per record; see sqlite_blocks).

    def _stage(self, extra: list[tuple[Any, ...]], replicated: Any) -> tuple[list[tuple[Any, ...]], Any]:
        """Inside the transaction: the rows to insert (the buffer, then ``extra``: queued admin
        events), chained onto the ledger; and what ``_insert`` needs besides them."""
        assert self._ledger is not None
        rows, leaves, tail = self._rows, self._leaves, self._tail
        if extra and self._chained:
            extra, extra_leaves, tail = chain_batch(extra, self._names, self._head())
            rows, leaves = rows + extra, leaves + extra_leaves
        elif extra:
            rows = rows + extra
        if rows and self._chained:
            self._ledger.advance(leaves, tail)  # type: ignore[arg-type]
        if replicated is not None and [r[-1] for r in rows] != list(replicated):
            bad = next(r[0] for r, h in zip(rows, replicated, strict=False) if r[-1] != h)
            raise IntegrityError(f"record {bad} from the primary does not match its chain hash")
        return rows, None

    def _insert(self, rows: list[tuple[Any, ...]], staged: Any) -> None:
        self._conn.executemany(_INSERT if self._chained else _INSERT_UNCHAINED, rows)

    def _save_ledger(self) -> None:
        if self._chained:
            assert self._ledger is not None
            self._ledger.save(self._conn)

    def _checkpoints_made(self) -> bool:
        """Whether this writer makes checkpoints (not a benchmark's unchained format 1 store)."""
        return self._chained

    def _make_checkpoint(self, now: int) -> Any:
        assert self._ledger is not None and self._checkpointer is not None
        return self._checkpointer.make(self._conn, self._ledger.size, self._ledger.acc.root(), now)

    def _committed(self, rows: list[tuple[Any, ...]]) -> None:
        """After the commit: what the format keeps of the rows just written."""

    def _after_commit(self) -> None:
        assert self._indexer is not None
        if self._index_process is not None:
            self._index_process.poke()
        elif self._background:
            self._indexer.poke()
        elif (self._since_index >= self._index_every
              or time.monotonic() - self._last_index > self._index_interval):
            self.index_pending()

    def index_pending(self) -> int:
        """Bring the search index up to date with every committed event; returns how many
        events were indexed. Read-only stores cannot index (returns 0)."""
        with self._lock:
            if self._indexer is None:
                return 0
            self._since_index = 0
            self._last_index = time.monotonic()
            try:
                return self._indexer.catch_up()
            except sqlite3.Error as exc:
                raise StoreError(f"indexing failed: {exc}") from exc

    # -- reading events --------------------------------------------------------------------

    def get_events(self, seqs: Sequence[int], *, scope: Scope | None = None) -> list[StoredEvent]:
        if len(seqs) > 10_000:
            raise QueryError("at most 10000 seqs per call")
        condition, params = event_condition(scope) if scope is not None else ("1", [])
        with self._lock:
            self._ready_to_read(index=False)
            wanted = [int(seq) for seq in seqs]
            rows = self._reader.execute(
                f"{_SELECT} FROM events AS e JOIN sources AS s ON s.id = e.source "  # noqa: S608
                f"WHERE e.seq IN (SELECT value FROM json_each(?)) AND {condition} ORDER BY e.seq",
                (_json_ints(wanted), *params),
            ).fetchall()
        return [StoredEvent(row[0], row_event(row[:-2], row[-2], row[-1])) for row in rows]

    def search_events(self, query: EventQuery) -> list[StoredEvent]:
        rows = self._search_rows(query, _SELECT)
        return [StoredEvent(row[0], row_event(row[:-2], row[-2], row[-1])) for row in rows]

    def _search_rows(self, query: EventQuery, select: str) -> list[tuple[Any, ...]]:
        """The rows of one page of hits of ``query``, reading ``select`` (of ``e`` and ``s``)."""
        where = self._where(query)
        order = "DESC" if query.newest_first else "ASC"
        if where.estimated:  # a sample stands for the hits: the page is still the real first hits
            where = sqlite_search.where_of(query, query.now, self._held_texts)
            # Many hits: walking the time index from the newest (or oldest) event usually meets
            # a page of them in a few thousand rows, where a key's hits (an IP's 250k seqs)
            # would each be read for their time and sorted. Bounded: past EXACT_STEPS (sparse
            # hits among many events) the usual plan below reads them instead.
            walk = (f"{select} FROM events AS e INDEXED BY events_time JOIN sources AS s ON s.id = e.source"
                    f"{sqlite_search.unindexed(where)} ORDER BY e.time {order}, e.seq {order} "
                    "LIMIT ? OFFSET ?")
            walk_params = (*where.params, query.limit, query.offset)
            early: list[tuple[Any, ...]] | None = self._read_where(where, lambda: sqlite_search.within_steps(
                self._reader, sqlite_search.EXACT_STEPS,
                lambda: self._reader.execute(walk, walk_params).fetchall()), None)
            if early is not None:
                return early
        table = "events AS e"
        subset = (None if where.uses_index or where.held_hits or query.match is not None
                  else sqlite_rollup.subset_index({"action": query.action, "kind": query.kind}))
        if subset is not None:
            table += f" INDEXED BY {subset[0]}"  # a fixed index name
            where.conditions.append(subset[1])
        clause, params, offset = where.page(order, query.limit, query.offset)
        sql = (f"{select} FROM {table} JOIN sources AS s ON s.id = e.source{clause}"
               f" ORDER BY e.time {order}, e.seq {order} LIMIT ? OFFSET ?")
        rows: list[tuple[Any, ...]] = self._read_where(where, lambda: self._reader.execute(
            sql, (*params, query.limit, offset)).fetchall(), [])
        return rows

    def login_attempts(self) -> sqlite_attempts.AttemptReader:
        def read(query: Callable[[sqlite3.Connection], Any]) -> Any:
            with self._lock:
                self._ready_to_read(index=False)
                try:
                    return query(self._reader)
                except sqlite3.Error as exc:
                    raise StoreError(f"reading the login attempts failed: {exc}") from exc
        return sqlite_attempts.AttemptReader(read)

    def check_login_attempts(self) -> list[str]:
        """Differences between the stored login attempts and a recount (empty: they agree).
        Takes the append lock (no other writer may hold attempts meanwhile) and first writes
        the attempts held, as a clean close would."""
        with self._lock:
            self._check_writable()
            if self._role != "primary":
                raise StoreError("a standby folds its login attempts when it is promoted: check the primary")
            if self._append_lock is None:
                self._take_append_lock()
            try:
                if not self._attempts.ready:
                    self._attempts.catch_up(self._conn)
            except sqlite3.Error as exc:
                raise StoreError(f"reading the held login attempts failed: {exc}") from exc
            self._attempts.finish()
            self._write_rows()
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                return sqlite_attempts.check(self._conn)
            finally:
                self._conn.execute("ROLLBACK")

    def rebuild_login_attempts(self) -> int:
        """Recount the login attempts from the stored events; returns how many."""
        with self._lock:
            self._check_writable()
            if self._append_lock is None:
                self._take_append_lock()  # no other writer's correlator may hold attempts meanwhile
            self.flush()
            count = self._write(lambda: sqlite_attempts.rebuild(self._conn))
            self._attempts = sqlite_attempts.AttemptFolder()
            return int(count)

    def count_events(self, query: EventQuery) -> int:
        where = self._where(query)
        return int(self._read_where(where, lambda: sqlite_search.count(self._reader, where), 0))

    def event_time_bounds(self, query: EventQuery) -> tuple[datetime, datetime] | None:
        where = self._where(query)
        bounds = self._read_where(where, lambda: sqlite_search.time_bounds(self._reader, where), None)
        return None if bounds is None else (from_micros(bounds[0]), from_micros(bounds[1]))

    def hit_histogram(self, query: EventQuery, start: datetime, step: timedelta, size: int) -> list[int]:
        step_us = search_terms.histogram_step(step, size)
        where = self._where(query)
        return list(self._read_where(where, lambda: sqlite_search.histogram(
            self._reader, where, to_micros(start), step_us, size), [0] * size))

    def top_values(self, query: EventQuery, fields: Sequence[str], *, sample: int = 10_000,
                   limit: int = 5) -> dict[str, list[tuple[str, int]]]:
        search_terms.check_top_values(fields, sample, limit)
        where = self._where(query)
        return dict(self._read_where(where, lambda: sqlite_search.top_values(
            self._reader, where, tuple(fields), sample=sample, limit=limit), {name: [] for name in fields}))

    @contextmanager
    def holding_search(self, query: EventQuery, *, estimate: bool = False) -> Iterator[None]:
        """Find the hits of ``query`` once, on entry, for the reads of it inside the block
        (the store is held for the block): a search page's hits, count, time bounds,
        histogram and field values then read TEMP tables, not the events (and the full-text
        index) five times. Its full-text terms are looked up once, its hits (up to
        HIT_SET_MAX) kept as (seq, time); with more, each read matches on its own.
        ``estimate``: when finding every hit would take longer than about 0.25 s
        (sqlite_search.EXACT_STEPS), a sample of them stands in (``sample_hits``): the count,
        histogram and field values are then estimates (``counts_estimated``), the page of
        hits is still exact."""
        with self._lock:
            where = sqlite_search.where_of(query, query.now)
            if not where.reads_rows or self._held_texts or self._held_hits:
                yield  # time, host and service read an index fast, or an outer block holds it
                return
            self._ready_to_read(index=where.uses_index)
            if where.uses_index and not self._has_index:
                yield
                return
            try:
                with suppress(sqlite3.OperationalError):  # each read then runs (and reports) its own
                    self._held_texts = sqlite_search.hold_texts(self._reader, where.texts)
                    where = self._where(query)
                    held = sqlite_search.hold_hits(self._reader, where,
                                                   steps=sqlite_search.EXACT_STEPS if estimate else None)
                    if held is None and estimate:
                        held = sqlite_search.sample_hits(self._reader, where, *self._seq_span(query))
                    self._held_hits = None if held is None else (where.key(), held)
                yield
            finally:
                texts, self._held_texts, self._held_hits = self._held_texts, {}, None
                sqlite_search.release_hits(self._reader)
                sqlite_search.release_texts(self._reader, texts)

    def counts_estimated(self, query: EventQuery) -> bool:
        held = self._held_hits
        return held is not None and held[1].estimated and held[0] == sqlite_search.where_of(
            query, query.now, self._held_texts).key()

    def _seq_span(self, query: EventQuery) -> tuple[int, int]:
        """The first and last seq of the events in ``query``'s since/until (by the time index:
        seqs follow arrival, so this is the span a sample of its hits spreads over)."""
        first = last = None
        if query.since is not None:
            first = self._reader.execute("SELECT seq FROM events WHERE time >= ? ORDER BY time, seq LIMIT 1",
                                         (to_micros(query.since),)).fetchone()
        if query.until is not None:
            last = self._reader.execute("SELECT seq FROM events WHERE time < ? ORDER BY time DESC, seq DESC "
                                        "LIMIT 1", (to_micros(query.until),)).fetchone()
        # two subqueries: SQLite seeks the rowid's ends for a lone min() or max(), but scans
        # every row for min() and max() together
        low, high = self._reader.execute(
            "SELECT (SELECT min(seq) FROM events), (SELECT max(seq) FROM events)").fetchone()
        return (first[0] if first else int(low or 0)), (last[0] if last else int(high or 0))

    def _where(self, query: EventQuery) -> sqlite_search.Where:
        """The WHERE clause of ``query``, on what ``holding_search`` holds for it, if anything."""
        where = sqlite_search.where_of(query, query.now, self._held_texts)
        if self._held_hits is not None and self._held_hits[0] == where.key():
            return replace(self._held_hits[1], conditions=[], params=[])
        return where

    def _read_where(self, where: sqlite_search.Where, read: Callable[[], Any], nothing: Any) -> Any:
        """Run ``read`` under the lock once the record (and the index, when ``where`` needs it)
        is up to date; ``nothing`` when it needs an index this store does not have."""
        with self._lock:
            self._ready_to_read(index=where.uses_index)
            if where.uses_index and not self._has_index:
                return nothing
            try:
                return read()
            except sqlite3.OperationalError as exc:
                raise StoreError(f"search failed: {exc}") from exc

    def _ready_to_read(self, *, index: bool) -> None:
        self._check_open()
        self.flush()
        if index and self._indexer is not None:
            self.index_pending()

    # -- alerts (the methods are TriageStore's) ----------------------------------------------

    alert_sql = alert_changes.AlertSQL(
        upsert_many=sqlite_alerts.upsert_many, set_status=sqlite_alerts.set_status,
        set_assignee=sqlite_alerts.set_assignee, get=sqlite_alerts.get, count=sqlite_alerts.count,
        query=sqlite_alerts.query, create_silence=sqlite_silences.create,
        expire_silence=sqlite_silences.expire, delete_silence=sqlite_silences.delete,
        silences=sqlite_silences.every)

    def _reading(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            self._check_open()
            return work(self._reader)

    def _queue_admin(self, event: Event) -> None:
        self._conn.execute("INSERT INTO admin_outbox (event) VALUES (?)", (msgspec.json.encode(event),))

    def _drain_admin(self) -> int | None:
        """Move queued admin events into the log now if this process is, or can briefly become,
        the appender; else the appender does it at its next commit. The last seq written, or None."""
        temporary = False
        if self._append_lock is None:
            if self._role != "primary":
                return None
            try:
                self._take_append_lock(replicate=False)
            except StoreError:
                return None  # another process appends: it drains the outbox
            temporary = True
        try:
            # A brief appender (an API process acknowledging an alert) seals at once: the action
            # is forward-secure immediately instead of waiting for the ingest's next checkpoint.
            rows = self._write_rows(force_checkpoint=temporary)
            if self.replica is not None and self._ledger is not None:
                self.replica.wait_acked(self._ledger.size)
        finally:
            if temporary:
                self._release_append_lock()
        return rows[-1][0] if rows else None

    def _release_append_lock(self) -> None:
        if self._append_lock is not None:
            os.close(self._append_lock)
            self._append_lock = None
        self._ledger = None
        self._checkpointer = None

    def _write(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` in one write transaction."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            result = work()
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        return result

    # -- statistics ------------------------------------------------------------------------

    def event_histogram(self, start: datetime, until: datetime, step: int) -> list[tuple[Any, ...]]:
        """``(host, service, bucket, count)``: events in [start, until) per ``step`` seconds from
        ``start`` (whole minutes, from the per-minute rollup; see ``sqlite_rollup.histogram``)."""
        with self._lock:
            self._ready_to_read(index=False)
            return sqlite_rollup.histogram(self._reader, start, until, step)

    def source_stats(self) -> list[SourceStats]:
        with self._lock:
            self._ready_to_read(index=False)
            rows = self._reader.execute(
                "SELECT host, service, first_seen, last_seen, count, last_received FROM sources "
                "WHERE count > 0 ORDER BY host, service").fetchall()
        return [SourceStats(host=h, service=s, first_seen=from_micros(f), last_seen=from_micros(last),
                            count=n, last_received=from_micros(r)) for h, s, f, last, n, r in rows]

    def counts(self) -> StoreCounts:
        with self._lock:
            self._ready_to_read(index=False)
            events, last = self._reader.execute(
                "SELECT coalesce(sum(count), 0), (SELECT coalesce(max(seq), 0) FROM events) FROM sources",
            ).fetchone()
            by_status = sqlite_alerts.status_counts(self._reader)
            indexed = indexed_seq(self._reader, "idx") if self._has_index else 0
        return StoreCounts(events=events, alerts=sum(by_status.values()), alerts_by_status=by_status,
                           unindexed=last - indexed)

    # -- lifecycle -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self.read_only:
            raise StoreError("the store was opened read-only")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                # release the attempts held (not by a fenced writer: its successor holds them)
                if self._attempts.ready and self._role == "primary" and not self._fenced:
                    self._attempts.finish()
                    self._write_rows()
                self.flush()
                if (self._checkpointer is not None and self._ledger is not None and self._role == "primary"
                        and self._checkpointer.enabled and self._ledger.size > self._checkpointer.last_size):
                    self._write_rows(force_checkpoint=True)  # seal the tail on a clean shutdown
                if (self.replica is not None and self.replica.sync and self._checkpointer is not None
                        and not self.replica.wait_sealed(self._checkpointer.last_size)):
                    log.warning("the standby has not stored the last checkpoint (up to record %d): its copy "
                                "of the newest records is not sealed", self._checkpointer.last_size)
                if self._index_process is not None:
                    self._index_process.close()  # its last round; then ours finds little or nothing
                if self._indexer is not None:
                    self.index_pending()
            finally:
                self._closed = True
                if self.replica is not None:  # also when the last flush was not acknowledged
                    self.replica.close()
                # The reader first: it attaches the index read-only, so while it is open the
                # indexer's connection is not the index's last one and its close cannot fold the
                # index's WAL back (it stayed beside the index, ~80 bytes a line after analyze).
                self._reader.close()
                if self._index_process is not None:
                    self._index_process.close()  # before ours: the last connection folds the WAL
                if self._indexer is not None:
                    self._indexer.close()
                self._conn.close()
                if self._append_lock is not None:
                    os.close(self._append_lock)  # closing the fd releases the lock
                    self._append_lock = None


def _read_only_uri(path: Path) -> str:
    """A read-only SQLite URI for ``path`` (percent-encoded: '?', '#', '%' in folder names)."""
    return f"{path.resolve().as_uri()}?mode=ro"


def _json_ints(values: list[int]) -> str:
    return "[" + ",".join(str(v) for v in values) + "]"
