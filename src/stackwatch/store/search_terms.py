"""What a search-language value or time range asks of a column, the same for both backends.

``sqlite_search`` and ``postgres/search`` write the SQL (their own placeholders and literals);
which comparisons a ``field:value`` / ``field:prefix*`` / ``time:[...]`` means, with which
values, is decided here once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from stackwatch.search.query import Match, TimeRange
from stackwatch.store.base import QueryError
from stackwatch.store.rows import EPOCH, to_micros

FILTERS: Final = (("host", "host"), ("service", "service"), ("kind", "kind"), ("action", "action"),
                  ("outcome", "outcome"), ("severity", "severity"), ("source_ip", "source_ip"),
                  ("user", "user"), ("project", "project"), ("request_id", "request_id"))
"""EventQuery's plain filters and the language field each one is."""

SOURCE_COLUMNS: Final = {"host": "host", "service": "service"}
"""Fields looked up through the ``sources`` table, and its column for each."""

FACETS: Final = {"host": "s.host", "service": "s.service", "severity": "e.severity", "kind": "e.kind",
                 "action": "e.action", "outcome": "e.outcome", "user": "e.init_name",
                 "source_ip": "e.init_ip", "project": "e.init_project", "request_id": "e.request_id"}
"""Fields the sidebar counts values of, and the column each one reads (``events AS e`` joined
with ``sources AS s``)."""

TOP: Final = "\U0010ffff"  # sorts after every character: the end of a prefix's range


def value_terms(node: Match) -> list[tuple[str, str]] | None:
    """The comparisons ``(operator, value)`` a column must pass for ``node`` (all of them):
    equal to the value, or inside the prefix's range ``[value, value + TOP)``. None for
    ``field:*`` (a prefix of nothing): the column is not empty."""
    if node.prefix and not node.value:
        return None
    if node.prefix:
        return [(">=", node.value), ("<", node.value + TOP)]
    return [("=", node.value)]


def time_terms(node: TimeRange, now: datetime) -> list[tuple[str, int]]:
    """The comparisons ``(operator, µs)`` on the event time for ``node``, relative times
    resolved at ``now``. An inclusive end that is a date covers that whole day."""
    terms = []
    if node.since is not None:
        terms.append((">=", to_micros(node.since.resolve(now))))
    if node.until is not None:
        if node.until_inclusive:
            end = node.until.resolve_end(now)
            terms.append(("<" if node.until.date_only else "<=", to_micros(end)))
        else:
            terms.append(("<", to_micros(node.until.resolve(now))))
    return terms


def histogram_step(step: timedelta, size: int) -> int:
    """``step`` in microseconds, once the histogram asked for is one a store draws (else QueryError)."""
    step_us = to_micros(EPOCH + step)
    if step_us <= 0 or not 1 <= size <= 10_000:
        raise QueryError("a histogram needs a positive step and 1..10000 buckets")
    return step_us


def check_top_values(fields: Sequence[str], sample: int, limit: int) -> None:
    """QueryError unless ``fields`` are FACETS and ``sample`` and ``limit`` are in their ranges."""
    unknown = [name for name in fields if name not in FACETS]
    if unknown or not 1 <= sample <= 100_000 or not 1 <= limit <= 100:
        raise QueryError(f"top values: fields from {sorted(FACETS)}, sample 1..100000, "
                         f"limit 1..100 (unknown: {unknown})")
