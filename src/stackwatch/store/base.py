"""The store interface every backend implements (embedded SQLite, PostgreSQL later).

Events are append-only and numbered: ``seq`` is dense and monotonic (1, 2, 3...), the order in
which they were appended. The tamper-evident layer chains records in that order, so nothing
here may renumber or rewrite a stored event. Alerts are mutable state keyed by their dedup
identity ``(rule, key)``; their status changes are recorded with who made them.

Queries are small frozen dataclasses validated on construction, so a backend can trust their
sizes (the HTTP API passes user input straight into them).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

from stackwatch.core.alert import ALERT_SEVERITIES, Alert
from stackwatch.core.errors import StoreError
from stackwatch.core.event import Event
from stackwatch.store.scope import Scope

if TYPE_CHECKING:
    from stackwatch.core.types import FileRecords
    from stackwatch.search.query import Node

MAX_LIMIT: Final = 10_000
"""Most rows one query may return (and most seqs one ``get_events`` call may ask for)."""
MAX_OFFSET: Final = 1_000_000
"""Deepest offset a query may page to: deep offsets cost O(offset) in every backend."""
MAX_TEXT: Final = 512
"""Longest free-text query, in characters."""
MAX_TERMS: Final = 16
"""Most words in a free-text query."""
MAX_FIELD: Final = 1024
"""Longest value of any other string filter."""

ALERT_STATUSES: Final = ("open", "acknowledged", "resolved")
ALERT_SORTS: Final = ("time", "severity", "rule", "host")
"""What alert lists sort by: last seen, severity rank, rule title, host."""
MAX_SILENCE_REASON: Final = 2000


class QueryError(StoreError, ValueError):
    """A query is out of bounds (limit, offset, text length) or malformed."""


class NotFoundError(StoreError, LookupError):
    """The alert (or other object) asked for does not exist."""


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError(f"limit must be 1..{MAX_LIMIT}, got {limit}")
    if not 0 <= offset <= MAX_OFFSET:
        raise QueryError(f"offset must be 0..{MAX_OFFSET}, got {offset}")


def _check_fields(obj: object, names: Iterable[str]) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_FIELD):
            raise QueryError(f"{name} must be a string of at most {MAX_FIELD} characters")


def _check_range(since: datetime | None, until: datetime | None) -> None:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise QueryError(f"{name} must be timezone-aware")


def _check_scope(scope: object) -> None:
    if scope is not None and not isinstance(scope, Scope):
        raise QueryError("scope must be a store.scope.Scope")


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters for ``search_events``; every given filter must hold (AND).

    ``since`` is inclusive and ``until`` exclusive, on event time. ``user`` matches the
    initiator's name or id. ``text`` is free text over messages: every word must occur
    (case-insensitive, whole words; a word like ``10.0.0.1`` or ``req-ab12`` matches as a
    phrase of its parts). It is never interpreted as query syntax. Text with no word
    characters at all matches nothing.
    """

    since: datetime | None = None
    until: datetime | None = None
    host: str | None = None
    service: str | None = None
    kind: str | None = None
    action: str | None = None
    outcome: str | None = None
    severity: str | None = None
    source_ip: str | None = None
    user: str | None = None
    project: str | None = None
    request_id: str | None = None
    text: str | None = None
    limit: int = 100
    offset: int = 0
    newest_first: bool = True
    match: Node | None = None
    """A parsed search-language query (``stackwatch.search.query.parse``), ANDed with the rest."""
    now: datetime | None = None
    """What relative times in ``match`` (``time:-1h``) count back from; default the wall clock."""
    after_seq: int | None = None
    """Only events stored after this seq (a live tail's next poll)."""
    scope: Scope | None = None
    """Only events about this tenant's project (store/scope.py); None: every event."""

    def __post_init__(self) -> None:
        _check_page(self.limit, self.offset)
        _check_range(self.since, self.until)
        _check_range(self.now, None)
        _check_scope(self.scope)
        _check_fields(self, ("host", "service", "kind", "action", "outcome", "severity", "source_ip",
                             "user", "project", "request_id"))
        if self.text is not None:
            if not isinstance(self.text, str) or len(self.text) > MAX_TEXT:
                raise QueryError(f"text must be a string of at most {MAX_TEXT} characters")
            if len(self.text.split()) > MAX_TERMS:
                raise QueryError(f"text may have at most {MAX_TERMS} words")


