"""The keystone login attempts on the shared store, correlated at ingest by each writer (the
embedded store's design: ``sqlite_attempts``' docstring; the correlation: ``attempt_fold``).

Each writer correlates the login events it appends, in its own seq order, and writes in the
transaction that commits them:

* ``login_attempts``: one row per attempt, keyed by the event id of its primary copy (so the
  rows of different writers never collide), with the writer's number;
* ``attempt_minutes``: per writer, minute, address, account, project and outcome: a writer
  only ever updates its own rows (writers never wait on one another); reads sum over all;
* ``attempt_state``: per writer, the seqs the correlator holds (taken back by a writer that
  crashed) and the last seq folded (events appended before this table existed are folded by
  their writer at its next append).

* ``attempt_refs``: (host, ref) of every stored copy of every attempt written (the ref with the
  copy's event time, ``ref@micros``: ``attempt_fold.copy_key``), and the attempt it names. A
  login is its copies: when a writer's attempt has a copy some attempt already claimed
  (another writer stored a copy of the same login -- the same notification consumed by two
  analyzers, the same log read by two -- or this writer stored the same record twice),
  it is that login again and is not written, so the sums count it once whatever number of
  writers stored a copy. The first writer to commit the login keeps it (with the fields its
  copies knew). Copies are matched by their (host, ref, time): a writer that stored only another
  copy of the login (a different line of a different file) cannot be matched, and counts it.
  The claims are inserted in one sorted statement, so two writers committing the same login
  at once wait on one another (the unique index) rather than deadlock, and the second skips it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import orjson
import psycopg

from stackwatch.core.event import Event
from stackwatch.store import attempt_read
from stackwatch.store.attempt_fold import (
    FOLDED_ACTIONS,
    MINUTE,
    AttemptCorrelator,
    AttemptRow,
    AttemptScope,
    fold_minutes,
)
from stackwatch.store.postgres.ids import event_id
from stackwatch.store.scope import TENANT_HOST_PREFIX

TABLES: Final = (
    """CREATE TABLE IF NOT EXISTS login_attempts (
        id bigint PRIMARY KEY,             -- the primary copy's event id
        writer integer NOT NULL,
        time bigint NOT NULL, ip text COLLATE "C" NOT NULL, account text COLLATE "C" NOT NULL,
        project text COLLATE "C" NOT NULL, outcome text COLLATE "C" NOT NULL, hash text NOT NULL,
        host text NOT NULL, kind text NOT NULL, ref text NOT NULL, agent text NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS login_attempts_time ON login_attempts (time)",
    "CREATE INDEX IF NOT EXISTS login_attempts_ip ON login_attempts (ip, time)",
    "CREATE INDEX IF NOT EXISTS login_attempts_account ON login_attempts (account, time)",
    """CREATE TABLE IF NOT EXISTS attempt_minutes (
        writer integer NOT NULL, minute bigint NOT NULL,
        ip text COLLATE "C" NOT NULL, account text COLLATE "C" NOT NULL,
        project text COLLATE "C" NOT NULL, outcome text COLLATE "C" NOT NULL,
        n bigint NOT NULL, hashed bigint NOT NULL, hash text NOT NULL,
        first bigint NOT NULL, last bigint NOT NULL,
        PRIMARY KEY (writer, minute, ip, account, project, outcome))""",
    "CREATE INDEX IF NOT EXISTS attempt_minutes_minute ON attempt_minutes (minute)",
    """CREATE TABLE IF NOT EXISTS attempt_refs (
        host text COLLATE "C" NOT NULL, ref text COLLATE "C" NOT NULL,
        id bigint NOT NULL,                -- the attempt (its primary copy's event id) claiming it
        PRIMARY KEY (host, ref))""",
    "CREATE INDEX IF NOT EXISTS attempt_refs_id ON attempt_refs (id)",
    """CREATE TABLE IF NOT EXISTS attempt_state (
        writer integer PRIMARY KEY, upto bigint NOT NULL, pending text NOT NULL)""",
)

_INSERT: Final = (
    b"INSERT INTO login_attempts (id, writer, time, ip, account, project, outcome, hash, host, kind, ref, "
    b"agent) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING")
"""Not COPY: two stored events with one ref (an input that repeats refs) can make two attempts
of one primary seq; kept once, as the embedded store's INSERT OR REPLACE does."""
_FOLD: Final = (
    b"INSERT INTO attempt_minutes AS t VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    b"ON CONFLICT (writer, minute, ip, account, project, outcome) DO UPDATE SET "
    b"n = t.n + EXCLUDED.n, hashed = t.hashed + EXCLUDED.hashed, "
    b"hash = CASE WHEN EXCLUDED.hash = '' OR EXCLUDED.hash = t.hash THEN t.hash "
    b"WHEN t.hash = '' THEN EXCLUDED.hash ELSE '*' END, "
    b"first = least(t.first, EXCLUDED.first), last = greatest(t.last, EXCLUDED.last)")
