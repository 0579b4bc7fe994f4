"""Reading the keystone login attempts, the same for both backends: the range split into
whole and partial minutes, and the reader the keystone page calls.

Each backend (``sqlite_attempts``, ``postgres/attempts``) writes its own SQL for the four
reading queries; what the reader does with them (run each through the store's ``read``, which
holds its lock and connection) is the same, so it is here once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from stackwatch.store.attempt_fold import MINUTE, AttemptScope

C = TypeVar("C")
"""The backend's connection type."""

Read = Callable[[Callable[[C], Any]], Any]
"""The store's reading wrapper: runs a function of the connection under its lock."""


def whole_minutes(since: int | None, until: int | None) -> tuple[int | None, int | None]:
    """``(first, end)``: the first whole minute at or after ``since`` and the minute holding
    ``until`` (partial, or not in), both as minute numbers (None: that end is open). The whole
    minutes ``first <= m < end`` come from ``attempt_minutes``, the rest from ``login_attempts``;
    ``first >= end`` when the range lies inside one or two minutes."""
    first = None if since is None else -(-since // MINUTE)
    end = None if until is None else until // MINUTE
    return first, end


def ranged_terms(since: int | None, until: int | None,
                 mark: str) -> tuple[list[str], list[Any], list[str], list[Any]] | None:
    """How a range splits for the reading queries, in a dialect whose parameter is ``mark``:
    ``(minutes, minute_params, edges, edge_params)``, the conditions on ``attempt_minutes.minute``
    for the whole minutes (AND-ed) and on ``login_attempts.time`` for the partial minutes at
    either end (OR-ed; none when both ends are open). None when the range lies inside one or two
    minutes: then ``login_attempts`` alone answers it."""
    first, end = whole_minutes(since, until)
    if first is not None and end is not None and first >= end:
        return None
    minutes: list[str] = []
    minute_params: list[Any] = []
    edges: list[str] = []
    edge_params: list[Any] = []
    if first is not None:
        minutes.append(f"minute >= {mark}")
        minute_params.append(first)
        edges.append(f"(time >= {mark} AND time < {mark})")
        edge_params += [since, first * MINUTE]
    if end is not None:
        minutes.append(f"minute < {mark}")
        minute_params.append(end)
        edges.append(f"(time >= {mark} AND time < {mark})")
        edge_params += [end * MINUTE, until]
    return minutes, minute_params, edges, edge_params


def given_terms(terms: Sequence[tuple[str, Any]]) -> tuple[list[str], list[Any]]:
    """The ``(condition, value)`` pairs whose value is not None, split into conditions and values."""
    given = [(condition, value) for condition, value in terms if value is not None]
    return [condition for condition, _ in given], [value for _, value in given]


class AttemptReader(Generic[C]):
    """A backend's reading functions, run through ``read`` (the store's: its lock and connection)."""

    def __init__(
        self,
        read: Read[C],
        *,
        totals: Callable[[C, AttemptScope], list[tuple[Any, ...]]],
        buckets: Callable[[C, AttemptScope, int, int], list[tuple[int, str, int]]],
        distinct_hashes: Callable[[C, AttemptScope, Sequence[str]], dict[str, int]],
        timeline: Callable[..., list[tuple[Any, ...]]],
    ) -> None:
        self._read = read
        self._totals = totals
        self._buckets = buckets
        self._distinct_hashes = distinct_hashes
        self._timeline = timeline

    def totals(self, scope: AttemptScope) -> list[tuple[Any, ...]]:
        return self._read(lambda conn: self._totals(conn, scope))  # type: ignore[no-any-return]

    def buckets(self, scope: AttemptScope, origin: int, step: int) -> list[tuple[int, str, int]]:
        return self._read(lambda conn: self._buckets(conn, scope, origin, step))  # type: ignore[no-any-return]

    def distinct_hashes(self, scope: AttemptScope, accounts: Sequence[str]) -> dict[str, int]:
        return self._read(lambda conn: self._distinct_hashes(conn, scope, accounts))  # type: ignore[no-any-return]

    def timeline(self, scope: AttemptScope, *, ip: str | None, account: str | None,
                 limit: int) -> list[tuple[Any, ...]]:
        return self._read(  # type: ignore[no-any-return]
            lambda conn: self._timeline(conn, scope, ip=ip, account=account, limit=limit))
