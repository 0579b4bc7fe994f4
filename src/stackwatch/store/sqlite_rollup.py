"""What keeps the dashboard's pages fast on a store of millions of events.

* ``event_counts``: events per (minute, source), folded in by the writer in the same
  transaction as the rows (one GROUP BY over the batch just written, in C, like the
  per-source statistics), so the overview and sources charts sum a few thousand rollup rows
  instead of counting millions of events. Keyed by minute first: rows arrive in time order,
  so the fold appends at the end of the B-tree, and a time range is one range scan.
* Partial indexes on (action, time) and (kind, time) over the two small subsets the pages
  read: login events (the keystone page) and audit events (the activity page). Only matching rows enter them,
  so the append path pays one cheap condition per row, and a row index insert only for the
  few rows that match. SQLite uses a partial index only when the query repeats its WHERE
  term word for word: ``subset_terms`` gives a search the term to repeat.

Derived data, rebuilt by the migration that creates it; retention subtracts what it expires.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any, Final

MINUTE: Final = 60_000_000  # microseconds
LOGIN_ACTIONS: Final = ("authenticate", "user.not_found")
AUDIT_KINDS: Final = ("cadf", "notification", "stackwatch_audit")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"  # fixed constants above


SUBSETS: Final = {"action": LOGIN_ACTIONS, "kind": AUDIT_KINDS}
"""column -> the values a partial index covers."""
SUBSET_INDEXES: Final = {"action": "events_logins", "kind": "events_audit"}

_FOLD: Final = """
    INSERT INTO event_counts (minute, source, n)
    SELECT time / 60000000, source, count(*) FROM events WHERE seq BETWEEN ? AND ? GROUP BY 1, 2
    ON CONFLICT (minute, source) DO UPDATE SET n = n + excluded.n"""
_FORGET: Final = """
    WITH gone AS (SELECT time / 60000000 AS minute, source, count(*) AS n FROM events
                  WHERE seq <= ? GROUP BY 1, 2)
    UPDATE event_counts SET n = event_counts.n - gone.n
    FROM gone WHERE event_counts.minute = gone.minute AND event_counts.source = gone.source"""


def create_rollups(conn: sqlite3.Connection) -> None:
    """Create the rollup table (filled from the events already stored) and the partial indexes
    (re-runnable: the counts are recomputed)."""
    conn.execute("""CREATE TABLE IF NOT EXISTS event_counts (
        minute INTEGER NOT NULL,      -- event time // 60 s
        source INTEGER NOT NULL,      -- sources.id
        n INTEGER NOT NULL,
        PRIMARY KEY (minute, source)) WITHOUT ROWID""")
    conn.execute("INSERT OR REPLACE INTO event_counts (minute, source, n) "
                 "SELECT time / 60000000, source, count(*) FROM events GROUP BY 1, 2")
    for name, column in (("events_logins", "action"), ("events_audit", "kind")):
        subset = _in(column, SUBSETS[column])
        conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON events ({column}, time) WHERE {subset}")


def fold(conn: sqlite3.Connection, first_seq: int, last_seq: int) -> None:
    """Count the rows ``first_seq..last_seq`` (just written, same transaction) into the rollup."""
    conn.execute(_FOLD, (first_seq, last_seq))


def forget(conn: sqlite3.Connection, upto_seq: int) -> None:
    """Subtract the rows ``..upto_seq`` (about to be deleted by retention) from the rollup."""
    conn.execute(_FORGET, (upto_seq,))
    conn.execute("DELETE FROM event_counts WHERE n <= 0")


def subset_index(filters: dict[str, str | None], alias: str = "e") -> tuple[str, str] | None:
    """For a search with these ``column: value`` equality filters: a partial index that holds
    every row it can match, and the index's WHERE term the query must repeat to use it (and
    ``INDEXED BY`` it: left to itself the planner prefers (source, time) and sorts every row of
    the source to find the newest few); None when no filter falls in an indexed subset."""
    for column, values in SUBSETS.items():
        if filters.get(column) in values:
            return SUBSET_INDEXES[column], _in(f"{alias}.{column}", values)
    return None


def histogram(conn: sqlite3.Connection, start: datetime, until: datetime, step: int) -> list[tuple[Any, ...]]:
    """``(host, service, bucket, count)`` of events in [start, until) per ``step`` seconds from
    ``start``, summed from the rollup. Whole minutes: ``start`` and ``step`` must be multiples
    of 60 s, and the minute holding ``until`` counts whole (pages pass the newest event + 1 s)."""
    first = int(start.timestamp() * 1_000_000)
    if first % MINUTE or step % 60:
        raise ValueError("the rollup counts whole minutes: start and step must be multiples of 60 s")
    end = int(until.timestamp() * 1_000_000)
    return conn.execute(
        "SELECT s.host, s.service, c.b, c.n FROM (SELECT source, (minute - ?) / ? AS b, sum(n) AS n "
        "FROM event_counts WHERE minute >= ? AND minute <= ? GROUP BY source, b) AS c "
        "JOIN sources AS s ON s.id = c.source",
        (first // MINUTE, step // 60, first // MINUTE, (end - 1) // MINUTE),
    ).fetchall()
