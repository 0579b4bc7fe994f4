"""Event searches as SQL for the embedded store: an ``EventQuery`` (its plain filters and its
parsed search-language tree) becomes one WHERE clause with ``?`` parameters. Values are
only ever parameters; the SQL text is built from the fixed fragments below.

Where each field is looked up:

- host, service: the small ``sources`` table (an id list, then the (source, time) index);
- source IP, user (name or id) and request id: the search index's ``event_keys``
  (``idx``, filled after the fact; see sqlite_index), by exact value or value range, packed
  as the index packs them (index_keys);
- free text: the full-text index ``events_fts``;
- kind, severity, action, outcome, project, target: columns of ``events``, checked on the
  rows the other conditions (and the time index) select.

A prefix ``adm*`` is the value range ``['adm', 'adm' + U+10FFFF)``, which an index can seek.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from stackwatch.search.query import And, Everything, Match, Node, Not, Or, Text, TimeRange
from stackwatch.store import index_keys, search_terms
from stackwatch.store.base import EventQuery
from stackwatch.store.rows import to_micros
from stackwatch.store.sqlite_index import KEY_GENS, fts_query
from stackwatch.store.sqlite_schema import FIELD_IP, FIELD_REQUEST, FIELD_USER_ID, FIELD_USER_NAME
from stackwatch.store.sqlite_scope import event_condition

T = TypeVar("T")

_EVENT_COLUMNS: Final = {"kind": ("kind",), "severity": ("severity",), "action": ("action",),
                         "outcome": ("outcome",), "project": ("init_project",),
                         "target": ("target_name", "target_id")}
_KEY_FIELDS: Final = {"source_ip": (FIELD_IP,), "user": (FIELD_USER_NAME, FIELD_USER_ID),
                      "request_id": (FIELD_REQUEST,)}
_KEY_COLUMNS: Final = {"source_ip": ("init_ip",), "user": ("init_name", "init_id"),
                       "request_id": ("request_id",)}


@dataclass(slots=True)
class Where:
    """A WHERE clause in the making: conditions (ANDed), their parameters, and whether any
    needs the search index (which must be caught up first)."""

    conditions: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    uses_index: bool = False
    held: Mapping[str, str] = field(default_factory=dict)
    """Full-text queries already looked up, each to the TEMP table that holds its rowids."""
    texts: list[str] = field(default_factory=list)
    """The full-text queries the clause needs, in order."""
    reads_rows: bool = False
    """Whether a condition reads the events' rows or the search index (not only the time and
    (source, time) indexes, which count fast enough on their own)."""
    held_hits: bool = False
    """The hits are the TEMP table ``hit_set`` (see ``hold_hits``); the conditions are spent."""
    estimated: bool = False
    """``hit_set`` holds a sample of the hits, each with the weight of the hits it stands for
    (see ``sample_hits``): counts and histograms sum the weights."""

    def sql(self) -> str:
        return " WHERE " + " AND ".join(self.conditions) if self.conditions else ""

    def key(self) -> tuple[str, tuple[Any, ...]]:
        return self.sql(), tuple(self.params)

    def source(self) -> str:
        """What counts and time aggregates read: the events, or the held (seq, time) hits."""
        return " FROM temp.hit_set AS e" if self.held_hits else _EVENTS

    def page(self, order: str, limit: int, offset: int) -> tuple[str, list[Any], int]:
        """WHERE clause, parameters and offset that select the rows of one page of hits in
        ``order`` (time, then seq): on held hits, the page's seqs are picked from the hit
        set, so only they are read from the events."""
        if not self.held_hits:
            return self.sql(), self.params, offset
        assert order in ("ASC", "DESC")
        return (f" WHERE e.seq IN (SELECT seq FROM temp.hit_set ORDER BY time {order}, seq {order} "  # noqa: S608
                "LIMIT ? OFFSET ?)", [limit, offset], 0)


def where_of(query: EventQuery, now: datetime | None = None, held: Mapping[str, str] | None = None) -> Where:
    """The WHERE clause of ``query``; relative times in its tree resolve against ``now``
    (default: the wall clock). A full-text query in ``held`` reads its TEMP table of rowids
    (see ``hold_texts``) instead of running the MATCH again."""
    where = Where(held=held or {})
    if query.scope is not None:  # a tenant's view: the one place event reads are scoped
        condition, params = event_condition(query.scope)
        where.conditions.append(condition)
        where.params.extend(params)
        where.reads_rows = True
    if query.since is not None:
        where.conditions.append("e.time >= ?")
        where.params.append(to_micros(query.since))
    if query.until is not None:
        where.conditions.append("e.time < ?")
        where.params.append(to_micros(query.until))
    if query.after_seq is not None:
        where.conditions.append("e.seq > ?")
        where.params.append(query.after_seq)
    for attribute, name in search_terms.FILTERS:
        value = getattr(query, attribute)
        if value is not None:
            where.conditions.append(_match(Match(name, value), where))
    if query.text is not None:
        where.conditions.append(_text_condition(fts_query(query.text) or "", where))
    if query.match is not None and not isinstance(query.match, Everything):
        where.conditions.append(_compile(query.match, where, now or datetime.now(UTC)))
    return where


def _compile(node: Node, where: Where, now: datetime) -> str:
    if isinstance(node, Everything):
        return "1"
    if isinstance(node, Text):
        return _text_condition(_phrase(node), where)
    if isinstance(node, Match):
        return _match(node, where)
    if isinstance(node, TimeRange):
        return _time(node, where, now)
    if isinstance(node, Not):
        return f"NOT ({_compile(node.item, where, now)})"
    joiner = " AND " if isinstance(node, And) else " OR "
    assert isinstance(node, And | Or)
    items = node.items
    parts = []
    texts = [item for item in items if isinstance(item, Text)] if isinstance(node, And) else []
    if len(texts) > 1:  # words ANDed together: one full-text lookup of them all, not one each
        parts.append(_text_condition(" AND ".join(_phrase(text) for text in texts), where))
        items = tuple(item for item in items if not isinstance(item, Text))
    parts += [_compile(item, where, now) for item in items]
    return "(" + joiner.join(f"({part})" for part in parts) + ")"


def _phrase(node: Text) -> str:
    return '"' + node.value.replace('"', '""') + '"' + ("*" if node.prefix else "")


def _text_condition(fts: str, where: Where) -> str:
    if not fts:
        return "0"
    where.uses_index = where.reads_rows = True
    where.texts.append(fts)
    table = where.held.get(fts)
    if table is not None:
        return f"e.seq IN (SELECT seq FROM temp.{table})"  # noqa: S608 - a name hold_texts made
    where.params.append(fts)
    return "e.seq IN (SELECT rowid FROM idx.events_fts WHERE events_fts MATCH ?)"


HELD_PREFIX: Final = "text_hits_"


def hold_texts(conn: sqlite3.Connection, texts: list[str]) -> dict[str, str]:
    """Run each full-text query once into a TEMP table of matching rowids (a page's hits,
    count, histogram and field values then share it rather than each matching again);
    returns each query's table. ``release_texts`` drops them."""
    held: dict[str, str] = {}
    try:
        for number, fts in enumerate(dict.fromkeys(texts)):
            table = f"{HELD_PREFIX}{number}"
            conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
            conn.execute(f"CREATE TEMP TABLE {table} (seq INTEGER PRIMARY KEY)")
            held[fts] = table
            conn.execute(f"INSERT INTO temp.{table} "  # noqa: S608 - a fixed name
                         "SELECT rowid FROM idx.events_fts WHERE events_fts MATCH ?", (fts,))
    except BaseException:
        release_texts(conn, held)
        raise
    return held


