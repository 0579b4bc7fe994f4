"""``PostgresStore``: the shared store (``Store`` on PostgreSQL, record format 2).

Any number of processes open the same database. Readers (web, report, search) only read;
a process that appends becomes a **writer**: at its first append it registers its name
(``writer=`` option or URL parameter; default the host name) and takes a session advisory
lock on it, so one process at a time writes a given log, while other writers append theirs
concurrently (``ids``). Appends are buffered and committed every ``batch_size`` rows and at
``flush()`` (``writer.LogWriter``: one transaction per batch). Alerts, silences and sources
are shared by all. Alert changes made by a process that is not writing go through
``admin_outbox`` with the change, and enter a log at some writer's next commit.

Connections: one, in autocommit mode with explicit transactions, used by one thread at a
time (a lock). The URL is libpq's (``sslmode`` and the other parameters pass through); the
password comes from the settings (``password``), never from a configured URL.
"""

from __future__ import annotations

import functools
import logging
import socket
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import msgspec
import psycopg

from stackwatch.core.clock import SystemClock
from stackwatch.core.errors import StoreError
from stackwatch.core.event import Event
from stackwatch.store import alert_changes, search_terms
from stackwatch.store.base import (
    EventQuery,
    QueryError,
    SourceStats,
    StoreCounts,
    StoredEvent,
)
from stackwatch.store.chain import GENESIS
from stackwatch.store.checkpoints import Checkpointer
from stackwatch.store.fencing import PartitionFenced
from stackwatch.store.integrity import blocks as codec
from stackwatch.store.integrity.records import record_event
from stackwatch.store.postgres import alerts as pg_alerts
from stackwatch.store.postgres import partitions, schema, search, ticks
from stackwatch.store.postgres.attempts import PGAttemptFolder, PGAttemptReader
from stackwatch.store.postgres.ids import WRITER_SHIFT, event_id
from stackwatch.store.postgres.ingested import PGFileRecords
from stackwatch.store.postgres.scope import event_condition
from stackwatch.store.postgres.writer import LogWriter
from stackwatch.store.rows import Row, RowBuilder, clean_text, from_micros, to_micros
from stackwatch.store.scope import Scope
from stackwatch.store.witness import parse_witness

log = logging.getLogger(__name__)

DEFAULT_SCHEMA: Final = "stackwatch"
CACHED_BLOCKS: Final = 32
_WRITER_LOCK: Final = 0x5357  # advisory lock serialising the registration of writers ("SW")
_URL_OPTIONS: Final = ("writer", "schema", "keys")
"""Parameters of a postgresql:// URL that are stackwatch's, not libpq's."""


_Read = TypeVar("_Read", bound=Callable[..., Any])
T = TypeVar("T")


