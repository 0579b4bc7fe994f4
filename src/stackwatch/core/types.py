"""The seams every layer is typed against: what the pipeline calls on a parser, a detection
engine, a live source, an alert sink and the store, as structural Protocols.

They are structural so nothing has to inherit from them (parsers are plain module-level
objects, the engine a concrete class the orphan and tenant engines wrap) and so ``core`` depends
on no other stackwatch package: the few names from elsewhere are for the type checker only.
None of them is ``runtime_checkable``: an ``isinstance`` against a Protocol inspects every
member on each call, which the hot paths cannot afford (``OrphanAware``, which ``detect``
checks, is an ABC the orphan-aware engine registers with); what a store may or may not do is
declared on the store classes instead (``store/base.Store``: ``tick``, ``data_dir``,
``takes_header_events``, ``ingest_records``, ``record_admin``, ``integrity_status``,
``inclusion_proof``, ``event_histogram``, each present on every store, doing nothing where not
needed)."""

from __future__ import annotations

from abc import ABC
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from stackwatch.core.alert import Alert
from stackwatch.core.event import Event

if TYPE_CHECKING:
    from stackwatch.alerts.base import Notification
    from stackwatch.detect.engine import EngineStats
    from stackwatch.parsers.base import ParseContext
    from stackwatch.sources.base import Record
    from stackwatch.store.base import AlertQuery, EventQuery, Silence, SourceStats, StoredAlert, StoredEvent


# -- parsers (parsers/registry.py hands these out) ------------------------------------------


class RecordParser(Protocol):
    """A record format. A parser whose records are always one line (``continues`` can never
    return True) says so with a class attribute ``multiline = False``: the framing then
    skips the ``continues`` call on every following line. Without it, True is assumed."""

    name: str  # the format name; also the Event.kind it produces by default

    def sniff(self, line: str) -> bool:
        """Cheap check: may ``line`` start a record of this format?"""
        ...

    def continues(self, first: str, line: str) -> bool:
        """Does ``line`` belong to the record that started with ``first``?"""
        ...

    def parse(self, lines: list[str], ctx: ParseContext) -> list[Any]:
        """Turn one record (its lines) into one or more Events."""
        ...


class MessageParser(Protocol):
    """A program's messages. One whose ``parse_message`` result depends on its arguments
    only (no state, no clock) may say so with a class attribute ``memoizable = True``: the
    syslog parser then parses a message repeated word for word once, and shares the result
    (which no caller changes)."""

    name: str
    programs: frozenset[str]  # program names (syslog TAG without pid) this parser handles

    def parse_message(self, program: str, message: str) -> dict[str, Any] | None:
        """Extra Event fields recognised in ``message`` (action, outcome, initiator,
        target, severity, attrs...), or None when the message says nothing special."""
        ...


# -- detection ------------------------------------------------------------------------------


class DetectionEngine(Protocol):
    """The detection engine as ``analyze``, ``serve``'s runner and the spike baselines see it:
    detect.engine.Engine, respond/orphans.OrphanAwareEngine, pipeline/tenants'
    TenantPartitionedEngine. Each call returns the alerts it created or changed (the engine
    keeps mutating them); ``created`` tells which, for the last call's alerts."""

    def process(self, event: Event) -> list[Alert]: ...

    def tick(self, now: datetime | None = None) -> list[Alert]:
        """Advance the clock (absence and window rules fire on time, not only on events)."""
        ...

    def finish(self) -> list[Alert]:
        """The end of the input: open windows are closed."""
        ...

    def alerts(self) -> list[Alert]: ...

    def created(self, alert: Alert) -> bool:
        """Whether the last call created ``alert`` (one it returned), else updated or resolved it."""
        ...

    def live_from(self, start: datetime) -> None:
        """Declared sources count as silent from ``start`` (serve's start), not earlier."""
        ...

    def detectors(self) -> Sequence[tuple[Any, Any]]:
        """(rule, detector) of every rule (the spike baselines pick their detectors here)."""
        ...

    @property
    def stats(self) -> EngineStats:
        """Counters the monitor's metrics report (pipeline/monitor_http.py)."""
        ...


class OrphanLedger(Protocol):
    """What ``detect`` reads of the orphan detector that rides along the engine
    (respond/orphans.OrphanDetector), so ``detect`` needs no import of ``respond``."""

    @property
    def watched(self) -> frozenset[str]:
        """The actions whose events it reads (the prefilter keeps those records parsed)."""
        ...

    def state(self) -> tuple[Any, ...]:
        """What events changed, for a partition's checkpoint (detect/snapshot.py)."""
        ...

    def load_state(self, state: tuple[Any, ...]) -> None:
        """Take back ``state`` into a detector freshly made."""
        ...