def release_texts(conn: sqlite3.Connection, held: Mapping[str, str]) -> None:
    for table in held.values():
        conn.execute(f"DROP TABLE IF EXISTS temp.{table}")


HIT_SET_MAX: Final = 2_000_000
"""Most hits ``hold_hits`` keeps (16 bytes and a B-tree entry each); past it, each read
matches on its own."""


EXACT_STEPS: Final = 2_000_000
"""SQLite VM steps an exact ``hold_hits`` may take when a sample may stand in (about 0.15-0.25
CPU-s here; the NOT query of README's search rows takes 1.3M steps a million stored events)."""
SAMPLE_WINDOWS: Final = 1000
SAMPLE_ROWS: Final = 200_000
"""A sample reads SAMPLE_ROWS events in SAMPLE_WINDOWS runs of consecutive seqs spread
evenly over the searched seqs (about 0.05 s): at 10% hits, about 1% error on the count."""


class _Steps:
    """A progress handler that stops a statement after ``limit`` VM steps (it then raises
    OperationalError "interrupted"); ``spent`` tells that interruption from other errors."""

    EVERY: Final = 1000

    def __init__(self, limit: int) -> None:
        self.left = limit // self.EVERY
        self.spent = False

    def __call__(self) -> int:
        self.left -= 1
        self.spent = self.left < 0
        return int(self.spent)


def within_steps(conn: sqlite3.Connection, steps: int, read: Callable[[], T]) -> T | None:
    """``read()``, or None when its statement takes more than ``steps`` VM steps."""
    budget = _Steps(steps)
    conn.set_progress_handler(budget, _Steps.EVERY)
    try:
        return read()
    except sqlite3.OperationalError:
        if budget.spent:
            return None
        raise
    finally:
        conn.set_progress_handler(None, 0)


