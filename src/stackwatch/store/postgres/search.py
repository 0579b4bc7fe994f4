"""Event searches as SQL for the PostgreSQL store: an ``EventQuery`` (plain filters and its
parsed search-language tree) becomes one WHERE clause with ``%s`` parameters, over the
``events AS e`` narrow rows of every writer. Values are only ever parameters.

Where each field is looked up: host and service through the small ``sources`` table; source
IP, user (name or id) and request id on their partial B-tree indexes; free text on the GIN
index of ``words`` (``text.py``); kind, severity, action, outcome, project and target on the
rows the other conditions select. A prefix ``adm*`` is the range ``['adm', 'adm' + U+10FFFF)``
(the columns sort as bytes, so the index can seek it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import psycopg

from stackwatch.search.query import And, Everything, Match, Node, Not, Or, Text, TimeRange
from stackwatch.store import search_terms
from stackwatch.store.base import EventQuery
from stackwatch.store.postgres import text as fts
from stackwatch.store.postgres import ticks
from stackwatch.store.postgres.scope import event_condition
from stackwatch.store.rows import to_micros

_COLUMNS: Final = {"kind": ("kind",), "severity": ("severity",), "action": ("action",),
                   "outcome": ("outcome",), "project": ("init_project",),
                   "target": ("target_name", "target_id"), "source_ip": ("init_ip",),
                   "user": ("init_name", "init_id"), "request_id": ("request_id",)}
FACETS: Final = search_terms.FACETS


@dataclass(slots=True)
class Where:
    conditions: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def sql(self) -> str:
        return " WHERE " + " AND ".join(self.conditions) if self.conditions else ""


def where_of(query: EventQuery, now: datetime | None = None, tail: list[tuple[int, int]] | None = None
             ) -> Where:
    """``tail``: ``ticks.after(query.after_seq)``, read by the caller (it needs the connection)."""
    where = Where()
    if query.scope is not None:
        condition, params = event_condition(query.scope)
        where.conditions.append(condition)
        where.params.extend(params)
    if query.since is not None:
        where.conditions.append("e.time >= %s")
        where.params.append(to_micros(query.since))
    if query.until is not None:
        where.conditions.append("e.time < %s")
        where.params.append(to_micros(query.until))
    if query.after_seq is not None:  # a commit tick: the events committed after it (ticks.py)
        if tail is None:
            raise ValueError("a live tail's query needs the commits after its tick (ticks.after)")
        term, params = ticks.condition(tail)
        where.conditions.append(term)
        where.params.extend(params)
    for attribute, name in search_terms.FILTERS:
        value = getattr(query, attribute)
        if value is not None:
            where.conditions.append(_match(Match(name, value), where))
    if query.text is not None:
        where.conditions.append(_text(fts.free_text(query.text), where))
    if query.match is not None and not isinstance(query.match, Everything):
        where.conditions.append(_compile(query.match, where, now or datetime.now(UTC)))
    return where


def _compile(node: Node, where: Where, now: datetime) -> str:
    if isinstance(node, Everything):
        return "true"
    if isinstance(node, Text):
        return _text(fts.phrase(node.value, prefix=node.prefix), where)
    if isinstance(node, Match):
        return _match(node, where)
    if isinstance(node, TimeRange):
        return _time(node, where, now)
    if isinstance(node, Not):
        return f"NOT ({_compile(node.item, where, now)})"
    assert isinstance(node, And | Or)
    joiner = " AND " if isinstance(node, And) else " OR "
    return "(" + joiner.join(f"({_compile(item, where, now)})" for item in node.items) + ")"


def _text(query: str | None, where: Where) -> str:
    if query is None:
        return "false"
    where.params.append(query)
    return "e.words @@ %s::tsquery"


def _values(column: str, node: Match, where: Where) -> str:
    terms = search_terms.value_terms(node)
    if terms is None:
        return f"{column} <> ''"
    where.params.extend(value for _, value in terms)
    condition = " AND ".join(f"{column} {op} %s" for op, _ in terms)
    return f"({condition})" if len(terms) > 1 else condition


def _match(node: Match, where: Where) -> str:
    name = node.field
    if name in search_terms.SOURCE_COLUMNS:
        condition = _values(search_terms.SOURCE_COLUMNS[name], node, where)
        return f"e.source IN (SELECT id FROM sources WHERE {condition})"  # noqa: S608 - fixed names
    value = node.value.replace("\x00", "\ufffd")  # what the writer stored in place of a NUL
    node = Match(node.field, value, node.prefix) if value != node.value else node
    return "(" + " OR ".join(_values(f"e.{column}", node, where) for column in _COLUMNS[name]) + ")"


def _time(node: TimeRange, where: Where, now: datetime) -> str:
    terms = search_terms.time_terms(node, now)
    where.params.extend(value for _, value in terms)
    return "(" + " AND ".join(f"e.time {op} %s" for op, _ in terms) + ")" if terms else "true"


# -- reads over the matching events -------------------------------------------------------------

def page(conn: psycopg.Connection, where: Where, *, newest_first: bool, limit: int,
         offset: int) -> list[int]:
    order = "DESC" if newest_first else "ASC"
    sql = (f"SELECT e.id FROM events AS e{where.sql()} "  # noqa: S608 - clauses of fixed text
           f"ORDER BY e.time {order}, e.id {order} LIMIT %s OFFSET %s")
    return [int(r[0]) for r in conn.execute(sql.encode(), (*where.params, limit, offset))]


def count(conn: psycopg.Connection, where: Where) -> int:
    row = conn.execute(f"SELECT count(*) FROM events AS e{where.sql()}".encode(),  # noqa: S608
                       where.params).fetchone()
    return int(row[0]) if row else 0


def time_bounds(conn: psycopg.Connection, where: Where) -> tuple[int, int] | None:
    row = conn.execute(f"SELECT min(e.time), max(e.time) FROM events AS e{where.sql()}".encode(),  # noqa: S608
                       where.params).fetchone()
    return None if row is None or row[0] is None else (int(row[0]), int(row[1]))


def histogram(conn: psycopg.Connection, where: Where, start: int, step: int, size: int) -> list[int]:
    counts = [0] * size
    joiner = " AND" if where.conditions else " WHERE"
    sql = (f"SELECT (e.time - %s) / %s AS bucket, count(*) FROM events AS e{where.sql()}{joiner} "  # noqa: S608
           "e.time >= %s AND e.time < %s GROUP BY bucket")
    for bucket, n in conn.execute(sql.encode(), (start, step, *where.params, start, start + step * size)):
        if 0 <= bucket < size:
            counts[int(bucket)] = int(n)
    return counts


def top_values(conn: psycopg.Connection, where: Where, names: tuple[str, ...], *, sample: int,
               limit: int) -> dict[str, list[tuple[str, int]]]:
    columns = ", ".join(f'{FACETS[name]} AS "{name}"' for name in names)  # quoted: "user" is a keyword
    hits = (f"SELECT {columns} FROM events AS e JOIN sources AS s ON s.id = e.source{where.sql()} "  # noqa: S608
            "ORDER BY e.time DESC, e.id DESC LIMIT %s")
    out: dict[str, list[tuple[str, int]]] = {}
    for name in names:  # names are FACETS keys (checked by the caller): fixed text
        column = f'h."{name}"'
        sql = (f"SELECT {column}, count(*) AS n FROM ({hits}) AS h WHERE {column} <> '' "  # noqa: S608
               f"GROUP BY {column} ORDER BY n DESC, {column} LIMIT %s")
        found = conn.execute(sql.encode(), (*where.params, sample, limit))
        out[name] = [(str(v), int(n)) for v, n in found]
    return out
