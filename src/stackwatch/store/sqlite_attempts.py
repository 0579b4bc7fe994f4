"""Keystone login attempts, correlated once, at ingest: what keeps the keystone page exact
and fast on a store of millions of events.

One login can be stored three or four times (proxy, access line, keystone.log, CADF); stored
events do not say which copies belong together (``duplicate_of`` is the detection engine's,
in memory). So the writer runs the same ``Correlator`` over the keystone login events it
appends (action ``authenticate`` or ``user.not_found``, service ``keystone``: the events the
analytics read), in append order, and writes each attempt (the primary copy, enriched with
what its copies know) in the transaction that commits the rows:

* ``login_attempts``: one row per attempt, keyed by the seq of its primary copy: the
  timelines of one address or account, and the exact counts of a range's partial minutes;
* ``attempt_minutes``: attempts per (minute, source IP, account, project, outcome), with how
  many carried a ``partial_password_hash`` and that hash when they all carried the same one
  (``*`` when they differed): the page sums a range's whole minutes from here.

The correlator holds an attempt back for up to its window (2 s of event time) waiting for
the other copies; what it holds when a transaction commits is written down with it (the
seqs of the held events, in ``meta``), so a writer that crashed picks them up again when it
reopens. A clean close releases everything. ``meta.attempts_upto`` is the last seq folded:
events appended without the writer's fold (a standby's replicated rows) are folded when the
store next appends as a primary.

Derived data: ``rebuild`` recomputes it from the events (the migration that creates it, and
``store restore``, do), ``check`` compares it with a recount. In record format 2 the events
rows are narrow, so those (and a crashed writer's catch-up) read the records from the blocks.
Hook points in the writer (``store/sqlite.py``; ``sqlite_blocks.BlockStore`` shares its
``_write_rows``): ``AttemptFolder.push`` in ``append_events`` after the rows are built,
``AttemptFolder.write`` in ``_write_rows`` inside the transaction, ``AttemptFolder.finish``
in ``close``; ``forget`` in retention (both formats).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import orjson

from stackwatch.core.event import Event
from stackwatch.store import attempt_read
from stackwatch.store.attempt_fold import (  # noqa: F401 - FOLDED_ACTIONS, MIXED: names kept here
    FOLDED_ACTIONS,
    MINUTE,
    MIXED,
    AttemptCorrelator,
    AttemptScope,
    fold_minutes,
)
from stackwatch.store.integrity.sqlite_io import FORMAT_META
from stackwatch.store.rows import EVENT_COLUMNS, row_event
from stackwatch.store.scope import TENANT_HOST_PREFIX

_PENDING: Final = "attempts_pending"
_UPTO: Final = "attempts_upto"
_LOGIN_TERM: Final = "(e.action = 'authenticate' OR e.action = 'user.not_found')"
"""Word for word the WHERE term of the partial index ``events_logins`` (sqlite_rollup), so
the rebuild reads the login events through it."""

_INSERT: Final = """INSERT INTO login_attempts
    (seq, time, ip, account, project, outcome, hash, host, kind, ref, agent)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (seq) DO UPDATE SET time = excluded.time, ip = excluded.ip, account = excluded.account,
        project = excluded.project, outcome = excluded.outcome, hash = excluded.hash, host = excluded.host,
        kind = excluded.kind, ref = excluded.ref, agent = excluded.agent"""
"""An attempt's row, replacing any row of the same seq: seq is the table's only unique key, so
the row left is the one ``INSERT OR REPLACE`` leaves. Spelled as an upsert because OR REPLACE
costs more per row even when nothing conflicts: 6.3 -> 5.1 µs a row measured (100k CADF
logins, three indexes), the largest piece of the attempts' write when every record is a login."""
_FOLD: Final = """
    INSERT INTO attempt_minutes (minute, ip, account, project, outcome, n, hashed, hash, first, last)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (minute, ip, account, project, outcome) DO UPDATE SET
        n = n + excluded.n, hashed = hashed + excluded.hashed,
        hash = CASE WHEN excluded.hash = '' OR excluded.hash = hash THEN hash
                    WHEN hash = '' THEN excluded.hash ELSE '*' END,
        first = min(first, excluded.first), last = max(last, excluded.last)"""