def unindexed(where: Where) -> str:
    """``where``'s clause with its seq lookups (a key's or a text's hits) as membership tests
    only, so SQLite drives the read by the range or index the statement names instead."""
    return where.sql().replace("e.seq IN (", "+e.seq IN (")


def hold_hits(conn: sqlite3.Connection, where: Where, *, steps: int | None = None) -> Where | None:
    """Find the hits of ``where`` once, into the TEMP table ``hit_set`` (seq, time, weight 1):
    counting, bounding and spreading them over time then read that table, not the events
    again. Returns the clause that reads them (``Where.held_hits``), None (nothing held) when
    there are more than HIT_SET_MAX or finding them takes more than ``steps`` (then
    ``sample_hits`` can stand in)."""
    most = HIT_SET_MAX
    release_hits(conn)
    conn.execute("CREATE TEMP TABLE hit_set (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, "
                 "weight REAL NOT NULL DEFAULT 1)")
    budget = _Steps(steps) if steps is not None else None
    if budget is not None:
        conn.set_progress_handler(budget, _Steps.EVERY)
    try:
        kept = conn.execute(f"INSERT INTO temp.hit_set (seq, time) SELECT e.seq, e.time{_EVENTS}"
                            f"{where.sql()} LIMIT ?", (*where.params, most + 1)).rowcount
    except sqlite3.OperationalError:
        if budget is None or not budget.spent:
            raise
        kept = most + 1
    finally:
        if budget is not None:
            conn.set_progress_handler(None, 0)
    if kept > most:
        release_hits(conn)
        return None
    return Where(uses_index=where.uses_index, held=where.held, texts=where.texts, held_hits=True)