_STATE: Final = (b"INSERT INTO attempt_state VALUES (%s, %s, %s) ON CONFLICT (writer) DO UPDATE "
                 b"SET upto = EXCLUDED.upto, pending = EXCLUDED.pending")
CHUNK: Final = 20_000

ReadEvents = Callable[[int, list[int]], list[tuple[int, Event]]]
"""(writer, its seqs) -> (event id, event) in seq order: the store's block reader."""


def _clean(value: Any) -> Any:
    return value.replace("\x00", "\ufffd") if isinstance(value, str) and "\x00" in value else value


class PGAttemptFolder(AttemptCorrelator):
    """One writer's correlator, written to the shared store."""

    def __init__(self, writer: int) -> None:
        super().__init__()
        self.writer = writer

    def write(self, conn: psycopg.Connection) -> list[AttemptRow]:
        """In the writer's transaction: the released attempts, the minutes they fold into and the
        writer's state; returns the attempts written (``rollback`` them if the commit fails)."""
        rows = self.released()
        writer = self.writer
        if rows:
            new = self._claim(conn, rows)
            with conn.cursor() as cur:
                if new:
                    cur.executemany(_INSERT, [(event_id(writer, r[0]), writer, *(_clean(v) for v in r[1:]))
                                              for r in new])
                minutes = sorted(fold_minutes(new))  # one order: no two transactions lock in turn
                cur.executemany(_FOLD, [(writer, *(_clean(v) for v in m)) for m in minutes])
            self.written()
        conn.execute(_STATE, (writer, self.upto, orjson.dumps(self.held()).decode()))
        return rows

    def _claim(self, conn: psycopg.Connection, rows: list[AttemptRow]) -> list[AttemptRow]:
        """Claim the copies of ``rows`` in ``attempt_refs``; the rows that are new logins (none
        of their copies claimed before, in the store or earlier in ``rows``)."""
        owner: dict[tuple[str, str], int] = {}
        keys_of: list[tuple[int, list[tuple[str, str]]]] = []
        for row in rows:
            attempt = event_id(self.writer, row[0])
            keys = [(_clean(h), _clean(r)) for h, r in self.copies(row)]
            keys_of.append((attempt, keys))
            for key in keys:
                owner.setdefault(key, attempt)
        ordered = sorted(owner.items())  # one order: two writers wait, never deadlock
        claimed = {(str(h), str(r)) for h, r in conn.execute(
            b"INSERT INTO attempt_refs (host, ref, id) SELECT * FROM unnest(%s::text[], %s::text[], "
            b"%s::bigint[]) ON CONFLICT (host, ref) DO NOTHING RETURNING host, ref",
            ([k[0] for k, _ in ordered], [k[1] for k, _ in ordered], [a for _, a in ordered]))}
        return [row for row, (attempt, keys) in zip(rows, keys_of, strict=True)
                if all(key in claimed and owner[key] == attempt for key in keys)]

    def drop_committed(self, conn: psycopg.Connection) -> None:
        """After a lost connection: the attempts kept to write again that are in the store (the
        commit went through, its answer was lost) are not written twice (their minutes were
        summed in that same transaction)."""
        rows = self.released()
        if not rows:
            return
        ids = [event_id(self.writer, r[0]) for r in rows]
        found = conn.execute(b"SELECT id FROM login_attempts WHERE id = ANY(%s) UNION "
                             b"SELECT id FROM attempt_refs WHERE id = ANY(%s)", (ids, ids))
        stored = {int(i) for (i,) in found}
        if stored:
            self.written()
            self.rollback([r for r, i in zip(rows, ids, strict=True) if i not in stored])

    def catch_up(self, conn: psycopg.Connection, read: ReadEvents) -> None:
        """At the writer's first append: take back what it held when it stopped, and fold its
        events appended without the fold (before this table existed)."""
        row = conn.execute(b"SELECT upto, pending FROM attempt_state WHERE writer = %s",
                           (self.writer,)).fetchone()
        upto, held = (int(row[0]), orjson.loads(row[1])) if row else (0, [])
        if held:
            self.push_stored(_local(read(self.writer, sorted(held))))
        last_row = conn.execute(b"SELECT coalesce(max(seq), 0) FROM events WHERE writer = %s",
                                (self.writer,)).fetchone()
        last = int(last_row[0]) if last_row else 0
        while upto < last:
            seqs = [int(s) for (s,) in conn.execute(
                b"SELECT e.seq FROM events AS e JOIN sources AS s ON s.id = e.source "
                b"WHERE e.writer = %s AND e.seq > %s AND e.seq <= %s AND e.action = ANY(%s) "
                b"AND s.service = 'keystone' AND left(s.host, %s) <> %s ORDER BY e.seq LIMIT %s",
                (self.writer, upto, last, list(FOLDED_ACTIONS), len(TENANT_HOST_PREFIX),
                 TENANT_HOST_PREFIX, CHUNK))]
            if not seqs:
                break
            self.push_stored(_local(read(self.writer, seqs)))
            upto = seqs[-1]
        self.seen_upto(last)
        self.ready = True