def _read(method: _Read) -> _Read:
    """A read that survives a lost connection (a server restart, a failover): once the
    connection is found broken it is made again and the read retried once; any other database
    error is a StoreError."""

    @functools.wraps(method)
    def read(self: PostgresStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except psycopg.OperationalError as exc:
            if not self._conn.broken or self._closed:
                raise StoreError(f"reading the store failed: {_one_line(exc)}") from exc
        except psycopg.Error as exc:
            raise StoreError(f"reading the store failed: {_one_line(exc)}") from exc
        try:
            return method(self, *args, **kwargs)  # _check_open made the connection again
        except psycopg.Error as exc:
            raise StoreError(f"reading the store failed: {_one_line(exc)}") from exc

    return read  # type: ignore[return-value]


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """(the URL for libpq, stackwatch's own parameters taken out of its query)."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    own = {k: v for k, v in pairs if k in _URL_OPTIONS}
    rest = [(k, v) for k, v in pairs if k not in _URL_OPTIONS]
    # percent-encoded as libpq decodes (it reads no '+' as a space)
    return parts._replace(query=urlencode(rest, quote_via=quote)).geturl(), own


def default_writer(keys: str | Path | None = None) -> str:
    """The host's name, and the writer's key folder when it has one (so two analyzers on one
    host, each with its keys, are two writers without naming them)."""
    host = socket.gethostname() or "localhost"
    return f"{host}:{Path(keys).absolute()}" if keys else host


class PostgresStore(alert_changes.TriageStore):
    """See the module docstring. Options: ``writer`` (this process's log name), ``schema``,
    ``keys`` (a folder with this writer's signing and sealing keys: ``postgres.keys``; without
    it the log is chained but not checkpointed), ``witnesses`` (where this writer's checkpoints
    also go: one witness per writer, as ``store/witness.py`` specs), ``batch_size``, ``read_only``,
    ``checkpoint_every``/``checkpoint_interval``; the embedded store's other options are
    accepted and ignored (``background_index``: the text index is written with the rows)."""

    def __init__(self, url: str, *, writer: str | None = None, schema_name: str | None = None,
                 keys: str | Path | None = None, batch_size: int = 20_000, read_only: bool = False,
                 clock: Any = None, checkpoint_every: int = 100_000, checkpoint_interval: float = 60.0,
                 connect_timeout: float = 30.0, witnesses: Sequence[str] | None = None,
                 **ignored: Any) -> None:
        libpq_url, own = split_url(url)
        self.url = libpq_url
        key_dir = keys or own.get("keys")
        self.writer_name = writer or own.get("writer") or default_writer(key_dir)
        self.schema = schema_name or own.get("schema") or DEFAULT_SCHEMA
        self.keys = Path(key_dir) if key_dir else None
        self.read_only = read_only
        # this writer's witnesses (file:PATH, syslog+tcp://..., https://...): refused at once if malformed
        self._witnesses = [parse_witness(spec) for spec in witnesses or ()]
        self.batch_size = max(1, batch_size)
        self._clock = clock or SystemClock()
        self._checkpoint_every = checkpoint_every
        self._checkpoint_interval = checkpoint_interval
        self._lock = threading.RLock()
        self._closed = False
        self._rows: list[Row] = []
        self._sources: dict[tuple[str, str], int] = {}
        self._names: dict[int, tuple[str, str]] = {}
        self._builder = RowBuilder(self._sources, self._allocate_source)
        self._writer: LogWriter | None = None
        # a cluster partition's checkpoint, committed with the next write (stage_partition_state)
        self._partition_pending: partitions.Staged | None = None
        # the partition this store writes for and its ownership epoch (claim_partition)
        self._fence: tuple[str, int] | None = None
        self._fenced = False  # a write was refused: taken over, nothing more is written
        # this writer's keystone login attempts, correlated as they are appended (attempts.py);
        # kept across a reconnection (what it holds is not in the database yet)
        self._attempts: PGAttemptFolder | None = None
        self._cache: OrderedDict[tuple[int, int], tuple[int, list[bytes]]] = OrderedDict()
        self._connect_timeout = int(connect_timeout)
        self._conn = self._connect()
        try:
            if read_only:
                if not schema.exists(self._conn, self.schema):
                    raise StoreError(f"no stackwatch store in schema {self.schema!r} of this database")
                schema.use_schema(self._conn, self.schema)
            else:
                schema.ensure(self._conn, self.schema)
                self._conn.execute(b"INSERT INTO meta VALUES ('store_id', %s) ON CONFLICT (name) DO NOTHING",
                                   (uuid.uuid4().hex,))
            self._load_sources()
        except psycopg.Error as exc:
            self._conn.close()
            raise StoreError(f"cannot open the store in schema {self.schema!r}: {_one_line(exc)}") from exc
        except BaseException:
            self._conn.close()
            raise

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=self._connect_timeout,
                                   application_name="stackwatch")
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to the PostgreSQL store: {_one_line(exc)}") from None

    def _revive(self) -> None:
        """After the connection broke: connect again and, for a writer, take its lock again and
        reload its ledger (a batch whose commit was lost in flight is dropped from the buffer if
        the database has it, kept to retry if not)."""
        self._conn = self._connect()
        schema.use_schema(self._conn, self.schema)
        self._cache.clear()
        if self._writer is not None:
            self._writer = None
            writer = self._start_writer()
            if self._attempts is not None:
                self._attempts.drop_committed(self._conn)
            if self._rows and writer.ledger.size >= self._rows[-1][0]:
                self._rows = []
            elif self._rows and self._rows[0][0] != writer.next_seq:
                raise StoreError(f"writer {self.writer_name!r}: after reconnecting its log ends at "
                                 f"{writer.ledger.size}, the buffer starts at {self._rows[0][0]}")
            log.warning("reconnected to the PostgreSQL store (writer %s)", self.writer_name)

    # -- identity ----------------------------------------------------------------------------

    @property
    def format(self) -> int:
        return 2

    @property
    @_read
    def store_id(self) -> str:
        row = self._conn.execute(b"SELECT value FROM meta WHERE name = 'store_id'").fetchone()
        return str(row[0]) if row else ""

    @property
    def log_id(self) -> str:
        return f"{self.store_id}/{self.writer_name}"

    @property
    def writer_number(self) -> int | None:
        """This process's writer number once it has appended (None before)."""
        return self._writer.writer if self._writer is not None else None

    @property
    @_read
    def size(self) -> int:
        """The newest commit tick (what a live tail polls: ``ticks.py``)."""
        with self._lock:
            self._check_open()
            return ticks.newest(self._conn)

    # -- writing -----------------------------------------------------------------------------

    def _load_sources(self) -> None:
        for source, host, service in self._conn.execute(b"SELECT id, host, service FROM sources"):
            self._sources[(host, service)] = source
            self._names[source] = (host, service)

    def _allocate_source(self, host: str, service: str) -> int:
        key = (_pg_text(host), _pg_text(service))
        source = self._sources.get(key)
        if source is None:  # committed at once (autocommit): shared by every writer
            row = self._conn.execute(
                b"INSERT INTO sources (host, service) VALUES (%s, %s) ON CONFLICT (host, service) "
                b"DO UPDATE SET host = EXCLUDED.host RETURNING id", key).fetchone()
            assert row is not None
            source = int(row[0])
            self._sources[key] = source
            self._names[source] = key
        self._sources[(host, service)] = source
        return source

    def start_writer(self) -> LogWriter:
        """Register this process's writer and take its lock (done by the first append)."""
        with self._lock:
            self._check_writable()
            return self._start_writer()

    @_read
    def signers(self, writer: int) -> list[tuple[int, bytes]]:
        from stackwatch.store.postgres.ledger_io import PGLedgerIO

        with self._lock:
            self._check_open()
            return PGLedgerIO(self._conn, writer).signers()

    def add_signer(self, public_key: bytes) -> None:
        """Record ``public_key`` as this writer's signer from its sealer's current epoch."""
        with self._lock:
            writer = self.start_writer()
            sealer = writer.checkpointer.sealer
            if sealer is None:
                raise StoreError("the writer has no keys (option keys=DIR)")
            self._write(lambda: self._conn.execute(
                b"INSERT INTO signers VALUES (%s, %s, %s)", (writer.writer, sealer.epoch, public_key)))

    def _start_writer(self) -> LogWriter:
        if self._writer is not None:
            return self._writer
        conn, name = self._conn, self.writer_name
        with conn.transaction():
            conn.execute(b"SELECT pg_advisory_xact_lock(%s)", (_WRITER_LOCK,))
            row = conn.execute(b"SELECT id FROM writers WHERE name = %s", (name,)).fetchone()
            if row is None:
                row = conn.execute(
                    b"INSERT INTO writers (id, name, created) SELECT coalesce(max(id) + 1, 0), %s, %s "
                    b"FROM writers RETURNING id", (name, to_micros(self._clock.now()))).fetchone()
                assert row is not None
                conn.execute(b"INSERT INTO ledger_state (writer, size, head) VALUES (%s, 0, %s)",
                             (row[0], GENESIS))
        number = int(row[0])
        # keyed by the schema too: another store's writer of the same number in this database is
        # another log (the lock lasts as long as this session: a crashed writer releases it)
        got = conn.execute(b"SELECT pg_try_advisory_lock(hashtext(%s), %s)",
                           (f"stackwatch-writer:{self.schema}", number)).fetchone()
        if not got or not got[0]:
            raise StoreError(f"writer {name!r} is in use by another process: give each analyzer its own "
                             "writer name (option writer=NAME)")
        # without a keys folder the checkpointer finds no keys: chained, not checkpointed
        key_dir = self.keys if self.keys is not None else Path("/nonexistent/stackwatch-no-keys")
        from stackwatch.store.postgres.ledger_io import PGLedgerIO

        checkpointer = Checkpointer(key_dir, f"{self.store_id}/{name}", PGLedgerIO(conn, number),
                                    every=self._checkpoint_every, interval=self._checkpoint_interval,
                                    witnesses=self._witnesses)
        self._writer = LogWriter(conn, number, self._names, checkpointer, self._builder.rows)
        if self._attempts is None or self._attempts.writer != number:
            self._attempts = PGAttemptFolder(number)
        self._writer.attempts = self._attempts
        return self._writer

    def append_events(self, events: Sequence[Event]) -> list[int]:
        with self._lock:
            self._check_writable()
            writer = self._start_writer()
            first = writer.next_seq + len(self._rows)
            self._rows.extend(self._builder.rows(events, first))
            self._fold_attempts(events, first)
            if len(self._rows) >= self.batch_size:
                self._commit()
            base = writer.writer << WRITER_SHIFT
            return [base | seq for seq in range(first, first + len(events))]

    def _fold_attempts(self, events: Sequence[Event], first: int) -> None:
        """Feed the login attempts' correlator (written by ``LogWriter.write``, same transaction);
        at the first append, what this writer held when it last stopped is read back first."""
        folder = self._attempts
        assert folder is not None
        if not folder.ready:
            try:
                folder.catch_up(self._conn, self._writer_events)
            except psycopg.Error as exc:
                raise StoreError(f"reading the held login attempts failed: {_one_line(exc)}") from exc
        folder.push(events, first)

    def _commit(self, *, force_checkpoint: bool = False) -> list[Row]:
        assert self._writer is not None
        try:
            if self._fenced and (self._rows or self._partition_pending is not None):
                raise PartitionFenced(*self._fence or ("?", 0), None)
            stored = self._writer.write(self._rows, to_micros(self._clock.now()),
                                        force_checkpoint=force_checkpoint, partition=self._partition_pending,
                                        fence=self._fence)
        except PartitionFenced:
            # taken over: what was buffered is the successor's to write (from its checkpoint)
            self._fenced = True
            self._rows, self._partition_pending = [], None
            raise
        except psycopg.Error as exc:
            raise StoreError(f"writing events failed: {_one_line(exc)}") from exc
        # kept until a write committed it: writing it again after a lost commit is harmless
        self._rows, self._partition_pending = [], None
        return stored

    def flush(self) -> None:
        with self._lock:
            if self._closed or self.read_only:
                return
            if self._rows or self._partition_pending is not None:
                if self._conn.broken:
                    self._revive()
                self._start_writer()
                self._commit()

    def stage_partition_state(self, partition: str, position: dict[str, Any], state: bytes | None) -> None:
        """A cluster partition's checkpoint (detection state and position), committed by the
        next ``flush`` in this writer's transaction with the events appended before it; a state
        of None keeps the last one (the row is keyed by partition: a standby's writer that took
        the partition over continues it)."""
        with self._lock:
            self._check_writable()
            self._start_writer()
            if self._partition_pending is not None and state is None:
                state = self._partition_pending[2]  # a staged state not yet committed stays
            self._partition_pending = (partition, position, state)

    @_read
    def partition_state(self, partition: str) -> tuple[dict[str, Any], bytes] | None:
        """The last committed checkpoint of ``partition`` (None: none yet)."""
        with self._lock:
            self._check_open()
            return partitions.load(self._conn, partition)

    def claim_partition(self, partition: str) -> int:
        """Take ``partition``'s next ownership epoch and fence this store's later writes of its
        events, alerts and checkpoint with it (store/fencing.py)."""
        with self._lock:
            self._check_writable()
            writer = self._start_writer()
            try:
                epoch = partitions.claim(self._conn, writer.writer, partition, to_micros(self._clock.now()))
            except psycopg.Error as exc:
                raise StoreError(f"claiming partition {partition} failed: {_one_line(exc)}") from exc
            self._fence = (partition, epoch)
            return epoch

    def checkpoint(self) -> int | None:
        """Commit what is buffered and make a checkpoint now; its epoch, None without keys."""
        with self._lock:
            self._check_writable()
            writer = self._start_writer()
            if not writer.checkpointer.enabled:
                return None
            cp = writer.checkpointer
            if not self._rows and 0 < writer.ledger.size == cp.last_size:
                # the newest checkpoint covers the log already (init's first commit made one):
                # a second over the same records would only be a duplicate epoch
                assert cp.sealer is not None
                return cp.sealer.epoch - 1
            self._commit(force_checkpoint=True)
            assert writer.checkpointer.sealer is not None
            return writer.checkpointer.sealer.epoch - 1

    def tick(self) -> None:
        """Make a checkpoint if its time has come (an idle writer)."""
        with self._lock:
            w = self._writer
            now = to_micros(self._clock.now())
            if w is not None and w.checkpointer.due(w.ledger.size + len(self._rows), now):
                self._commit()

    # -- reading events ----------------------------------------------------------------------

    @_read
    def get_events(self, seqs: Sequence[int], *, scope: Scope | None = None) -> list[StoredEvent]:
        if len(seqs) > 10_000:
            raise QueryError("at most 10000 seqs per call")
        with self._lock:
            self._check_open()
            return [StoredEvent(i, e) for i, e in self._events(seqs, scope)]

    def _events(self, ids: Sequence[int], scope: Scope | None) -> list[tuple[int, Event]]:
        wanted = sorted({int(i) for i in ids if 0 < int(i) < 2**63})
        if not wanted:
            return []
        condition, params = event_condition(scope) if scope is not None else ("true", [])
        rows = self._conn.execute(
            f"SELECT e.writer, e.seq FROM events AS e WHERE e.id = ANY(%s) AND {condition} "  # noqa: S608
            "ORDER BY e.writer, e.seq".encode(), (wanted, *params)).fetchall()
        by_writer: dict[int, list[int]] = {}
        for writer, seq in rows:
            by_writer.setdefault(int(writer), []).append(int(seq))
        out: list[tuple[int, Event]] = []
        for writer, seqs in by_writer.items():
            out += self._writer_events(writer, seqs)
        out.sort(key=lambda item: item[0])
        return out

    def _writer_events(self, writer: int, seqs: list[int]) -> list[tuple[int, Event]]:
        spans = self._conn.execute(
            b"SELECT number, first_seq, count, data FROM blocks WHERE writer = %s AND number IN "
            b"(SELECT (SELECT number FROM blocks AS b WHERE b.writer = %s AND b.first_seq <= s "
            b"ORDER BY b.first_seq DESC LIMIT 1) FROM unnest(%s::bigint[]) AS s) ORDER BY first_seq",
            (writer, writer, seqs)).fetchall()
        out: list[tuple[int, Event]] = []
        i = 0
        for number, first, count, data in spans:
            records: list[bytes] | None = None
            while i < len(seqs) and seqs[i] < first + count:
                seq = seqs[i]
                i += 1
                if seq < first:
                    continue
                if records is None:
                    records = self._block_records(writer, int(number), int(first), bytes(data))
                stored_seq, event = record_event(records[seq - first])
                if stored_seq != seq:
                    raise StoreError(f"block {number} of writer {writer} holds record {stored_seq} where "
                                     f"{seq} was due: run stackwatch store verify")
                out.append((event_id(writer, seq), event))
        return out

    def _block_records(self, writer: int, number: int, first: int, data: bytes) -> list[bytes]:
        hit = self._cache.get((writer, number))
        if hit is not None and hit[0] == first:
            self._cache.move_to_end((writer, number))
            return hit[1]
        try:
            found = codec.records(data)
        except codec.BlockError as exc:
            raise StoreError(f"block {number} of writer {writer} is damaged ({exc}): "
                             "run stackwatch store verify") from None
        self._cache[(writer, number)] = (first, found)
        if len(self._cache) > CACHED_BLOCKS:
            self._cache.popitem(last=False)
        return found

    def _where(self, query: EventQuery) -> search.Where:
        tail = None if query.after_seq is None else ticks.after(self._conn, query.after_seq)
        return search.where_of(query, query.now, tail)

    @_read
    def tail_cursor(self, events: Sequence[StoredEvent], after: int | None) -> int | None:
        """A commit tick (``ticks.py``): the newest of the commits that stored ``events``; with
        none, ``after``, or on a first search the newest tick now."""
        with self._lock:
            self._check_open()
            found = ticks.tick_of(self._conn, [e.seq for e in events])
            if found is not None:
                return found if after is None else max(found, after)
            return after if after is not None else ticks.newest(self._conn)

    @_read
    def search_events(self, query: EventQuery) -> list[StoredEvent]:
        with self._lock:
            self._check_open()
            ids = search.page(self._conn, self._where(query), newest_first=query.newest_first,
                              limit=query.limit, offset=query.offset)
            found = dict(self._events(ids, None))
        return [StoredEvent(i, found[i]) for i in ids if i in found]

    @_read
    def count_events(self, query: EventQuery) -> int:
        with self._lock:
            self._check_open()
            return search.count(self._conn, self._where(query))

    @_read
    def event_time_bounds(self, query: EventQuery) -> tuple[datetime, datetime] | None:
        with self._lock:
            self._check_open()
            found = search.time_bounds(self._conn, self._where(query))
        return None if found is None else (from_micros(found[0]), from_micros(found[1]))

    @_read
    def hit_histogram(self, query: EventQuery, start: datetime, step: timedelta, size: int) -> list[int]:
        step_us = search_terms.histogram_step(step, size)
        with self._lock:
            self._check_open()
            return search.histogram(self._conn, self._where(query), to_micros(start), step_us, size)

    @_read
    def top_values(self, query: EventQuery, fields: Sequence[str], *, sample: int = 10_000,
                   limit: int = 5) -> dict[str, list[tuple[str, int]]]:
        search_terms.check_top_values(fields, sample, limit)
        with self._lock:
            self._check_open()
            return search.top_values(self._conn, self._where(query), tuple(fields), sample=sample,
                                     limit=limit)

    @_read
    def event_histogram(self, start: datetime, until: datetime, step: int) -> list[tuple[Any, ...]]:
        """``(host, service, bucket, count)``: events in [start, until) per ``step`` seconds."""
        with self._lock:
            self._check_open()
            first = to_micros(start)
            return [tuple(r) for r in self._conn.execute(
                b"SELECT s.host, s.service, c.b, c.n FROM (SELECT source, (time - %s) / %s AS b, "
                b"count(*) AS n FROM events WHERE time >= %s AND time < %s GROUP BY source, b) AS c "
                b"JOIN sources AS s ON s.id = c.source",
                (first, step * 1_000_000, first, to_micros(until)))]

    def inclusion_proof(self, seq: int) -> dict[str, Any] | None:
        """An inclusion proof of event ``seq`` (an id) in its writer's log, None when no
        checkpoint covers it."""
        from stackwatch.store.integrity.proofs import prove_record
        from stackwatch.store.postgres.ids import split
        from stackwatch.store.postgres.ledger_io import PGLedgerIO

        self.flush()
        writer, record = split(seq)
        with self._lock:
            row = self._conn.execute(b"SELECT name FROM writers WHERE id = %s", (writer,)).fetchone()
            if row is None:
                return None
            try:
                return prove_record(PGLedgerIO(self._conn, writer), record,
                                    log_id=f"{self.store_id}/{row[0]}")
            except StoreError:
                return None

    @_read
    def integrity_status(self) -> dict[str, Any]:
        """The newest checkpoints of every writer's log, for the dashboard (store/status.py's
        shape; verification is ``stackwatch store verify --data postgresql://...``)."""
        from stackwatch.store.seal import Checkpoint
        from stackwatch.store.status import SHOWN_CHECKPOINTS

        with self._lock:
            self._check_open()
            rows = self._conn.execute(b"SELECT body FROM checkpoints ORDER BY time DESC LIMIT %s",
                                      (SHOWN_CHECKPOINTS,)).fetchall()
        checkpoints = []
        for (body,) in rows:
            cp = Checkpoint.from_bytes(bytes(body))
            checkpoints.append({"epoch": cp.epoch, "seq": cp.size, "size": cp.size, "root": cp.root.hex(),
                                "time": from_micros(cp.time_us).isoformat(), "log_id": cp.log_id})
        return {"configured": bool(checkpoints), **({} if checkpoints else {"state": "not configured"}),
                "last_checkpoint": checkpoints[0] if checkpoints else None, "last_verification": None,
                "witness": {"name": "none", "state": "not configured"}, "checkpoints": checkpoints}

    # -- alerts (the methods are TriageStore's) ----------------------------------------------

    alert_sql = alert_changes.AlertSQL(
        upsert_many=pg_alerts.upsert_many, set_status=pg_alerts.set_status,
        set_assignee=pg_alerts.set_assignee, get=pg_alerts.get, count=pg_alerts.count,
        query=pg_alerts.query, create_silence=pg_alerts.create_silence,
        expire_silence=pg_alerts.expire_silence, delete_silence=pg_alerts.delete_silence,
        silences=pg_alerts.silences)

    def _write(self, work: Any) -> Any:
        try:
            with self._conn.transaction():
                return work()
        except psycopg.Error as exc:
            raise StoreError(f"the store refused the change: {_one_line(exc)}") from exc

    def _check_alert_fence(self) -> None:
        if self._fence is None:
            return
        if self._fenced:
            raise PartitionFenced(*self._fence, None)
        try:
            partitions.check(self._conn, *self._fence)
        except PartitionFenced:
            self._fenced = True
            raise

    def _queue_admin(self, event: Event) -> None:
        self._conn.execute(b"INSERT INTO admin_outbox (event) VALUES (%s)", (msgspec.json.encode(event),))

    def queue_admin_events(self, events: Sequence[Event]) -> None:
        """Admin or audit events for the log, committed now to the outbox: this process's writer,
        or the next writer to commit, takes them into its log."""
        with self._lock:
            self._check_writable()
            def queue() -> None:
                for event in events:
                    self._queue_admin(event)

            self._write(queue)
            self._drain_admin()

    def _drain_admin(self) -> int | None:
        if self._writer is None:
            return None  # a writer takes the outbox in at its next commit
        stored = self._commit()
        return event_id(self._writer.writer, stored[-1][0]) if stored else None

    # -- statistics --------------------------------------------------------------------------

    @_read
    def source_stats(self) -> list[SourceStats]:
        with self._lock:
            self._check_open()
            rows = self._conn.execute(
                b"SELECT s.host, s.service, min(t.first_seen), max(t.last_seen), sum(t.count), "
                b"max(t.last_received) FROM source_stats AS t JOIN sources AS s ON s.id = t.source "
                b"GROUP BY s.host, s.service HAVING sum(t.count) > 0 ORDER BY s.host, s.service").fetchall()
        return [SourceStats(host=h, service=s, first_seen=from_micros(f), last_seen=from_micros(last),
                            count=int(n), last_received=from_micros(r)) for h, s, f, last, n, r in rows]

    @_read
    def counts(self) -> StoreCounts:
        with self._lock:
            self._check_open()
            row = self._conn.execute(b"SELECT coalesce(sum(count), 0) FROM source_stats").fetchone()
            by_status = pg_alerts.status_counts(self._conn)
        return StoreCounts(events=int(row[0]) if row else 0, alerts=sum(by_status.values()),
                           alerts_by_status=by_status, unindexed=0)

    def ingest_records(self) -> PGFileRecords:
        """What this writer's earlier ``analyze`` runs stored (``pipeline/ingested.py``)."""
        return PGFileRecords(self._ingest_run, self.writer_name)

    def _ingest_run(self, work: Callable[[psycopg.Connection], Any]) -> Any:
        with self._lock:
            self._check_writable()
            return self._write(lambda: work(self._conn))

    def login_attempts(self) -> PGAttemptReader:
        """The keystone login attempts every writer correlated as it appended (``attempts.py``)."""
        return PGAttemptReader(self._reading)

    @_read
    def _reading(self, work: Callable[[psycopg.Connection], T]) -> T:
        with self._lock:
            self._check_open()
            return work(self._conn)

    def check_login_attempts(self) -> Any:
        """Every writer's stored login attempts against a recount of its events
        (``attempts_check.AttemptCheck``); a writer that is writing now is named, not checked."""
        from stackwatch.store.postgres.attempts_check import check_attempts

        with self._lock:
            self._check_open()
            try:
                return check_attempts(self._conn, self.schema, self._writer_events)
            except psycopg.Error as exc:
                raise StoreError(f"checking the login attempts failed: {_one_line(exc)}") from exc

    @_read
    def writers(self) -> list[tuple[int, str]]:
        """(number, name) of every writer that has appended to this store."""
        with self._lock:
            self._check_open()
            rows = self._conn.execute(b"SELECT id, name FROM writers ORDER BY id")
            return [(int(i), str(n)) for i, n in rows]

    # -- lifecycle ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        """Before any read: the store is open (connected again if the connection broke), and this
        process's buffered rows are committed (a process reads what it appended, as with the
        embedded store)."""
        if self._closed:
            raise StoreError("the store is closed")
        if self._conn.broken:
            self._revive()
        if self._rows and not self.read_only:
            self._commit()

    def _release_attempts(self) -> bool:
        """At a clean close: release every attempt held (whether there is anything to write)."""
        folder = self._attempts
        if folder is None or not folder.ready or self._writer is None or self._fenced:
            return False  # a fenced writer's: its successor holds them (from the events)
        folder.finish()
        return True

    def _check_writable(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")
        if self.read_only:
            raise StoreError("the store was opened read-only")
        if self._conn.broken:
            self._revive()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                self.flush()
                w = self._writer
                if w is not None and w.checkpointer.enabled and w.ledger.size > w.checkpointer.last_size:
                    self._release_attempts()
                    self._commit(force_checkpoint=True)  # seal the tail on a clean shutdown
                elif self._release_attempts():
                    self._commit()
            finally:
                self._closed = True
                self._conn.close()  # ends the session: its writer lock is released


def _pg_text(value: str) -> str:
    return clean_text(value).replace("\x00", "\ufffd") if value else value


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
