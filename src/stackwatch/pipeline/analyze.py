"""`stackwatch analyze`: archives -> events -> store + detection -> alerts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from stackwatch.core.alert import Alert
from stackwatch.core.event import Event
from stackwatch.pipeline.reader import InputFile, ReadProgress, read_events

STORE_BATCH = 5000


@dataclass(slots=True)
class AnalyzeResult:
    progress: ReadProgress
    alerts: list[Alert] = field(default_factory=list)
    stored: int = 0


def analyze(inputs: list[InputFile], *, engine: object, store: object | None = None,
            on_progress: Callable[[ReadProgress], None] | None = None,
            progress_every: int = 20000) -> AnalyzeResult:
    """Run every record of ``inputs`` (in event-time order) through ``engine`` and into
    ``store``. Returns the final, deduplicated alerts."""
    progress = ReadProgress()
    result = AnalyzeResult(progress)
    process = engine.process  # type: ignore[attr-defined]
    batch: list[Event] = []
    append = store.append_events if store is not None else None  # type: ignore[attr-defined]
    for count, event in enumerate(read_events(inputs, progress), 1):
        process(event)
        if append is not None:
            batch.append(event)
            if len(batch) >= STORE_BATCH:
                append(batch)
                result.stored += len(batch)
                batch = []
        if on_progress is not None and count % progress_every == 0:
            on_progress(progress)
    engine.finish()  # type: ignore[attr-defined]
    alerts = sorted(engine.alerts(), key=lambda a: (a.time, a.rule, a.key))  # type: ignore[attr-defined]
    if append is not None:
        if batch:
            append(batch)
            result.stored += len(batch)
        store.upsert_alerts(alerts)  # type: ignore[union-attr]
        store.flush()  # type: ignore[union-attr]
    result.alerts = alerts
    if on_progress is not None:
        on_progress(progress)
    return result
