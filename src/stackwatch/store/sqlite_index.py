"""The deferred search index: full text over messages, and source IP / user / request id.

It lives in its own file (``stackwatch-index.db``) and is filled in bulk, one
``INSERT ... SELECT`` per structure over the rows with ``seq > indexed_seq``, by a
connection whose main database is the index file and which only *reads* the record. So
indexing never holds the record's write lock, runs in C without the GIL (a background
thread uses the second core), and never slows the append path.

Searches call ``catch_up()`` first, so a search always sees every committed event. Several
processes may index the same store: the first statement of an indexing transaction takes
the index file's write lock before ``indexed_seq`` is read, so ranges never overlap.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

from stackwatch.store import index_keys
from stackwatch.store.permissions import create_private_file
from stackwatch.store.sqlite_schema import (
    FIELD_IP,
    FIELD_REQUEST,
    FIELD_USER_ID,
    FIELD_USER_NAME,
    FTS_MAX_CHARS,
    INDEX_VERSION,
    KEY_GEN_BITS,
    create_index_schema,
)

log = logging.getLogger(__name__)

CHUNK: Final = 200_000  # most rows indexed per transaction (bounds how long the index lock is held)

# One pass over the new records (each is read once and offers its four keys), not one pass
# per field: a quarter less CPU for the same rows.
_INDEX_KEYS: Final = f"""
    INSERT INTO event_keys (gen, field, value, seq)
    SELECT gen, field, CASE WHEN length(value) IN {index_keys.PACKED_LENGTHS}
                            THEN {index_keys.SQL_FUNCTION}(value) ELSE value END, seq FROM (
        SELECT e.seq >> {KEY_GEN_BITS} AS gen, f.field AS field,
               CASE f.field WHEN {FIELD_IP} THEN e.init_ip WHEN {FIELD_USER_NAME} THEN e.init_name
                            WHEN {FIELD_USER_ID} THEN e.init_id ELSE e.request_id END AS value, e.seq AS seq
        FROM ev.events AS e CROSS JOIN (SELECT {FIELD_IP} AS field UNION ALL SELECT {FIELD_USER_NAME}
             UNION ALL SELECT {FIELD_USER_ID} UNION ALL SELECT {FIELD_REQUEST}) AS f
        WHERE e.seq > ?1 AND e.seq <= ?2 AND value != '')"""  # noqa: S608 - integer constants and a fixed name
# (The packing runs outside the filter: a WHERE naming the packed alias would call it twice.)
KEY_GENS: Final = f"""(WITH RECURSIVE g(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM g
    WHERE x < (SELECT value >> {KEY_GEN_BITS} FROM idx.meta WHERE name = 'indexed_seq')) SELECT x FROM g)"""  # noqa: S608 - integer constant
"""Every generation of event_keys that can hold a row: ``gen IN KEY_GENS`` (see sqlite_schema)."""
_INDEX_FTS: Final = f"""
    INSERT INTO events_fts (rowid, message)
    SELECT seq, substr(message, 1, {FTS_MAX_CHARS}) FROM ev.events
    WHERE seq > ?1 AND seq <= ?2 AND message != ''"""  # noqa: S608 - integer constant


def connect_index(index_path: Path, record_path: Path, *, store_id: str, last_seq: int,
                  timeout: float) -> sqlite3.Connection:
    """A connection with the index file as ``main`` and the record attached as ``ev``; the
    index is (re)built first when it does not match the record."""
    create_private_file(index_path)  # 0600 whatever the umask: it holds every message's words
    conn = sqlite3.connect(index_path, isolation_level=None, timeout=timeout, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        # Room for the newest event_keys generation and the FTS segments being merged.
        conn.execute("PRAGMA cache_size = -65536")  # 64 MB
        index_keys.register(conn)  # the keys are packed as they are indexed
        _ensure_index(conn, store_id, last_seq)
        # Attached only now: BEGIN IMMEDIATE on a connection write-locks every attached file.
        conn.execute("ATTACH DATABASE ? AS ev", (str(record_path),))
    except BaseException:
        conn.close()
        raise
    return conn


def _ensure_index(conn: sqlite3.Connection, store_id: str, last_seq: int) -> None:
    """(Re)create the index when it is missing, of another version, or belongs to another
    record (a restored or replaced ``stackwatch.db``): it is derived data, rebuilt from the record."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] == INDEX_VERSION:
            meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
            if meta.get("store_id") == store_id and meta.get("indexed_seq", 0) <= last_seq:
                conn.execute("COMMIT")
                return
            log.warning("search index does not match the store; rebuilding it")
        create_index_schema(conn)
        conn.execute("UPDATE meta SET value = ? WHERE name = 'store_id'", (store_id,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


Messages = Callable[[sqlite3.Connection, int, int], Iterable[tuple[int, str]]]
"""(seq, message) of the records in (low, high] (format 2 keeps messages in blocks, not rows)."""


def index_pending(conn: sqlite3.Connection, *, chunk: int = CHUNK, messages: Messages | None = None) -> int:
    """Index every committed event not yet indexed; returns how many were indexed."""
    total = 0
    while True:
        conn.execute("BEGIN")  # deferred: must not take the record's write lock
        try:
            # Take the index's write lock first, then read where indexing stopped.
            conn.execute("UPDATE main.meta SET value = value WHERE name = 'indexed_seq'")
            low = conn.execute("SELECT value FROM main.meta WHERE name = 'indexed_seq'").fetchone()[0]
            last = conn.execute("SELECT coalesce(max(seq), 0) FROM ev.events").fetchone()[0]
            high = min(last, low + chunk)
            if high > low:
                conn.execute(_INDEX_KEYS, (low, high))
                if messages is None:
                    conn.execute(_INDEX_FTS, (low, high))
                else:
                    conn.executemany("INSERT INTO events_fts (rowid, message) VALUES (?, ?)",
                                     ((seq, text[:FTS_MAX_CHARS]) for seq, text in messages(conn, low, high)
                                      if text))
                conn.execute("UPDATE main.meta SET value = ? WHERE name = 'indexed_seq'", (high,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        total += high - low
        if high >= last:
            return total


def indexed_seq(conn: sqlite3.Connection, schema: str = "main") -> int:
    sql = ("SELECT value FROM idx.meta WHERE name = 'indexed_seq'" if schema == "idx"
           else "SELECT value FROM main.meta WHERE name = 'indexed_seq'")
    row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


_WORD: Final = re.compile(r"[^\W_]")


def fts_query(text: str) -> str | None:
    """Free text as a safe FTS5 query: each whitespace-separated word becomes a quoted phrase
    (so nothing in it is FTS syntax: quotes, ``OR``, ``NEAR(``, ``*``, ``:``, ``^``...), and
    all must match. None when no word has a letter or digit (the query matches nothing)."""
    words = [w for w in text.replace("\x00", " ").split() if _WORD.search(w)]
    if not words:
        return None
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)


class Indexer:
    """Runs ``index_pending`` on demand (``catch_up``) and, optionally, in a background thread
    woken by ``poke()`` after commits and every ``interval`` seconds, which also checkpoints
    the record's WAL."""

    def __init__(self, conn: sqlite3.Connection, *, background: bool, interval: float = 2.0,
                 messages: Messages | None = None) -> None:
        self._conn = conn
        self._messages = messages
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._interval = interval
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="stackwatch-indexer", daemon=True)
            self._thread.start()

    def catch_up(self) -> int:
        with self._lock:
            return index_pending(self._conn, messages=self._messages)

    def poke(self) -> None:
        if self._thread is not None:
            self._wake.set()
        # Without a thread the writer indexes on its own schedule (see SQLiteStore.flush).

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop:
                break
            try:
                self.catch_up()
                self.checkpoint()
            except sqlite3.Error as exc:  # busy past the timeout, disk full: retry on the next round
                self.error = exc
                log.warning("background indexing failed: %s", exc)

    def checkpoint(self) -> None:
        """Copy the record's WAL into its database file (PASSIVE: never blocks the writer).
        Done here so the appending thread does not pay for it (it was ~1/4 of the append cost)."""
        with self._lock:
            self._conn.execute("PRAGMA ev.wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        self._stop = True
        if self._thread is not None:
            self._wake.set()
            self._thread.join()
        with self._lock:
            self._conn.close()
