"""Counts over time for the charts: ingest rate, per-source sparklines, source health.

The store interface has no aggregate query yet. A store may offer one as
``event_histogram(since, until, step_seconds) -> list[(host, service, bucket_index, count)]``
(the embedded SQLite store sums its per-minute rollup, ``store/sqlite_rollup.py``); any
other store is sampled through ``search_events`` (at most ``SCAN_LIMIT`` events, and the
result says so).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from stackwatch.api.audit import AUDIT_SERVICE
from stackwatch.core.types import StoreReads
from stackwatch.store.base import MAX_LIMIT, EventQuery, SourceStats

SCAN_LIMIT: Final = 100_000
STEPS: Final = (60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400)
STEADY_COUNT: Final = 20
QUIET_FACTOR: Final = 10.0


@dataclass(slots=True)
class Histogram:
    start: datetime
    step: int  # seconds per bucket
    size: int  # number of buckets
    total: list[int]
    by_source: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    sampled: bool = False  # True when counted from a capped scan

    @property
    def times(self) -> list[datetime]:
        return [self.start + timedelta(seconds=i * self.step) for i in range(self.size)]


@dataclass(frozen=True, slots=True)
class SourceHealth:
    host: str
    service: str
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    per_hour: float
    silent: bool
    expected: bool
    silent_for: float | None  # seconds since last seen (before the store's newest event)


def newest_event_time(sources: list[SourceStats]) -> datetime | None:
    """The store's "now": the newest event time of the monitored sources (a live store: about
    the wall clock; an analyzed archive: its end), so silence means the same for both.
    stackwatch's own audit events are left out: they are written on the wall clock even
    when the store holds an old archive."""
    return max((s.last_seen for s in sources if s.service != AUDIT_SERVICE), default=None)


def pick_step(span: float, max_buckets: int) -> int:
    return next((s for s in STEPS if span / s <= max_buckets), STEPS[-1])


def histogram(store: StoreReads, since: datetime, until: datetime, *, max_buckets: int = 48) -> Histogram:
    """Events per bucket in [since, until), overall and per source."""
    step = pick_step(max((until - since).total_seconds(), 1.0), max_buckets)
    start = datetime.fromtimestamp(int(since.timestamp()) // step * step, UTC)
    size = int((until - start).total_seconds() // step) + 1
    result = Histogram(start, step, size, [0] * size)
    rows, sampled = _counts(store, start, until, step)
    result.sampled = sampled
    for host, service, index, count in rows:
        if 0 <= index < size:
            result.total[index] += count
            result.by_source.setdefault((host, service), [0] * size)[index] += count
    return result


def _counts(store: StoreReads, start: datetime, until: datetime,
            step: int) -> tuple[list[tuple[Any, ...]], bool]:
    offered = store.event_histogram(start, until, step)
    if offered is not None:
        return list(offered), False
    return _scan_counts(store, start, until, step)


def _scan_counts(
    store: StoreReads, start: datetime, until: datetime, step: int
) -> tuple[list[tuple[Any, ...]], bool]:
    counts: dict[tuple[str, str, int], int] = defaultdict(int)
    offset = 0
    while offset < SCAN_LIMIT:
        page = store.search_events(EventQuery(since=start, until=until, limit=MAX_LIMIT, offset=offset))
        for stored in page:
            e = stored.event
            counts[(e.host, e.service, int((e.time - start).total_seconds() // step))] += 1
        offset += len(page)
        if len(page) < MAX_LIMIT:
            return [(*k, n) for k, n in counts.items()], False
    return [(*k, n) for k, n in counts.items()], True


def hourly_rate(count: int, first_seen: datetime, now: datetime | None) -> float:
    """Events per hour over the time the source has been watched: from its first event to the
    store's now, and at least an hour (a source seen for ten minutes wrote ``count`` events in
    its first hour, not six times as many; one event is one an hour, not 60). A source that
    went quiet is averaged over its quiet time too: the figure says what it writes now."""
    watched = (now - first_seen).total_seconds() if now is not None else 0.0
    return round(count / max(watched / 3600.0, 1.0), 1)


def source_health(
    sources: list[SourceStats],
    *,
    silent_after: float,
    expected: tuple[tuple[str, str], ...] = (),
    silenced: set[tuple[str, str]] | None = None,
    now: datetime | None = None,
) -> list[SourceHealth]:
    """Every source with its rate and whether it is silent, before ``now`` (default: the
    newest event time). Silent means: an open silence alert names it; or it is expected and
    wrote nothing for ``silent_after`` seconds (never seen counts); or it is a steady source
    (at least ``STEADY_COUNT`` events) quiet for ``silent_after`` and for ``QUIET_FACTOR``
    times its usual gap. Sporadic sources (cron, sudo, chronyd) are not called silent on
    their rate alone: their gaps say nothing."""
    now = now or newest_event_time(sources)
    expected_set = set(expected)
    silenced = silenced or set()
    out = []
    seen = set()
    for s in sources:
        key = (s.host, s.service)
        seen.add(key)
        span = (s.last_seen - s.first_seen).total_seconds()
        quiet = (now - s.last_seen).total_seconds() if now is not None else 0.0
        usual_gap = span / (s.count - 1) if s.count > 1 else None
        steady = s.count >= STEADY_COUNT and usual_gap is not None
        silent = (
            key in silenced
            or (key in expected_set and quiet > silent_after)
            or (steady and quiet > max(silent_after, QUIET_FACTOR * (usual_gap or 0.0)))
        )
        per_hour = hourly_rate(s.count, s.first_seen, now)
        out.append(
            SourceHealth(
                s.host,
                s.service,
                s.count,
                s.first_seen,
                s.last_seen,
                per_hour,
                silent,
                key in expected_set,
                quiet,
            )
        )
    for host, service in sorted(expected_set - seen):
        out.append(SourceHealth(host, service, 0, None, None, 0.0, True, True, None))
    return out
