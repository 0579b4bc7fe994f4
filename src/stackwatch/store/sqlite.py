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
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final

from stackwatch.core.alert import Alert
from stackwatch.core.clock import SystemClock
from stackwatch.core.errors import StoreError
from stackwatch.core.event import Event
from stackwatch.store import sqlite_alerts
from stackwatch.store.base import (
    ALERT_STATUSES,
    AlertQuery,
    EventQuery,
    NotFoundError,
    QueryError,
    SourceStats,
    Store,
    StoreCounts,
    StoredAlert,
    StoredEvent,
)
from stackwatch.store.rows import EVENT_COLUMNS, RowBuilder, clean_row, clean_text, from_micros, row_event, to_micros
from stackwatch.store.sqlite_index import Indexer, connect_index, fts_query, indexed_seq
from stackwatch.store.sqlite_schema import (
    FIELD_IP,
    FIELD_REQUEST,
    FIELD_USER_ID,
    FIELD_USER_NAME,
    SCHEMA_VERSION,
    migrate,
)

DB_FILE: Final = "stackwatch.db"
INDEX_FILE: Final = "stackwatch-index.db"

_INSERT: Final = f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"  # noqa: S608
_SELECT: Final = "SELECT " + ", ".join(f"e.{c}" for c in EVENT_COLUMNS) + ", s.host, s.service"
# Fold a committed batch into the per-source statistics, in C.
_SOURCE_STATS: Final = """
    WITH b AS (SELECT source, min(time) AS f, max(time) AS l, count(*) AS n, max(received) AS r
               FROM events WHERE seq BETWEEN ? AND ? GROUP BY source)
    UPDATE sources SET first_seen = min(coalesce(first_seen, b.f), b.f), last_seen = max(coalesce(last_seen, b.l), b.l),
                       count = count + b.n, last_received = max(coalesce(last_received, b.r), b.r)
    FROM b WHERE sources.id = b.source"""


def open_store(data_dir: str | os.PathLike[str], **options: Any) -> SQLiteStore:
    """Open (creating or upgrading as needed) the store in ``data_dir``."""
    return SQLiteStore(data_dir, **options)