@dataclass(frozen=True, slots=True)
class AlertQuery:
    """Filters for ``alerts``; ``since``/``until`` apply to ``last_seen``. Sorted by ``sort``
    (one of ALERT_SORTS; ties: most recently seen first), newest or highest first unless
    ``descending`` is False."""

    status: str | None = None
    category: str | None = None
    rule: str | None = None
    severity: str | None = None
    host: str | None = None
    source_ip: str | None = None
    user: str | None = None
    assignee: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    with_evidence: bool = True
    limit: int = 100
    offset: int = 0
    sort: str = "time"
    descending: bool = True
    scope: Scope | None = None
    """Only alerts about this tenant's project (store/scope.py); None: every alert."""
    without_host_prefix: str | None = None
    """Leave out alerts whose host starts with this (``tenant/``: raised on tenants' own
    instances, kept out of the infrastructure's views)."""

    def __post_init__(self) -> None:
        _check_page(self.limit, self.offset)
        _check_range(self.since, self.until)
        _check_scope(self.scope)
        _check_fields(self, ("category", "rule", "host", "source_ip", "user", "assignee",
                             "without_host_prefix"))
        if self.sort not in ALERT_SORTS:
            raise QueryError(f"sort must be one of {ALERT_SORTS}")
        if self.status is not None and self.status not in ALERT_STATUSES:
            raise QueryError(f"status must be one of {ALERT_STATUSES}")
        if self.severity is not None and self.severity not in ALERT_SEVERITIES:
            raise QueryError(f"severity must be one of {ALERT_SEVERITIES}")


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as stored: its sequence number and the event."""

    seq: int
    event: Event


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One status change (or comment) of an alert, and who made it."""

    time: datetime
    actor: str
    status: str
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as stored: its id, the alert (status included) and when it last changed.
    ``history`` is filled by ``get_alert`` only."""

    id: int
    alert: Alert
    updated: datetime
    history: tuple[AlertChange, ...] = field(default=())
    assignee: str | None = None
    silenced_by: int | None = None  # the silence that muted its last firing (not delivered)


@dataclass(frozen=True, slots=True)
class Silence:
    """Mutes alerts of ``rule`` (with ``key``, or every key when ``key`` is empty) until
    ``ends``: they are still recorded, marked silenced, but not delivered to any sink."""

    id: int
    rule: str
    key: str
    created: datetime
    created_by: str
    reason: str
    ends: datetime
    expired: datetime | None = None  # when expired early by hand
    expired_by: str | None = None

    def active(self, now: datetime) -> bool:
        return self.expired is None and self.ends > now


@dataclass(frozen=True, slots=True)
class SourceStats:
    """One source (host + service): event-time range, count, and when it was last received."""

    host: str
    service: str
    first_seen: datetime
    last_seen: datetime
    count: int
    last_received: datetime


@dataclass(frozen=True, slots=True)
class StoreCounts:
    events: int  # stored (committed) events
    alerts: int
    alerts_by_status: dict[str, int]
    unindexed: int  # events not yet in the full-text index (indexed before any text search)


class Store(ABC):
    """What every backend offers. Use it as a context manager: leaving it flushes and closes.

    The optional capabilities are declared here, on every store, with what a store without them
    does (nothing, None, False), so callers call them rather than probe for them (core/types.py)."""

    data_dir: Path | None = None
    """The embedded store's folder (the web process's audit spool, approvals and ledgers sit
    beside it); None for a shared store."""

    takes_header_events: bool = False
    """``append_events`` completes the prefilter's header events itself, so ``analyze`` may hand
    it records left unparsed (pipeline/analyze.py); no backend does yet."""

    def tick(self) -> None:  # noqa: B027 - optional hook
        """Called on serve's tick (limits.tick_interval): a writer with time-driven work
        (checkpoints, seals) does it on time even while idle."""

    def ingest_records(self) -> FileRecords | None:
        """Where ``analyze`` remembers the files earlier runs read, when kept in this store (a
        shared store's table, per writer); None: beside the store (pipeline/ingested.py)."""
        return None

    def integrity_status(self) -> dict[str, Any] | None:
        """The tamper-evident layer's state for the web UI (api/integrity.py's report keys);
        None: this store keeps none."""
        return None

    def inclusion_proof(self, seq: int) -> dict[str, Any] | None:
        """A proof that event ``seq`` is in the latest checkpoint; None when there is none."""
        return None

    def event_histogram(self, start: datetime, until: datetime, step: int) -> list[tuple[Any, ...]] | None:
        """Stored events per (host, service, bucket of ``step`` seconds from ``start``) up to
        ``until``, as (host, service, index, count) rows; None: the caller counts a scan of
        ``search_events`` (api/stats.py)."""
        return None

    def record_admin(self, event: Event) -> int | None:
        """Put an admin action's event in the log (``admin.record_admin_action``); its seq, or
        None when it is queued for the appender (the embedded store's admin outbox)."""
        seqs = self.append_events([event])
        self.flush()
        return seqs[0]

    @abstractmethod
    def append_events(self, events: Sequence[Event]) -> list[int]:
        """Append events and return their sequence numbers, in order. Writes are buffered:
        they are durable (and visible to other connections) once ``flush()`` returns."""

    @abstractmethod
    def flush(self) -> None:
        """Write and commit everything buffered."""

    def commit(self) -> None:
        """Alias of ``flush()``."""
        self.flush()

    def stage_partition_state(self, partition: str, position: dict[str, Any], state: bytes | None) -> None:
        """A cluster partition's checkpoint (its analyzer's detection state and position: the
        last batch taken from each collector), committed by the next ``flush`` in the same
        transaction as the events appended before it (cluster/analyzer.py); ``state`` None
        keeps the last state and updates the position. A backend that cannot serve an
        analyzer says so."""
        raise StoreError(f"the {type(self).__name__} store keeps no cluster partition state")

    def partition_state(self, partition: str) -> tuple[dict[str, Any], bytes] | None:
        """The last committed checkpoint of ``partition``: (position, state), None if none."""
        return None

    def claim_partition(self, partition: str) -> int:
        """Take ``partition``'s next ownership epoch (an analyzer becoming its active consumer,
        before it loads the checkpoint) and fence this store's later writes with it: each
        commit of events, alerts or the checkpoint is refused (``fencing.PartitionFenced``,
        nothing of it stored) once another store claimed the partition (store/fencing.py)."""
        raise StoreError(f"the {type(self).__name__} store keeps no cluster partition state")

    @abstractmethod
    def get_events(self, seqs: Sequence[int], *, scope: Scope | None = None) -> list[StoredEvent]:
        """The stored events with these seqs, in seq order; unknown seqs (and, with ``scope``,
        events outside it) are left out."""

    @abstractmethod
    def search_events(self, query: EventQuery) -> list[StoredEvent]:
        """Events matching ``query``, by event time (then seq), newest first unless asked."""

    def holding_search(self, query: EventQuery, *, estimate: bool = False) -> AbstractContextManager[None]:
        """A block whose reads of ``query`` (hits, count, bounds, histogram, top values) may
        share work a store can do once, such as the full-text lookup; results are the same,
        except that with ``estimate`` a store may answer the count, bounds, histogram and top
        values of a query with too many hits to find fast from a sample of them (then
        ``counts_estimated`` says so); the page of hits is always exact."""
        return nullcontext()

    def counts_estimated(self, query: EventQuery) -> bool:
        """Inside ``holding_search(query, estimate=True)``: whether its counts are estimates."""
        return False

    def tail_cursor(self, events: Sequence[StoredEvent], after: int | None) -> int | None:
        """Where a live tail polls next (``EventQuery.after_seq``) once it has ``events``, the
        result of a poll after ``after`` (None: a first search). Here seqs grow in commit order,
        so it is the newest seq got; the shared store's ids do not (a log per writer): its
        cursor is a commit position (store/postgres/ticks.py)."""
        return max((e.seq for e in events), default=after)

    def login_attempts(self) -> Any | None:
        """The keystone login attempts correlated at ingest (an object with the functions of
        ``store.sqlite_attempts``' reading part bound to this store), or None when the backend
        keeps none (the analytics then correlate the stored events themselves)."""
        return None

    def count_events(self, query: EventQuery) -> int:
        """How many events match ``query`` (its limit and offset aside)."""
        raise StoreError(f"{type(self).__name__} cannot count search hits")

    def event_time_bounds(self, query: EventQuery) -> tuple[datetime, datetime] | None:
        """The first and last matching event time, None when nothing matches."""
        raise StoreError(f"{type(self).__name__} cannot bound search hits in time")

    def hit_histogram(self, query: EventQuery, start: datetime, step: timedelta, size: int) -> list[int]:
        """Matching events per bucket: ``size`` buckets of ``step`` from ``start``."""
        raise StoreError(f"{type(self).__name__} cannot count search hits over time")

    def top_values(self, query: EventQuery, fields: Sequence[str], *, sample: int = 10_000,
                   limit: int = 5) -> dict[str, list[tuple[str, int]]]:
        """The commonest values of each field among the newest ``sample`` matching events."""
        raise StoreError(f"{type(self).__name__} cannot count field values")

    @abstractmethod
    def upsert_alerts(self, alerts: Iterable[Alert]) -> list[int]:
        """Insert alerts, or fold them into the stored alert with the same ``(rule, key)``.
        Returns the alert ids. Folding keeps the earliest ``time``, the latest ``last_seen``,
        the larger ``count`` (the engine's alert is cumulative), the newest descriptive
        fields, and merges evidence by ``ref``. The stored status is kept (an operator's
        acknowledgement survives further firing), except that an incoming ``resolved`` (the
        engine resolved it) resolves it, and a resolved alert firing again after
        its stored ``last_seen`` is reopened; both changes are recorded in the history."""

    @abstractmethod
    def set_alert_status(self, alert_id: int, status: str, *, actor: str,
                         comment: str | None = None) -> StoredAlert:
        """Change an alert's status (or just comment on it) and record who did it.
        Raises NotFoundError for an unknown id and QueryError for an unknown status."""

    @abstractmethod
    def set_alerts_status(self, alert_ids: Sequence[int], status: str, *, actor: str,
                          comment: str | None = None) -> list[StoredAlert]:
        """``set_alert_status`` for many alerts in one transaction; the alerts changed, in the
        order asked (unknown ids are left out)."""

    @abstractmethod
    def set_alert_assignee(self, alert_id: int, assignee: str | None, *, actor: str) -> StoredAlert:
        """Assign an alert to ``assignee`` (None: nobody), recorded in its history.
        Raises NotFoundError for an unknown id."""

    @abstractmethod
    def count_alerts(self, query: AlertQuery | None = None) -> int:
        """How many alerts match ``query`` (its limit and offset ignored)."""

    @abstractmethod
    def create_silence(self, rule: str, key: str, *, ends: datetime, actor: str, reason: str) -> Silence:
        """Mute ``rule`` (and ``key``; '' for every key) until ``ends``. Alerts it matches are
        marked silenced at once and at every later firing while it lasts."""

    @abstractmethod
    def expire_silence(self, silence_id: int, *, actor: str) -> Silence:
        """End a silence now (it stays listed). NotFoundError for an unknown id."""

    @abstractmethod
    def delete_silence(self, silence_id: int) -> Silence:
        """Remove a silence; returns it as it was. NotFoundError for an unknown id."""

    @abstractmethod
    def silences(self) -> list[Silence]:
        """Every silence, newest first."""

    @abstractmethod
    def get_alert(self, alert_id: int, *, scope: Scope | None = None) -> StoredAlert | None:
        """One alert with its evidence and full history; None when unknown (or, with
        ``scope``, outside it)."""

    @abstractmethod
    def alerts(self, query: AlertQuery | None = None) -> list[StoredAlert]:
        """Alerts matching ``query``, most recently seen first."""

    @abstractmethod
    def source_stats(self) -> list[SourceStats]:
        """Every source (host + service) seen, sorted by host and service."""

    @abstractmethod
    def counts(self) -> StoreCounts: ...

    @abstractmethod
    def close(self) -> None:
        """Flush and close. Closing twice is harmless; any other use after close raises."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
