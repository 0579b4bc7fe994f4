"""The store as a request may read it: ``store_of(request)``.

Operators get the store itself, or, once tenants' own instances send logs
(sources/tenant_syslog.py), an ``InfrastructureStore`` that leaves those events (hosts under
``tenant/``) and the alerts raised on them out of every list and search: the infrastructure's
views stay the infrastructure's. A tenant (a keystone user of a project; api/keystone_auth.py)
gets a ``ScopedStore``: every read it offers puts the tenant's ``Scope`` into the query
(``EventQuery.scope``, ``AlertQuery.scope``, ``get_events(scope=)``, ``get_alert(scope=)``),
so the backend filters the rows (store/scope.py); reads that have no tenant meaning (silences,
source statistics by host, store counts) are refused. Routes open to tenants read through
``store_of`` only, so a route cannot forget the scope: it has no unscoped store to forget it on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import HTTPException, Request

from stackwatch.core.types import StoreReads
from stackwatch.search.query import And, Match, Not
from stackwatch.store.base import (
    AlertQuery,
    EventQuery,
    Silence,
    SourceStats,
    Store,
    StoredAlert,
    StoredEvent,
)
from stackwatch.store.scope import TENANT_HOST_PREFIX, Scope


class ScopedStore:
    """The reads of a store, limited to one tenant's scope."""

    def __init__(self, store: Store, scope: Scope) -> None:
        self._store = store
        self.scope = scope

    # -- events -------------------------------------------------------------------------------

    def search_events(self, query: EventQuery) -> list[StoredEvent]:
        return self._store.search_events(replace(query, scope=self.scope))

    def count_events(self, query: EventQuery) -> int:
        return self._store.count_events(replace(query, scope=self.scope))

    def event_time_bounds(self, query: EventQuery) -> tuple[datetime, datetime] | None:
        return self._store.event_time_bounds(replace(query, scope=self.scope))

    def hit_histogram(self, query: EventQuery, start: datetime, step: timedelta, size: int) -> list[int]:
        return self._store.hit_histogram(replace(query, scope=self.scope), start, step, size)

    def top_values(self, query: EventQuery, fields: Sequence[str], *, sample: int = 10_000,
                   limit: int = 5) -> dict[str, list[tuple[str, int]]]:
        return self._store.top_values(
            replace(query, scope=self.scope), fields, sample=sample, limit=limit)

    def holding_search(self, query: EventQuery, *, estimate: bool = False) -> AbstractContextManager[None]:
        return self._store.holding_search(
            replace(query, scope=self.scope), estimate=estimate)

    def counts_estimated(self, query: EventQuery) -> bool:
        return self._store.counts_estimated(replace(query, scope=self.scope))

    def get_events(self, seqs: Sequence[int]) -> list[StoredEvent]:
        return self._store.get_events(seqs, scope=self.scope)

    def event_histogram(self, start: datetime, until: datetime, step: int) -> Iterator[tuple[Any, ...]]:
        """Events per bucket of ``step`` seconds (stats.histogram's shape: host and service are
        left blank, a tenant's chart is one series)."""
        size = int((until - start).total_seconds() // step) + 1
        counts = self.hit_histogram(EventQuery(since=start, until=until), start, timedelta(seconds=step),
                                    size)
        return (("", "", index, n) for index, n in enumerate(counts) if n)

    def source_stats(self) -> list[SourceStats]:
        """One row over the tenant's events (pages use it for "now": the newest event)."""
        bounds = self.event_time_bounds(EventQuery())
        if bounds is None:
            return []
        count = self.count_events(EventQuery())
        return [SourceStats("", "", bounds[0], bounds[1], count, datetime.now(UTC))]

    # -- alerts -------------------------------------------------------------------------------

    def alerts(self, query: AlertQuery | None = None) -> list[StoredAlert]:
        return self._store.alerts(replace(query or AlertQuery(), scope=self.scope))

    def count_alerts(self, query: AlertQuery | None = None) -> int:
        return self._store.count_alerts(replace(query or AlertQuery(), scope=self.scope))

    def get_alert(self, alert_id: int) -> StoredAlert | None:
        return self._store.get_alert(alert_id, scope=self.scope)

    def silences(self) -> list[Silence]:
        return []  # silences name other tenants' keys and the infrastructure's rules

    def tail_cursor(self, events: Sequence[StoredEvent], after: int | None) -> int | None:
        return self._store.tail_cursor(events, after)

    def login_attempts(self) -> None:
        """None: the store's attempt sums are the whole cloud's and cannot be scoped, so a
        tenant's keystone report is recounted from its scoped login events (api/analytics.py)."""
        return None


class InfrastructureStore:
    """The store's reads (core/types.StoreReads) without tenants' instances' events and alerts.
    The writes are the store's own (``operator_store_of``)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def tail_cursor(self, events: Sequence[StoredEvent], after: int | None) -> int | None:
        return self._store.tail_cursor(events, after)

    def _events(self, query: EventQuery) -> EventQuery:
        outside = Not(Match("host", TENANT_HOST_PREFIX, prefix=True))
        return replace(query, match=outside if query.match is None else And((query.match, outside)))

    def search_events(self, query: EventQuery) -> list[StoredEvent]:
        return self._store.search_events(self._events(query))

    def count_events(self, query: EventQuery) -> int:
        return self._store.count_events(self._events(query))

    def event_time_bounds(self, query: EventQuery) -> tuple[datetime, datetime] | None:
        return self._store.event_time_bounds(self._events(query))

    def hit_histogram(self, query: EventQuery, start: datetime, step: timedelta, size: int) -> list[int]:
        return self._store.hit_histogram(self._events(query), start, step, size)

    def top_values(self, query: EventQuery, fields: Sequence[str], *, sample: int = 10_000,
                   limit: int = 5) -> dict[str, list[tuple[str, int]]]:
        return self._store.top_values(
            self._events(query), fields, sample=sample, limit=limit)

    def holding_search(self, query: EventQuery, *, estimate: bool = False) -> AbstractContextManager[None]:
        return self._store.holding_search(self._events(query), estimate=estimate)

    def counts_estimated(self, query: EventQuery) -> bool:
        return self._store.counts_estimated(self._events(query))

    def alerts(self, query: AlertQuery | None = None) -> list[StoredAlert]:
        return self._store.alerts(
            replace(query or AlertQuery(), without_host_prefix=TENANT_HOST_PREFIX))

    def count_alerts(self, query: AlertQuery | None = None) -> int:
        return self._store.count_alerts(replace(query or AlertQuery(),
                                                without_host_prefix=TENANT_HOST_PREFIX))

    def event_histogram(self, start: datetime, until: datetime, step: int) -> list[tuple[Any, ...]] | None:
        rows = self._store.event_histogram(start, until, step)
        if rows is None:  # a store that counts none: the caller counts a scan of this view
            return None
        return [row for row in rows if not str(row[0]).startswith(TENANT_HOST_PREFIX)]

    def source_stats(self) -> list[SourceStats]:
        return [s for s in self._store.source_stats() if not s.host.startswith(TENANT_HOST_PREFIX)]

    # reads by id and of what has no host: the store's own (a route reaches an alert or event
    # of a tenant's instance only by its id, as it did before tenants' instances sent logs)

    def get_events(self, seqs: Sequence[int]) -> list[StoredEvent]:
        return self._store.get_events(seqs)

    def get_alert(self, alert_id: int) -> StoredAlert | None:
        return self._store.get_alert(alert_id)

    def silences(self) -> list[Silence]:
        return self._store.silences()

    def login_attempts(self) -> Any | None:
        return self._store.login_attempts()


def has_tenant_sources(store: Store) -> bool:
    return any(s.host.startswith(TENANT_HOST_PREFIX) for s in store.source_stats())


def scope_of(request: Request) -> Scope | None:
    principal = getattr(request.state, "principal", None)
    return getattr(principal, "scope", None)


def store_of(request: Request) -> StoreReads:
    """The store for this request's caller: scoped for a tenant (see the module docstring)."""
    view = getattr(request.state, "store_view", None)
    if view is None:  # once per request: pages read the store many times
        store = request.app.state.services.store
        scope = scope_of(request)
        if scope is not None:
            view = ScopedStore(store, scope)
        else:
            view = InfrastructureStore(store) if has_tenant_sources(store) else store
        request.state.store_view = view
    return view


def operator_store_of(request: Request) -> Store:
    """The store itself, for what routes closed to tenants (their ``require`` role) write or
    count: alert changes, store counts. A tenant never gets it (refused, should a route forget)."""
    if scope_of(request) is not None:
        raise HTTPException(403, "not open to tenants")
    store: Store = request.app.state.services.store
    return store
