"""One search, as the API, the dashboard and the CLI run it: parse the query text, fetch a
page of hits, and (when asked) count them, spread them over time and count field values."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Final

from stackwatch.core.types import StoreReads
from stackwatch.search.query import Node, parse
from stackwatch.store.base import EventQuery, StoredEvent

STEPS: Final = tuple(timedelta(seconds=s) for s in (
    1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400, 30 * 86400))
BARS: Final = 60
"""Most bars in a histogram; the step is the smallest of STEPS that fits the range in them."""
SIDEBAR_FIELDS: Final = ("host", "service", "severity", "kind", "action", "outcome", "user", "source_ip",
                         "project")
SIDEBAR_SAMPLE: Final = 10_000
"""Field values are counted over the newest this-many hits (fast on any hit count)."""


@dataclass(frozen=True, slots=True)
class Buckets:
    start: datetime
    step: timedelta
    counts: tuple[int, ...]

    @property
    def end(self) -> datetime:
        return self.start + self.step * len(self.counts)

    def times(self) -> list[datetime]:
        return [self.start + self.step * i for i in range(len(self.counts))]


@dataclass(frozen=True, slots=True)
class SearchResult:
    query: Node
    events: list[StoredEvent]
    total: int | None = None
    histogram: Buckets | None = None
    fields: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    estimated: bool = False
    """The total, histogram and field values are estimated from a sample of the hits (a
    search asked with ``estimate`` whose hits take too long to find all): ``events`` is
    still the exact page."""


def buckets_for(since: datetime, until: datetime) -> tuple[datetime, timedelta, int]:
    """Start (aligned to the step, from the epoch in UTC), step and bar count covering
    ``[since, until)`` in at most BARS (+1 for the alignment) bars; past the longest step,
    a multiple of it."""
    span = max(until - since, timedelta(seconds=1))
    longest = STEPS[-1]
    step = next((s for s in STEPS if span / s <= BARS), longest * math.ceil(span / (longest * BARS)))
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    start = epoch + step * math.floor((since - epoch) / step)
    size = max(1, math.ceil((until - start) / step))
    return start, step, size


def run_search(store: StoreReads, text: str, *, since: datetime | None = None, until: datetime | None = None,
               now: datetime | None = None, limit: int = 50, offset: int = 0, after_seq: int | None = None,
               newest_first: bool = True, count: bool = False, histogram: bool = False,
               fields: bool = False, estimate: bool = False) -> SearchResult:
    """Search ``store`` with query ``text`` (raises QuerySyntaxError) in ``[since, until)``;
    relative times count back from ``now`` (default the wall clock). ``estimate``: the count,
    histogram and field values may come from a sample of the hits when finding them all
    would be slow (``SearchResult.estimated``; the dashboard's search page), not the CLI's."""
    moment = now or datetime.now(UTC)
    tree = parse(text)
    query = EventQuery(since=since, until=until, match=tree, now=moment, limit=limit, offset=offset,
                       after_seq=after_seq, newest_first=newest_first)
    if not (count or histogram or fields):
        return _run(store, query, tree, moment, since, until, count, histogram, fields)
    with store.holding_search(query, estimate=estimate):
        found = _run(store, query, tree, moment, since, until, count, histogram, fields)
        return replace(found, estimated=store.counts_estimated(query)) if estimate else found


def _run(store: StoreReads, query: EventQuery, tree: Node, moment: datetime, since: datetime | None,
         until: datetime | None, count: bool, histogram: bool, fields: bool) -> SearchResult:
    events = store.search_events(query)
    total = store.count_events(query) if count else None
    buckets = None
    if histogram and (total is None or total > 0):
        low, high = since, until
        if low is None or high is None:
            bounds = store.event_time_bounds(query)
            if bounds is not None:
                low = low or bounds[0]
                last = bounds[1] + timedelta(seconds=1)
                # "from X" runs to now; with no bounds at all the bars span the hits.
                high = high or (max(moment, last) if since is not None else last)
        if low is not None and high is not None and high > low:
            start, step, size = buckets_for(low, high)
            buckets = Buckets(start, step, tuple(store.hit_histogram(query, start, step, size)))
    values = store.top_values(query, SIDEBAR_FIELDS, sample=SIDEBAR_SAMPLE) if fields else {}
    return SearchResult(query=tree, events=events, total=total, histogram=buckets, fields=values)