_REGROUP: Final = """
    INSERT INTO attempt_minutes (minute, ip, account, project, outcome, n, hashed, hash, first, last)
    SELECT time / 60000000, ip, account, project, outcome, count(*), sum(hash != ''),
           CASE WHEN count(DISTINCT nullif(hash, '')) > 1 THEN '*' ELSE max(hash) END, min(time), max(time)
    FROM login_attempts {where} GROUP BY 1, 2, 3, 4, 5"""


def create(conn: sqlite3.Connection) -> None:
    """The two tables (empty) and the indexes the timelines use."""
    conn.execute("""CREATE TABLE IF NOT EXISTS login_attempts (
        seq INTEGER PRIMARY KEY,      -- the primary copy's events.seq
        time INTEGER NOT NULL,        -- its event time, microseconds since the epoch
        ip TEXT NOT NULL,             -- '(unknown)' when no copy knew it
        account TEXT NOT NULL,        -- user name, else user id, else '(unknown)'
        project TEXT NOT NULL,        -- '' when absent, as below
        outcome TEXT NOT NULL,
        hash TEXT NOT NULL,           -- attrs.partial_password_hash
        host TEXT NOT NULL,
        kind TEXT NOT NULL,
        ref TEXT NOT NULL,
        agent TEXT NOT NULL)""")
    conn.execute("CREATE INDEX IF NOT EXISTS login_attempts_time ON login_attempts (time)")
    conn.execute("CREATE INDEX IF NOT EXISTS login_attempts_ip ON login_attempts (ip, time)")
    conn.execute("CREATE INDEX IF NOT EXISTS login_attempts_account ON login_attempts (account, time)")
    conn.execute("""CREATE TABLE IF NOT EXISTS attempt_minutes (
        minute INTEGER NOT NULL,      -- time // 60 s
        ip TEXT NOT NULL, account TEXT NOT NULL, project TEXT NOT NULL, outcome TEXT NOT NULL,
        n INTEGER NOT NULL,           -- attempts
        hashed INTEGER NOT NULL,      -- of which carried a partial_password_hash
        hash TEXT NOT NULL,           -- that hash when they all carried the same one, '*' if not
        first INTEGER NOT NULL, last INTEGER NOT NULL,
        PRIMARY KEY (minute, ip, account, project, outcome)) WITHOUT ROWID""")


def rebuild(conn: sqlite3.Connection) -> int:
    """Recompute both tables from the stored events (inside the caller's transaction):
    correlated in seq order, everything released at the end. Returns the attempts."""
    conn.execute("DELETE FROM login_attempts")
    conn.execute("DELETE FROM attempt_minutes")
    folder = AttemptFolder()
    upto = int(conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])
    count = 0
    for chunk in _login_events(conn, 0, upto):
        folder.push_stored(chunk)
        count += folder.write_attempts(conn)
        folder.prune()
    folder.finish()
    count += folder.write_attempts(conn)
    _save_state(conn, [], upto)
    return count