def sample_hits(conn: sqlite3.Connection, where: Where, first_seq: int, last_seq: int) -> Where:
    """A sample of the hits of ``where`` among seqs ``first_seq``..``last_seq`` into ``hit_set``:
    the hits among SAMPLE_WINDOWS runs of consecutive events spread evenly over them, each
    weighted by the events it stands for (stride / run length). Counts and histograms over it
    are estimates (``Where.estimated``); seqs follow arrival, so the runs spread over time too.
    A run is read by its seq range alone: ``NOT INDEXED`` and ``+e.seq`` keep SQLite from
    driving the read by another index (a source's rows, a key's seqs) once per run."""
    release_hits(conn)
    conn.execute("CREATE TEMP TABLE hit_set (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, "
                 "weight REAL NOT NULL DEFAULT 1)")
    span = max(1, last_seq - first_seq + 1)
    stride = span / SAMPLE_WINDOWS
    width = max(1, min(int(stride), SAMPLE_ROWS // SAMPLE_WINDOWS))
    starts = sorted({first_seq + int(i * stride) for i in range(SAMPLE_WINDOWS)})
    conn.execute("DROP TABLE IF EXISTS temp.sample_runs")
    conn.execute("CREATE TEMP TABLE sample_runs (low INTEGER NOT NULL, high INTEGER NOT NULL)")
    try:
        conn.executemany("INSERT INTO temp.sample_runs VALUES (?, ?)",
                         [(start, min(start + width - 1, last_seq)) for start in starts])
        conditions = unindexed(where)  # see the docstring
        conn.execute("INSERT INTO temp.hit_set SELECT e.seq, e.time, ? FROM temp.sample_runs AS w "  # noqa: S608
                     f"CROSS JOIN events AS e NOT INDEXED{conditions or ' WHERE 1'} "
                     "AND e.seq BETWEEN w.low AND w.high", (span / (len(starts) * width), *where.params))
    finally:
        conn.execute("DROP TABLE temp.sample_runs")
    return Where(uses_index=where.uses_index, held=where.held, texts=where.texts, held_hits=True,
                 estimated=True)


def release_hits(conn: sqlite3.Connection) -> None:
    conn.execute("DROP TABLE IF EXISTS temp.hit_set")


def _values(column: str, node: Match, where: Where) -> str:
    """``column`` equal to the value, in the prefix's range, or (``field:*``) not empty."""
    terms = search_terms.value_terms(node)
    if terms is None:
        return f"{column} != ''"
    where.params.extend(value for _, value in terms)
    condition = " AND ".join(f"{column} {op} ?" for op, _ in terms)
    return f"({condition})" if len(terms) > 1 else condition


def _key_values(node: Match, where: Where) -> list[str]:
    """The conditions on ``event_keys.value`` for ``node`` (any one matches): the exact value,
    and packed as the index packs it (store/index_keys.py); or a prefix's text range and the
    BLOB ranges of the packed values whose text it starts. The text is asked for too because
    an index of version 2 holds every value as text: a read-only store reads what is there,
    and a writer beside it may rebuild it packed at any time (a flag read at open goes stale)."""
    if not node.prefix:
        packed = index_keys.pack_key(node.value)
        values = [node.value] if isinstance(packed, str) else [packed, node.value]
        where.params.extend(values)
        return ["value = ?"] * len(values)
    ranges: list[tuple[str | bytes, str | bytes]] = [(node.value, node.value + search_terms.TOP)]
    ranges += index_keys.prefix_ranges(node.value)
    for low, high in ranges:
        where.params.extend((low, high))
    return ["value >= ? AND value < ?"] * len(ranges)


def _match(node: Match, where: Where) -> str:
    name = node.field
    if name in search_terms.SOURCE_COLUMNS:
        condition = _values(search_terms.SOURCE_COLUMNS[name], node, where)  # fixed names, ? parameters
        return f"e.source IN (SELECT id FROM sources WHERE {condition})"  # noqa: S608
    where.reads_rows = True
    if name in _KEY_FIELDS and not (node.prefix and not node.value):
        where.uses_index = True
        numbers = ", ".join(str(int(f)) for f in _KEY_FIELDS[name])  # integer constants
        keys = f"SELECT seq FROM idx.event_keys WHERE gen IN {KEY_GENS} AND field IN ({numbers}) AND "  # noqa: S608
        return "e.seq IN (" + " UNION ALL ".join(keys + c for c in _key_values(node, where)) + ")"
    columns = _EVENT_COLUMNS.get(name) or _KEY_COLUMNS[name]
    return "(" + " OR ".join(_values(f"e.{column}", node, where) for column in columns) + ")"


def _time(node: TimeRange, where: Where, now: datetime) -> str:
    terms = search_terms.time_terms(node, now)
    where.params.extend(value for _, value in terms)
    return "(" + " AND ".join(f"e.time {op} ?" for op, _ in terms) + ")"


# -- aggregates over the matching events ------------------------------------------------------

_FROM: Final = " FROM events AS e JOIN sources AS s ON s.id = e.source"
_EVENTS: Final = " FROM events AS e"
"""Counting needs no join (conditions reach sources through subqueries): with none, a count
or a histogram over a time range reads the time index alone."""
FACETS: Final = search_terms.FACETS


def count(conn: sqlite3.Connection, where: Where) -> int:
    sql = f"SELECT {_count(where)}{where.source()}{where.sql()}"
    return int(conn.execute(sql, where.params).fetchone()[0])


def _count(where: Where) -> str:
    """How hits are counted: one each, or (a sample) by the weight each stands for."""
    return "CAST(round(total(e.weight)) AS INTEGER)" if where.estimated else "count(*)"


def time_bounds(conn: sqlite3.Connection, where: Where) -> tuple[int, int] | None:
    """The first and last matching event time (microseconds), None when nothing matches."""
    sql = "SELECT min(e.time), max(e.time)" + where.source() + where.sql()
    low, high = conn.execute(sql, where.params).fetchone()
    return None if low is None else (int(low), int(high))


def histogram(conn: sqlite3.Connection, where: Where, start: int, step: int, size: int) -> list[int]:
    """Matching events per bucket of ``step`` microseconds from ``start`` (``size`` buckets;
    events outside them are not counted)."""
    counts = [0] * size
    sql = (f"SELECT (e.time - ?) / ? AS bucket, {_count(where)}{where.source()}{where.sql()}"
           f"{' AND' if where.conditions else ' WHERE'} e.time >= ? AND e.time < ? GROUP BY bucket")
    end = start + step * size
    for bucket, n in conn.execute(sql, (start, step, *where.params, start, end)):
        if 0 <= bucket < size:
            counts[int(bucket)] = round(n)  # a sample's weights sum to a float
    return counts


def top_values(conn: sqlite3.Connection, where: Where, names: tuple[str, ...], *, sample: int,
               limit: int) -> dict[str, list[tuple[str, int]]]:
    """The ``limit`` commonest non-empty values of each field among the newest ``sample``
    matching events (as Kibana's field sidebar: a sample keeps it fast on any hit count)."""
    columns = ", ".join(f"{FACETS[name]} AS {name}" for name in names)
    conn.execute("DROP TABLE IF EXISTS temp.hits")
    clause, params, _ = where.page("DESC", sample, 0)
    conn.execute(f"CREATE TEMP TABLE hits AS SELECT {columns}{_FROM}{clause} "
                 "ORDER BY e.time DESC, e.seq DESC LIMIT ?", (*params, sample))
    try:
        return {name: [(str(v), int(n)) for v, n in conn.execute(
            f"SELECT {name}, count(*) AS n FROM temp.hits WHERE {name} != '' "  # noqa: S608 - fixed names
            f"GROUP BY {name} ORDER BY n DESC, {name} LIMIT ?", (limit,))] for name in names}
    finally:
        conn.execute("DROP TABLE temp.hits")
