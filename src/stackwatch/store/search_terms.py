"""What a search-language value or time range asks of a column, the same for both backends.

``sqlite_search`` and ``postgres/search`` write the SQL (their own placeholders and literals);
which comparisons a ``field:value`` / ``field:prefix*`` / ``time:[...]`` means, with which
values, is decided here once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from stackwatch.search.query import Match, TimeRange
from stackwatch.store.rows import to_micros

FILTERS: Final = (("host", "host"), ("service", "service"), ("kind", "kind"), ("action", "action"),
                  ("outcome", "outcome"), ("severity", "severity"), ("source_ip", "source_ip"),
                  ("user", "user"), ("project", "project"), ("request_id", "request_id"))
"""EventQuery's plain filters and the language field each one is."""

SOURCE_COLUMNS: Final = {"host": "host", "service": "service"}
"""Fields looked up through the ``sources`` table, and its column for each."""

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
