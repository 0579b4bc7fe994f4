"""Delivering alert changes: route, throttle, queue per sink, retry with exponential
backoff, and keep what could not be delivered in a dead-letter file (JSON lines) so that
nothing vanishes silently. One slow or broken sink never delays the others or the pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from stackwatch.alerts.base import Notification, Sink
from stackwatch.alerts.routing import Router
from stackwatch.alerts.throttle import Throttle
from stackwatch.core.alert import Alert, AlertSnapshot

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SinkCounters:
    sent: int = 0
    failed: int = 0  # given up after every retry (dead-lettered)
    retried: int = 0
    throttled: int = 0
    dropped: int = 0  # queue full (dead-lettered)


class Dispatcher:
    def __init__(
        self, sinks: list[Sink], router: Router, throttle: Throttle, dead_letter: str | Path | None = None
    ) -> None:
        self.sinks = {sink.name: sink for sink in sinks}
        self.router = router
        self.throttle = throttle
        self.dead_letter = Path(dead_letter) if dead_letter else None
        self.counters = {name: SinkCounters() for name in self.sinks}
        self.queues: dict[str, asyncio.Queue[Notification]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for name, sink in self.sinks.items():
            self.queues[name] = asyncio.Queue(sink.settings.queue_size)
            self._tasks.append(asyncio.create_task(self._worker(sink), name=f"sink:{name}"))

    def submit(
        self, alert: Alert | AlertSnapshot, change: str, alert_id: int | None = None, status: str = "open"
    ) -> list[str]:
        """Queue ``change`` (new / update / resolved) of ``alert`` for its routed sinks;
        returns the sinks it was queued for."""
        note: Notification | None = None
        queued = []
        for name in self.router.route(alert.category, alert.severity):
            counters = self.counters.get(name)
            if counters is None:
                continue
            if not self.throttle.allow(name, alert.rule, alert.key, change, status):
                counters.throttled += 1
                continue
            if note is None:
                note = Notification.of(change, alert, alert_id)
            try:
                self.queues[name].put_nowait(note)
                queued.append(name)
            except asyncio.QueueFull:
                counters.dropped += 1
                self._dead(name, note, "queue full")
        return queued

    def pending(self) -> int:
        return sum(queue.qsize() for queue in self.queues.values())

    async def _worker(self, sink: Sink) -> None:
        queue = self.queues[sink.name]
        while True:
            note = await queue.get()
            try:
                await self._deliver(sink, note)
            finally:
                queue.task_done()

    async def _deliver(self, sink: Sink, note: Notification) -> None:
        settings = sink.settings
        counters = self.counters[sink.name]
        delay = float(settings.backoff)
        for attempt in range(settings.retries + 1):
            try:
                await asyncio.wait_for(sink.send(note), float(settings.timeout))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any delivery failure is retried, then dead-lettered
                error = f"{type(exc).__name__}: {exc}"
                if attempt == settings.retries:
                    counters.failed += 1
                    log.warning(
                        "sink %s: giving up on alert %s: %s", sink.name, note.alert.rule, error
                    )
                    self._dead(sink.name, note, error)
                    return
                counters.retried += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, float(settings.backoff_max))
            else:
                counters.sent += 1
                return

    def _dead(self, sink: str, note: Notification, error: str) -> None:
        if self.dead_letter is None:
            return
        try:
            self.dead_letter.parent.mkdir(parents=True, exist_ok=True)
            line = orjson.dumps({"sink": sink, "error": error, "notification": note.document()}) + b"\n"
            fd = os.open(self.dead_letter, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError as exc:
            log.error("cannot write the dead-letter file %s: %s", self.dead_letter, exc)

    async def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (within ``timeout``), dead-letter the rest, close the sinks."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(q.join() for q in self.queues.values())), timeout)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for name, queue in self.queues.items():
            while not queue.empty():
                self._dead(name, queue.get_nowait(), "not delivered before shutdown")
        for sink in self.sinks.values():
            with contextlib.suppress(Exception):
                await sink.close()