class SQLiteStore(Store):
    """See the module docstring. Options: ``batch_size`` rows per insert transaction;
    ``background_index`` to fill the search index from a thread (else the writer indexes every
    ``index_every`` rows); ``read_only`` opens without creating, upgrading or writing anything
    (its searches see what the writer has indexed so far, at most ``index_interval`` seconds old)."""

    def __init__(self, data_dir: str | os.PathLike[str], *, batch_size: int = 20_000,
                 background_index: bool = True, index_every: int = 100_000, index_interval: float = 2.0,
                 read_only: bool = False, timeout: float = 30.0, clock: Any = None) -> None:
        self.data_dir = Path(data_dir)
        self.read_only = read_only
        self.batch_size = max(1, batch_size)
        self._index_every = index_every
        self._clock = clock or SystemClock()
        self._lock = threading.RLock()  # the store may be handed between threads, not shared at once
        self._closed = False
        self._rows: list[tuple[Any, ...]] = []
        self._since_index = 0
        self._append_lock: int | None = None  # fd holding the exclusive append lock
        self._next_seq = 0
        self._sources: dict[tuple[str, str], int] = {}
        self._new_sources: list[tuple[int, str, str]] = []
        self._builder = RowBuilder(self._sources, self._allocate_source)
        self._indexer: Indexer | None = None
        self._db = self.data_dir / DB_FILE
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise StoreError(f"{self.data_dir} is not a folder (expected the store's data folder)")
        if read_only:
            if not self._db.is_file():
                raise StoreError(f"no store at {self.data_dir}")
            self._conn = self._connect(f"file:{self._db}?mode=ro", uri=True, timeout=timeout)
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                self._conn.close()
                raise StoreError(f"the store's schema version is {version}, this stackwatch needs "
                                 f"{SCHEMA_VERSION}: open it once read-write to upgrade")
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._conn = self._connect(str(self._db), timeout=timeout)
            try:
                migrate(self._conn)
            except BaseException:
                self._conn.close()
                raise
            store_id = self._conn.execute("SELECT value FROM meta WHERE name = 'store_id'").fetchone()[0]
            index = connect_index(self.data_dir / INDEX_FILE, self._db, store_id=store_id,
                                  last_seq=self._max_seq(), timeout=timeout)
            self._indexer = Indexer(index, background=background_index, interval=index_interval)
        self._background = background_index
        self._last_index = time.monotonic()
        self._index_interval = index_interval
        # Searches read through a connection with the index attached: kept apart from the
        # writer's, because a write transaction on a connection locks every attached file.
        index_path = self.data_dir / INDEX_FILE
        self._reader = self._connect(f"file:{self._db}?mode=ro", uri=True, timeout=timeout)
        if index_path.exists():
            self._reader.execute("ATTACH DATABASE ? AS idx", (f"file:{index_path}?mode=ro",))
        self._has_index = index_path.exists()

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
            first = self._next_seq
            self._rows.extend(self._builder.rows(events, first))
            self._next_seq = first + len(events)
            if len(self._rows) >= self.batch_size:
                self._write_rows()
            return list(range(first, self._next_seq))

    def _take_append_lock(self) -> None:
        fd = os.open(f"{self._db}.append-lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(f"another process is appending to the store in {self.data_dir}") from None
        self._append_lock = fd
        # Only now, holding the lock, are seq and source numbering ours to continue.
        self._next_seq = self._max_seq() + 1
        self._sources.update({(host, service): source for source, host, service
                              in self._conn.execute("SELECT id, host, service FROM sources")})

    def _allocate_source(self, host: str, service: str) -> int:
        key = (clean_text(host), clean_text(service))  # what the sources table can hold
        source = self._sources.get(key)
        if source is None:
            source = max(self._sources.values(), default=0) + 1
            self._sources[key] = source
            self._new_sources.append((source, *key))
        self._sources[(host, service)] = source
        return source

    def _max_seq(self) -> int:
        return int(self._conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])

    def flush(self) -> None:
        with self._lock:
            if self._closed or self.read_only:
                return
            if self._rows:
                self._write_rows()

    def _write_rows(self) -> None:
        rows = self._rows
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._insert(rows)
            except UnicodeEncodeError:  # lone surrogates in a text field: store them as U+FFFD
                conn.execute("ROLLBACK")
                rows = [clean_row(row) for row in rows]
                conn.execute("BEGIN IMMEDIATE")
                self._insert(rows)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"writing events failed: {exc}") from exc
        self._rows = []
        self._new_sources.clear()
        self._since_index += len(rows)
        self._after_commit()

    def _insert(self, rows: list[tuple[Any, ...]]) -> None:
        if self._new_sources:
            self._conn.executemany("INSERT INTO sources (id, host, service) VALUES (?, ?, ?)", self._new_sources)
        self._conn.executemany(_INSERT, rows)
        self._conn.execute(_SOURCE_STATS, (rows[0][0], rows[-1][0]))

    def _after_commit(self) -> None:
        assert self._indexer is not None
        if self._background:
            self._indexer.poke()
        elif self._since_index >= self._index_every or time.monotonic() - self._last_index > self._index_interval:
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

    def get_events(self, seqs: Sequence[int]) -> list[StoredEvent]:
        if len(seqs) > 10_000:
            raise QueryError("at most 10000 seqs per call")
        with self._lock:
            self._ready_to_read(index=False)
            wanted = [int(seq) for seq in seqs]
            rows = self._reader.execute(
                f"{_SELECT} FROM events AS e JOIN sources AS s ON s.id = e.source "  # noqa: S608
                "WHERE e.seq IN (SELECT value FROM json_each(?)) ORDER BY e.seq", (_json_ints(wanted),),
            ).fetchall()
        return [StoredEvent(row[0], row_event(row[:-2], row[-2], row[-1])) for row in rows]

    def search_events(self, query: EventQuery) -> list[StoredEvent]:
        uses_index = any(v is not None for v in (query.text, query.source_ip, query.user, query.request_id))
        where: list[str] = []
        params: list[Any] = []
        if query.since is not None:
            where.append("e.time >= ?")
            params.append(to_micros(query.since))
        if query.until is not None:
            where.append("e.time < ?")
            params.append(to_micros(query.until))
        if query.host is not None:
            where.append("e.source IN (SELECT id FROM sources WHERE host = ?)")
            params.append(query.host)
        if query.service is not None:
            where.append("e.source IN (SELECT id FROM sources WHERE service = ?)")
            params.append(query.service)
        for column, value in (("kind", query.kind), ("action", query.action), ("outcome", query.outcome),
                              ("severity", query.severity), ("init_project", query.project)):
            if value is not None:
                where.append(f"e.{column} = ?")  # column names from the fixed list above
                params.append(value)
        for fields, value in (((FIELD_IP,), query.source_ip), ((FIELD_USER_NAME, FIELD_USER_ID), query.user),
                              ((FIELD_REQUEST,), query.request_id)):
            if value is not None:
                where.append(f"e.seq IN (SELECT seq FROM idx.event_keys WHERE field IN "
                             f"({', '.join(str(f) for f in fields)}) AND value = ?)")
                params.append(value)
        if query.text is not None:
            match = fts_query(query.text)
            if match is None:
                return []
            where.append("e.seq IN (SELECT rowid FROM idx.events_fts WHERE events_fts MATCH ?)")
            params.append(match)
        order = "DESC" if query.newest_first else "ASC"
        sql = f"{_SELECT} FROM events AS e JOIN sources AS s ON s.id = e.source"  # noqa: S608
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY e.time {order}, e.seq {order} LIMIT ? OFFSET ?"
        with self._lock:
            self._ready_to_read(index=uses_index)
            if uses_index and not self._has_index:
                return []
            try:
                rows = self._reader.execute(sql, (*params, query.limit, query.offset)).fetchall()
            except sqlite3.OperationalError as exc:
                raise StoreError(f"search failed: {exc}") from exc
        return [StoredEvent(row[0], row_event(row[:-2], row[-2], row[-1])) for row in rows]

    def _ready_to_read(self, *, index: bool) -> None:
        self._check_open()
        self.flush()
        if index and self._indexer is not None:
            self.index_pending()

    # -- alerts ----------------------------------------------------------------------------

    def upsert_alerts(self, alerts: Iterable[Alert]) -> list[int]:
        with self._lock:
            self._check_writable()
            now = to_micros(self._clock.now())
            return self._write(lambda: [sqlite_alerts.upsert(self._conn, alert, now) for alert in alerts])

    def set_alert_status(self, alert_id: int, status: str, *, actor: str,
                         comment: str | None = None) -> StoredAlert:
        if status not in ALERT_STATUSES:
            raise QueryError(f"status must be one of {ALERT_STATUSES}, got {status!r}")
        with self._lock:
            self._check_writable()
            now = to_micros(self._clock.now())
            if not self._write(lambda: sqlite_alerts.set_status(self._conn, alert_id, status, actor, comment, now)):
                raise NotFoundError(f"no alert with id {alert_id}")
            found = sqlite_alerts.get(self._conn, alert_id)
        assert found is not None
        return found

    def get_alert(self, alert_id: int) -> StoredAlert | None:
        with self._lock:
            self._check_open()
            return sqlite_alerts.get(self._reader, alert_id)

    def alerts(self, query: AlertQuery | None = None) -> list[StoredAlert]:
        with self._lock:
            self._check_open()
            return sqlite_alerts.query(self._reader, query or AlertQuery())

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

    def source_stats(self) -> list[SourceStats]:
        with self._lock:
            self._ready_to_read(index=False)
            rows = self._reader.execute(
                "SELECT host, service, first_seen, last_seen, count, last_received FROM sources "
                "WHERE count > 0 ORDER BY host, service").fetchall()
        return [SourceStats(host=h, service=s, first_seen=from_micros(f), last_seen=from_micros(last), count=n,
                            last_received=from_micros(r)) for h, s, f, last, n, r in rows]

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
                self.flush()
                if self._indexer is not None:
                    self.index_pending()
            finally:
                self._closed = True
                if self._indexer is not None:
                    self._indexer.close()
                self._reader.close()
                self._conn.close()
                if self._append_lock is not None:
                    os.close(self._append_lock)  # closing the fd releases the lock
                    self._append_lock = None


def _json_ints(values: list[int]) -> str:
    return "[" + ",".join(str(v) for v in values) + "]"