class OrphanAware(ABC):
    """An engine with the orphan detector riding along: respond/orphans.OrphanAwareEngine,
    registered (``OrphanAware.register``), so ``detect`` tells it by ``isinstance`` without
    importing ``respond``. Not a runtime-checkable Protocol: that ``isinstance`` costs ~14 µs
    (Python 3.11) against ~0.3 µs for an ABC's cached one, once a checkpoint."""

    orphans: OrphanLedger


# -- live sources and alert sinks -----------------------------------------------------------


class Source(Protocol):
    """A live source as the runner drives it (sources/base.Source implements it)."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def decode(self, records: list[Record]) -> list[Event]: ...

    def checkpoint(self) -> Any: ...

    async def commit(self, token: Any) -> None: ...

    def idle(self, now: float) -> list[Event]: ...

    def delivery_delay(self) -> float: ...


class Sink(Protocol):
    """An alert delivery channel (alerts/base.Sink implements it); ``send`` raises on failure."""

    name: str

    async def send(self, note: Notification) -> None: ...

    async def close(self) -> None: ...


# -- the store ------------------------------------------------------------------------------


class EventLog(Protocol):
    """Where a response action, a decision or a refusal is recorded as an event (respond/)."""

    def append_events(self, events: Sequence[Event]) -> list[int]: ...

    def flush(self) -> None: ...


class ResponseStore(EventLog, Protocol):
    """The part of the store the respond commands use: the store itself, the command line's
    respond/recorder.SpoolingRecorder, or serve's queue of writes a worker thread hands to the
    runner's loop (pipeline/runner._QueuedWrites)."""

    def alerts(self, query: AlertQuery | None = None) -> Sequence[StoredAlert]: ...


class SweepStore(ResponseStore, Protocol):
    """A reconciliation sweep's store: it also folds the orphans it found into alerts."""

    def upsert_alerts(self, alerts: Iterable[Alert]) -> list[int]: ...


class StoreReads(Protocol):
    """The store's reads, as a web request may make them (api/scoped.store_of): the store itself,
    api/scoped's ``InfrastructureStore`` (without tenants' instances) or ``ScopedStore`` (one
    tenant's project) offer all of it; what reads through it (search/run.py, api/stats.py,
    api/analytics.py...) works on any of them. The writes are the store's only."""

    def search_events(self, query: EventQuery) -> list[StoredEvent]: ...

    def count_events(self, query: EventQuery) -> int: ...

    def event_time_bounds(self, query: EventQuery) -> tuple[datetime, datetime] | None: ...

    def hit_histogram(self, query: EventQuery, start: datetime, step: timedelta, size: int) -> list[int]: ...

    def top_values(self, query: EventQuery, fields: Sequence[str], *, sample: int = 10_000,
                   limit: int = 5) -> dict[str, list[tuple[str, int]]]: ...

    def holding_search(self, query: EventQuery, *,
                       estimate: bool = False) -> AbstractContextManager[None]: ...

    def counts_estimated(self, query: EventQuery) -> bool: ...

    def get_events(self, seqs: Sequence[int]) -> list[StoredEvent]: ...

    def event_histogram(self, start: datetime, until: datetime,
                        step: int) -> Iterable[tuple[Any, ...]] | None: ...

    def source_stats(self) -> list[SourceStats]: ...

    def alerts(self, query: AlertQuery | None = None) -> list[StoredAlert]: ...

    def count_alerts(self, query: AlertQuery | None = None) -> int: ...

    def get_alert(self, alert_id: int) -> StoredAlert | None: ...

    def silences(self) -> list[Silence]: ...

    def tail_cursor(self, events: Sequence[StoredEvent], after: int | None) -> int | None: ...

    def login_attempts(self) -> Any | None: ...


FileRecord = tuple[int, int, bytes]
"""What a run read of a file: (text bytes, lines, SHA-256 of those bytes)."""


class FileRecords(Protocol):
    """Where ``analyze`` remembers the files earlier runs read (pipeline/ingested.py): a file
    beside an embedded store, a shared store's table (``Store.ingest_records``)."""

    def get(self, path: str) -> FileRecord | None: ...

    def put(self, records: list[tuple[str, int, int, bytes]]) -> None: ...

    def close(self) -> None: ...
