"""Commit positions: what a live tail follows across writers.

Event ids (``writer << 40 | seq``) grow within a writer, not across writers: a tail that polls
"ids above the newest seen" skips what a lower-numbered writer commits after a higher one.
So every commit that stores events also takes the next **tick** of one PostgreSQL sequence,
as its last statement and under a transaction-scoped advisory lock: the lock is held until the
commit is visible, so ticks become visible in their order (when tick n is seen, every tick
below it is committed or was rolled back, never still to come). ``commits`` maps a tick to
the writer's seqs it stored; a tail's cursor is a tick (``size``: the newest one), and "after
tick t" is, per writer, its events from the first seq of its first commit after t (a
writer's commits take increasing ticks). The lock serialises only that last statement and
the commit itself, not the writers' work.
"""

from __future__ import annotations

from typing import Final

import psycopg

from stackwatch.store.postgres.ids import SEQ_MASK, WRITER_SHIFT

TABLES: Final = (
    "CREATE SEQUENCE IF NOT EXISTS commit_ticks",
    """CREATE TABLE IF NOT EXISTS commits (
        tick bigint PRIMARY KEY, writer integer NOT NULL,
        first_seq bigint NOT NULL, last_seq bigint NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS commits_writer ON commits (writer, first_seq)",
)
_LOCK: Final = 0x5357_5449  # the advisory lock held from taking a tick to the commit ('SWTI')


def stamp(conn: psycopg.Connection, writer: int, first_seq: int, last_seq: int) -> None:
    """The last statement of a writer's transaction that stored ``first_seq..last_seq``."""
    conn.execute(b"SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
    conn.execute(b"INSERT INTO commits VALUES (nextval('commit_ticks'), %s, %s, %s)",
                 (writer, first_seq, last_seq))


def newest(conn: psycopg.Connection) -> int:
    """The newest committed tick (0: none)."""
    row = conn.execute(b"SELECT coalesce(max(tick), 0) FROM commits").fetchone()
    return int(row[0]) if row else 0


def after(conn: psycopg.Connection, tick: int) -> list[tuple[int, int]]:
    """(writer, first seq) of the events committed after ``tick``, per writer."""
    return [(int(w), int(s)) for w, s in conn.execute(
        b"SELECT writer, min(first_seq) FROM commits WHERE tick > %s GROUP BY writer ORDER BY writer",
        (tick,))]


def tick_of(conn: psycopg.Connection, ids: list[int]) -> int | None:
    """The newest tick among the commits that stored the events ``ids`` (None: none known)."""
    if not ids:
        return None
    row = conn.execute(
        b"SELECT max(t.tick) FROM unnest(%s::bigint[]) AS i, LATERAL (SELECT c.tick FROM commits AS c "
        b"WHERE c.writer = (i >> %s)::integer AND c.first_seq <= (i & %s) "
        b"ORDER BY c.first_seq DESC LIMIT 1) AS t", (ids, WRITER_SHIFT, SEQ_MASK)).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def condition(ranges: list[tuple[int, int]]) -> tuple[str, list[int]]:
    """A WHERE term over ``events AS e``: the events of ``after``'s ranges (id ranges: the
    primary key's index)."""
    if not ranges:
        return "false", []
    terms, params = [], []
    for writer, first in ranges:
        terms.append("(e.id >= %s AND e.id < %s)")
        params += [writer << WRITER_SHIFT | first, (writer + 1) << WRITER_SHIFT]
    return "(" + " OR ".join(terms) + ")", params