def _local(found: list[tuple[int, Event]]) -> list[tuple[int, Event]]:
    from stackwatch.store.postgres.ids import split

    return [(split(i)[1], e) for i, e in found]


# -- reading (every writer's rows) -------------------------------------------------------------


def _filters(scope: AttemptScope) -> tuple[str, list[Any]]:
    extra = ""
    params: list[Any] = []
    if scope.accounts is not None:
        extra += " AND account = ANY(%s)"
        params.append(list(scope.accounts))
    if scope.project is not None:
        extra += " AND project = %s"
        params.append(scope.project)
    return extra, params


def _ranged(scope: AttemptScope) -> tuple[str, list[Any]]:
    """The range's whole minutes (``attempt_minutes``, every writer) and its partial minutes at
    both ends (``login_attempts``), as rows of one shape (``sqlite_attempts._ranged``)."""
    extra, params = _filters(scope)
    lo, hi = scope.since, scope.until
    single = ("SELECT time / 60000000 AS minute, ip, account, project, outcome, 1::bigint AS n, "
              "(hash <> '')::int::bigint AS hashed, hash, time AS first, time AS last FROM login_attempts ")
    terms = attempt_read.ranged_terms(lo, hi, "%s")
    if terms is None:
        return single + f"WHERE time >= %s AND time < %s{extra}", [lo, hi, *params]
    minutes, minute_params, edges, edge_params = terms
    minutes.insert(0, "true")
    sql = ("SELECT minute, ip, account, project, outcome, n, hashed, hash, first, last "  # noqa: S608
           f"FROM attempt_minutes WHERE {' AND '.join(minutes)}{extra}")
    all_params: list[Any] = [*minute_params, *params]
    if edges:
        sql += f" UNION ALL {single}WHERE ({' OR '.join(edges)}){extra}"
        all_params += [*edge_params, *params]
    return sql, all_params


def totals(conn: psycopg.Connection, scope: AttemptScope) -> list[tuple[Any, ...]]:
    sql, params = _ranged(scope)
    return [tuple(r) for r in conn.execute(
        "SELECT ip, account, outcome, sum(n)::bigint, sum(hashed)::bigint, "  # noqa: S608 - fixed parts
        "CASE WHEN bool_or(hash = '*') OR count(DISTINCT nullif(hash, '')) > 1 THEN '*' "
        "ELSE coalesce(max(hash), '') END, min(first), max(last) "
        f"FROM ({sql}) AS r GROUP BY ip, account, outcome".encode(), params)]


def buckets(conn: psycopg.Connection, scope: AttemptScope, origin: int, step: int
            ) -> list[tuple[int, str, int]]:
    sql, params = _ranged(scope)
    return [(int(b), str(o), int(n)) for b, o, n in conn.execute(
        f"SELECT (minute - %s) / %s, outcome, sum(n)::bigint FROM ({sql}) AS r GROUP BY 1, 2".encode(),  # noqa: S608
        [origin // MINUTE, step // 60, *params])]


def distinct_hashes(conn: psycopg.Connection, scope: AttemptScope, accounts: Sequence[str]) -> dict[str, int]:
    if not accounts:
        return {}
    extra, params = _filters(AttemptScope(scope.since, scope.until, tuple(accounts), scope.project))
    where, bounds = attempt_read.given_terms((("time >= %s", scope.since), ("time < %s", scope.until)))
    where[:0] = ["outcome = 'failure'", "hash <> ''"]
    return {str(a): int(n) for a, n in conn.execute(
        f"SELECT account, count(DISTINCT hash) FROM login_attempts WHERE {' AND '.join(where)}{extra} "  # noqa: S608
        "GROUP BY account".encode(), [*bounds, *params])}


def timeline(conn: psycopg.Connection, scope: AttemptScope, *, ip: str | None, account: str | None,
             limit: int) -> list[tuple[Any, ...]]:
    where, params = attempt_read.given_terms((("ip = %s", ip), ("account = %s", account),
                                              ("time >= %s", scope.since), ("time < %s", scope.until)))
    where.insert(0, "true")
    extra, more = _filters(scope)
    return [tuple(r) for r in conn.execute(
        "SELECT id, time, ip, account, project, outcome, hash, host, kind, ref, agent FROM login_attempts "  # noqa: S608
        f"WHERE {' AND '.join(where)}{extra} ORDER BY time, id LIMIT %s".encode(), [*params, *more, limit])]


class PGAttemptReader(attempt_read.AttemptReader[psycopg.Connection]):
    """The reading functions above, run through ``read`` (the store's: its lock and connection)."""

    def __init__(self, read: attempt_read.Read[psycopg.Connection]) -> None:
        super().__init__(read, totals=totals, buckets=buckets, distinct_hashes=distinct_hashes,
                         timeline=timeline)