def rebuild_derived(db: Path) -> None:
    """Rebuild the attempts of a restored database file: the hash chain verified its events,
    nothing verified these tables, so they are recounted from those events, not trusted.
    (A database older than the tables gets them from its migration when it is opened.)"""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'login_attempts'").fetchone():
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            rebuild(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()


def _in_blocks(conn: sqlite3.Connection) -> bool:
    """Whether the store is in record format 2: its events rows are narrow (no message, attrs,
    ref...), the records are read from its blocks (``sqlite_blocks.block_events``)."""
    row = conn.execute("SELECT value FROM meta WHERE name = ?", (FORMAT_META,)).fetchone()
    return row is not None and str(row[0]) == "2"


def _login_events(conn: sqlite3.Connection, after: int, upto: int, chunk: int = 20_000
                  ) -> Iterator[list[tuple[int, Event]]]:
    """The keystone login events with seq in (after, upto], in seq order, a chunk at a time."""
    blocks = _in_blocks(conn)  # the narrow rows still hold action and source: the same filter
    columns = "e.seq" if blocks else ", ".join(f"e.{c}" for c in EVENT_COLUMNS)
    while after < upto:
        rows = conn.execute(
            f"SELECT {columns}, s.host, s.service FROM events AS e INDEXED BY events_logins "  # noqa: S608
            f"JOIN sources AS s ON s.id = e.source WHERE {_LOGIN_TERM} AND e.seq > ? AND e.seq <= ? "
            "AND s.service = 'keystone' AND substr(s.host, 1, ?) != ? ORDER BY e.seq LIMIT ?",
            (after, upto, len(TENANT_HOST_PREFIX), TENANT_HOST_PREFIX, chunk)).fetchall()
        if not rows:
            return
        if blocks:
            # imported late: sqlite_blocks imports sqlite, which imports this module
            from stackwatch.store.sqlite_blocks import block_events

            yield block_events(conn, [row[0] for row in rows])
        else:
            yield [(row[0], row_event(row[:-2], row[-2], row[-1])) for row in rows]
        after = rows[-1][0]


def _events_by_seq(conn: sqlite3.Connection, seqs: Sequence[int]) -> list[tuple[int, Event]]:
    if _in_blocks(conn):
        from stackwatch.store.sqlite_blocks import block_events

        return block_events(conn, seqs)
    columns = ", ".join(f"e.{c}" for c in EVENT_COLUMNS)
    rows = conn.execute(
        f"SELECT {columns}, s.host, s.service FROM events AS e JOIN sources AS s ON s.id = e.source "  # noqa: S608
        "WHERE e.seq IN (SELECT value FROM json_each(?)) ORDER BY e.seq",
        (orjson.dumps(list(seqs)).decode(),)).fetchall()
    return [(row[0], row_event(row[:-2], row[-2], row[-1])) for row in rows]


def _save_state(conn: sqlite3.Connection, pending: list[int], upto: int) -> None:
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (_PENDING, orjson.dumps(pending).decode()))
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (_UPTO, upto))


class AttemptFolder(AttemptCorrelator):
    """The writer's correlator over the login events it appends (see the module docstring),
    written to this database."""

    tracks_copies = False  # one writer per store: no other writer's copies to claim (attempt_fold)

    # -- writing (inside the writer's transaction) -----------------------------------------

    def write(self, conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
        """Write the released attempts and the state (held seqs, last seq folded); returns the
        attempts written (for ``rollback`` when the transaction fails)."""
        rows = self.released()
        self.write_attempts(conn)
        _save_state(conn, self.held(), self.upto)
        return rows

    def write_attempts(self, conn: sqlite3.Connection) -> int:
        rows = self.released()
        if not rows:
            return 0
        conn.executemany(_INSERT, rows)
        conn.executemany(_FOLD, fold_minutes(rows))
        self.written()  # only now: a failed write keeps them for the next transaction
        return len(rows)

    def catch_up(self, conn: sqlite3.Connection) -> None:
        """On the first append of a writer: take back the attempts a crashed writer held, and
        fold the events appended without the fold (a standby's, now promoted)."""
        meta = dict(conn.execute("SELECT name, value FROM meta WHERE name IN (?, ?)", (_PENDING, _UPTO)))
        upto = int(meta.get(_UPTO) or 0)
        held = orjson.loads(meta.get(_PENDING) or "[]")
        if held:
            self.push_stored(_events_by_seq(conn, held))
        last = int(conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])
        for chunk in _login_events(conn, upto, last):
            self.push_stored(chunk)
        self.seen_upto(last)
        self.ready = True


