"""`stackwatch analyze`: archives -> events -> store + detection -> alerts."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from stackwatch.core.alert import Alert
from stackwatch.core.event import Event
from stackwatch.core.types import DetectionEngine
from stackwatch.parsers.base import RecordGate
from stackwatch.pipeline import ingest
from stackwatch.pipeline.ingested import stored_before
from stackwatch.pipeline.reader import InflateLimits, InputFile, ReadProgress, read_event_batches
from stackwatch.pipeline.ties import in_tie_order
from stackwatch.pipeline.workers import ReaderPool

if TYPE_CHECKING:  # the store package is imported by whoever opens one
    from stackwatch.store.base import Store

STORE_BATCH = 5000

STORE_BATCH_BYTES = 16 << 20
"""A store batch is also written and committed once this much input was read since the last
one, so 5000 records of megabytes each (over-long lines) are never held whole, here or in the
store's own row buffer."""


@dataclass(slots=True)
class AnalyzeResult:
    progress: ReadProgress
    alerts: list[Alert] = field(default_factory=list)
    stored: int = 0
    already_stored: int = 0  # events an earlier run stored (see ingested.py): not appended again
    interrupted: bool = False  # stopped early (SIGTERM/SIGINT): what was read is stored and sealed
    signal: int = 0  # the signal that stopped it


def analyze(inputs: list[InputFile], *, engine: DetectionEngine, store: Store | None = None,
            on_progress: Callable[[ReadProgress], None] | None = None,
            progress_every: int = 20000, inflate: InflateLimits | None = None,
            stop: threading.Event | None = None, stored_before: dict[str, int] | None = None,
            jobs: int = 1, pool: ReaderPool | None = None, received: datetime | None = None,
            prefilter: bool = True) -> AnalyzeResult:
    """Run every record of ``inputs`` (in event-time order) through ``engine`` and into
    ``store``. Returns the final, deduplicated alerts. ``stored_before`` (origin -> lines,
    from ``IngestLedger.prepare``) names records an earlier run stored: they are detected on
    again but not appended twice.

    Events come a list at a time: a list in which no store batch fills up and no progress
    report falls due is run through the engine with no per-event bookkeeping; the list that
    holds such a point is taken event by event, so the store and the progress display are
    called after exactly the same events as they would be one event at a time.

    ``stop`` (set by a signal handler) ends the reading between two lists of events: what was
    read is then stored, the engine finished and ``result.interrupted`` set.

    ``jobs`` > 1: files are read and parsed in that many worker processes (``pool``, when
    the caller started one before opening the store, see workers.ReaderPool); the events
    reach the engine and the store in the same order as with one. ``received``: the receive
    time every event gets (default: now; a test fixes it to compare two runs).

    ``prefilter``: records no loaded rule can use are given only their header (parsers/lazy.py,
    detect/prefilter.py) where nothing else reads them: without a store, or into a store
    that takes header events (``takes_header_events``: it completes them itself, e.g. at
    indexing time); in one process (a header event does not cross the workers' pipe).
    Alerts are the same either way (tests/detect/test_prefilter.py)."""
    own_pool = pool is None and jobs > 1 and any(source.path is not None for source in inputs)
    if own_pool:
        pool = ReaderPool(min(jobs, sum(source.path is not None for source in inputs)))
    try:
        gate = None
        if prefilter and pool is None and (store is None or store.takes_header_events):
            from stackwatch.detect.prefilter import prefilter_for

            gate = prefilter_for(engine)
        return _analyze(inputs, engine, store, on_progress, progress_every, inflate, stop,
                        stored_before, pool, received, gate)
    finally:
        if own_pool and pool is not None:
            pool.close()


def _analyze(inputs: list[InputFile], engine: DetectionEngine, store: Store | None,
             on_progress: Callable[[ReadProgress], None] | None, progress_every: int,
             inflate: InflateLimits | None, stop: threading.Event | None,
             stored_before: dict[str, int] | None, pool: ReaderPool | None,
             received: datetime | None, gate: RecordGate | None) -> AnalyzeResult:
    progress = ReadProgress()
    result = AnalyzeResult(progress)
    process = engine.process
    batch: list[Event] = []
    append: Callable[[list[Event]], object] | None = store.append_events if store is not None else None
    if append is not None and stored_before:
        append = _fresh_only(append, stored_before, result)
    count = 0
    written_at = 0  # progress.read_bytes when the last store batch was written
    for events in in_tie_order(read_event_batches(inputs, progress, inflate, pool, received, gate)):
        if stop is not None and stop.is_set():
            result.interrupted = True
            break
        if append is not None and batch and progress.read_bytes - written_at >= STORE_BATCH_BYTES:
            append(batch)
            store.flush()  # type: ignore[union-attr]  # the store buffers rows too
            result.stored += len(batch)
            batch = []
            written_at = progress.read_bytes
        if count + len(events) < _next_stop(count, len(batch), append is not None,
                                            on_progress is not None, progress_every):
            for event in events:
                process(event)
            if append is not None:
                batch += events
            count += len(events)
            continue
        for event in events:
            count += 1
            process(event)
            if append is not None:
                batch.append(event)
                if len(batch) >= STORE_BATCH:
                    append(batch)
                    result.stored += len(batch)
                    batch = []
                    written_at = progress.read_bytes
            if on_progress is not None and count % progress_every == 0:
                on_progress(progress)
    engine.finish()
    alerts = sorted(engine.alerts(), key=lambda a: (a.time, a.rule, a.key))
    if store is not None and append is not None:  # append is None exactly when store is
        if batch:
            append(batch)
            result.stored += len(batch)
        ingest.commit(store, [], alerts, statuses=False)  # the one commit path (pipeline/ingest.py)
    result.stored -= result.already_stored
    result.alerts = alerts
    if on_progress is not None:
        on_progress(progress)
    return result


def _next_stop(count: int, batched: int, storing: bool, reporting: bool, progress_every: int) -> float:
    """The event count at which the store batch fills up or a progress report is due."""
    stop = float("inf")
    if storing:
        stop = count + STORE_BATCH - batched
    if reporting:
        stop = min(stop, (count // progress_every + 1) * progress_every)
    return stop


def _fresh_only(append: Callable[[list[Event]], object], stored: dict[str, int],
                result: AnalyzeResult) -> Callable[[list[Event]], None]:
    """``append`` for the events no earlier run stored; the others are counted."""
    def append_fresh(events: list[Event]) -> None:
        fresh = [event for event in events if not stored_before(event, stored)]
        result.already_stored += len(events) - len(fresh)
        if fresh:
            append(fresh)
    return append_fresh