def forget(conn: sqlite3.Connection, upto_seq: int) -> None:
    """Drop the attempts whose primary is among the rows ``..upto_seq`` (about to be deleted by
    retention) and recount the minutes they were in."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS gone_minutes (minute INTEGER PRIMARY KEY)")
    conn.execute("DELETE FROM temp.gone_minutes")
    conn.execute("INSERT OR IGNORE INTO temp.gone_minutes "
                 "SELECT DISTINCT time / 60000000 FROM login_attempts WHERE seq <= ?", (upto_seq,))
    conn.execute("DELETE FROM login_attempts WHERE seq <= ?", (upto_seq,))
    conn.execute("DELETE FROM attempt_minutes WHERE minute IN (SELECT minute FROM temp.gone_minutes)")
    conn.execute(_REGROUP.format(
        where="WHERE time / 60000000 IN (SELECT minute FROM temp.gone_minutes)"))


def regroup(conn: sqlite3.Connection) -> None:
    """Recompute ``attempt_minutes`` from ``login_attempts`` (the benchmark's grown store)."""
    conn.execute("DELETE FROM attempt_minutes")
    conn.execute(_REGROUP.format(where=""))


# -- reading ---------------------------------------------------------------------------------


def _ranged(scope: AttemptScope) -> tuple[str, list[Any]]:
    """A union of the whole minutes of the range (from ``attempt_minutes``) and its partial
    minutes at both ends (from ``login_attempts``), as rows of ``attempt_minutes``' shape."""
    extra, params = _filters(scope)
    lo, hi = scope.since, scope.until
    terms = attempt_read.ranged_terms(lo, hi, "?")
    if terms is None:  # inside one or two minutes
        return ("SELECT time / 60000000 AS minute, ip, account, project, outcome, 1 AS n, "  # noqa: S608
                "hash != '' AS hashed, hash, time AS first, time AS last FROM login_attempts "
                f"WHERE time >= ? AND time < ?{extra}", [lo, hi, *params])
    minutes, minute_params, edges, edge_params = terms
    minutes.insert(0, "1")
    # every piece of the SQL is a fixed string of this module; values are bound
    sql = ("SELECT minute, ip, account, project, outcome, n, hashed, hash, first, last "  # noqa: S608
           f"FROM attempt_minutes WHERE {' AND '.join(minutes)}{extra}")
    all_params = [*minute_params, *params]
    if edges:
        sql += (" UNION ALL SELECT time / 60000000, ip, account, project, outcome, 1, "  # noqa: S608
                f"hash != '', hash, time, time FROM login_attempts WHERE ({' OR '.join(edges)}){extra}")
        all_params += [*edge_params, *params]
    return sql, all_params


def _filters(scope: AttemptScope) -> tuple[str, list[Any]]:
    extra, params = "", []
    if scope.accounts is not None:
        extra += " AND account IN (SELECT value FROM json_each(?))"
        params.append(orjson.dumps(list(scope.accounts)).decode())
    if scope.project is not None:
        extra += " AND project = ?"
        params.append(scope.project)
    return extra, params


def totals(conn: sqlite3.Connection, scope: AttemptScope) -> list[tuple[Any, ...]]:
    """``(ip, account, outcome, attempts, hashed, hash, first, last)`` per address, account and
    outcome over the scope (``hash``: the one hash of every hashed attempt, ``*`` if several)."""
    sql, params = _ranged(scope)
    return conn.execute(
        f"SELECT ip, account, outcome, sum(n), sum(hashed), "  # noqa: S608 - built from fixed parts
        f"CASE WHEN max(hash = '*') OR count(DISTINCT nullif(hash, '')) > 1 THEN '*' ELSE max(hash) END, "
        f"min(first), max(last) FROM ({sql}) GROUP BY ip, account, outcome", params).fetchall()


def buckets(conn: sqlite3.Connection, scope: AttemptScope, origin: int, step: int
            ) -> list[tuple[int, str, int]]:
    """``(bucket, outcome, attempts)`` per ``step`` seconds (a multiple of 60) from ``origin``
    (µs, a whole minute)."""
    sql, params = _ranged(scope)
    return conn.execute(
        f"SELECT (minute - ?) / ?, outcome, sum(n) FROM ({sql}) GROUP BY 1, 2",  # noqa: S608
        [origin // MINUTE, step // 60, *params]).fetchall()


def distinct_hashes(conn: sqlite3.Connection, scope: AttemptScope, accounts: Sequence[str]) -> dict[str, int]:
    """How many different password hashes the failures of each of ``accounts`` carried."""
    if not accounts:
        return {}
    narrowed = AttemptScope(scope.since, scope.until, tuple(accounts), scope.project)
    extra, params = _filters(narrowed)
    where, bounds = attempt_read.given_terms((("time >= ?", scope.since), ("time < ?", scope.until)))
    where[:0] = ["outcome = 'failure'", "hash != ''"]
    return dict(conn.execute(
        f"SELECT account, count(DISTINCT hash) FROM login_attempts WHERE {' AND '.join(where)}{extra} "  # noqa: S608
        "GROUP BY account", [*bounds, *params]).fetchall())


def timeline(conn: sqlite3.Connection, scope: AttemptScope, *, ip: str | None, account: str | None,
             limit: int) -> list[tuple[Any, ...]]:
    """The attempts of one address and/or account, oldest first: ``login_attempts`` rows."""
    where, params = attempt_read.given_terms((("ip = ?", ip), ("account = ?", account),
                                              ("time >= ?", scope.since), ("time < ?", scope.until)))
    where.insert(0, "1")
    extra, more = _filters(scope)
    return conn.execute(
        "SELECT seq, time, ip, account, project, outcome, hash, host, kind, ref, agent FROM login_attempts "  # noqa: S608
        f"WHERE {' AND '.join(where)}{extra} ORDER BY time, seq LIMIT ?", [*params, *more, limit]).fetchall()


class AttemptReader(attempt_read.AttemptReader[sqlite3.Connection]):
    """The reading functions above, run through ``read`` (the store's: its lock and reader)."""

    def __init__(self, read: attempt_read.Read[sqlite3.Connection]) -> None:
        super().__init__(read, totals=totals, buckets=buckets, distinct_hashes=distinct_hashes,
                         timeline=timeline)


def check(conn: sqlite3.Connection) -> list[str]:
    """Differences between the stored attempts and a recount from the events (a rebuild in a
    temporary copy of the tables); empty when they agree."""
    stored = conn.execute("SELECT seq, time, ip, account, project, outcome, hash FROM login_attempts "
                          "ORDER BY seq").fetchall()
    minutes = conn.execute("SELECT * FROM attempt_minutes ORDER BY 1, 2, 3, 4, 5").fetchall()
    conn.execute("SAVEPOINT attempts_check")
    try:
        rebuild(conn)
        fresh = conn.execute("SELECT seq, time, ip, account, project, outcome, hash FROM login_attempts "
                             "ORDER BY seq").fetchall()
        fresh_minutes = conn.execute("SELECT * FROM attempt_minutes ORDER BY 1, 2, 3, 4, 5").fetchall()
    finally:
        conn.execute("ROLLBACK TO attempts_check")
        conn.execute("RELEASE attempts_check")
    problems = []
    if stored != fresh:
        problems.append(f"login_attempts: {len(stored)} stored, {len(fresh)} recounted, "
                        f"{len(set(stored) ^ set(fresh))} differ")
    if minutes != fresh_minutes:
        problems.append(f"attempt_minutes: {len(minutes)} rows stored, {len(fresh_minutes)} recounted")
    return problems
