"""The monitor watching itself: alerts (category ``logging.silence``, service ``stackwatch``)
when input is dropped, when no source delivers anything at all, and when the pipeline
stalls; plus the ``/metrics`` and ``/healthz`` listener."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from stackwatch.core.alert import Alert

if TYPE_CHECKING:
    from stackwatch.pipeline.runner import Runner

_NS = uuid.UUID("6c1e9f4e-5c55-4c39-9d7e-2f0b6a1c8e11")
RULE_DROPPED = str(uuid.uuid5(_NS, "stackwatch.selfmon.dropped"))
RULE_INPUT_SILENCE = str(uuid.uuid5(_NS, "stackwatch.selfmon.input_silence"))
RULE_STALLED = str(uuid.uuid5(_NS, "stackwatch.selfmon.stalled"))
CATEGORY = "logging.silence"
WATCHDOG_PERIOD = 0.5


def _now(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class SelfMonitor:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.limits = runner.limits
        self.hostname = runner.settings.hostname
        self.last_input = time.time()
        self._received = -1
        self._dropped: dict[str, int] = {}
        self._next_drop_check = time.time() + float(self.limits.drop_check_interval)
        self._open: dict[str, Alert] = {}  # key -> open internal alert
        self.stalled_since: float | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._http: object | None = None

    async def start(self) -> None:
        self._watchdog = asyncio.create_task(self._watch(), name="watchdog")
        listen = self.runner.settings.listen
        if listen.metrics is not None and listen.metrics_token is not None:
            from stackwatch.pipeline.monitor_http import MonitorHTTP

            http = MonitorHTTP(self.runner, listen.metrics, listen.metrics_token.value)
            await http.start()
            self._http = http

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self._http is not None:
            await self._http.stop()  # type: ignore[attr-defined]

    @property
    def http_address(self) -> tuple[str, int] | None:
        return getattr(self._http, "address", None)

    def _raise(
        self,
        key: str,
        rule: str,
        title: str,
        summary: str,
        now: float,
        severity: str = "high",
        immediate: bool = False,
        **details: object,
    ) -> None:
        alert = self._open.get(key)
        if alert is None:
            alert = Alert(
                rule=rule,
                title=title,
                category=CATEGORY,
                severity=severity,
                time=_now(now),
                last_seen=_now(now),
                key=key,
                host=self.hostname,
                service="stackwatch",
                summary=summary,
                details=dict(details),
            )
            self._open[key] = alert
        else:
            alert.count += 1
            alert.last_seen = _now(now)
            alert.summary = summary
            alert.details.update(details)
        self._emit(alert, immediate)

    def _resolve(self, key: str, now: float, immediate: bool = False) -> None:
        alert = self._open.pop(key, None)
        if alert is not None:
            alert.status = "resolved"
            alert.details["resolved_at"] = _now(now).isoformat()
            self._emit(alert, immediate)

    def _emit(self, alert: Alert, immediate: bool) -> None:
        runner = self.runner
        new = alert.count == 1  # raised once so far: created by this raise (each raise counts)
        if immediate:  # the pipeline may be stuck: deliver now, store with the next commit
            change = "resolved" if alert.status == "resolved" else ("new" if new else "update")
            runner.dispatcher.submit(alert, change)
        runner._alerts([alert], [new], dispatch=not immediate)

    def check(self, now: float) -> None:
        """Called by the worker every tick."""
        runner = self.runner
        received = sum(s.counters.received for s in runner.sources)
        if received != self._received:
            self._received = received
            self.last_input = now
            self._resolve("input", now)
        silence = float(self.limits.input_silence)
        if silence and runner.sources and now - self.last_input >= silence and "input" not in self._open:
            self._raise(
                "input",
                RULE_INPUT_SILENCE,
                "stackwatch receives no input at all",
                f"no source delivered anything for {int(now - self.last_input)} s "
                f"({', '.join(s.name for s in runner.sources)})",
                now,
                silent_for=int(now - self.last_input),
            )
        if now >= self._next_drop_check:
            self._next_drop_check = now + float(self.limits.drop_check_interval)
            for source in runner.sources:
                source.refresh_counters()
                counters = source.counters
                dropped = counters.dropped
                before = self._dropped.get(source.name, 0)
                if dropped > before:
                    self._dropped[source.name] = dropped
                    self._raise(
                        f"dropped|{source.name}",
                        RULE_DROPPED,
                        "stackwatch dropped input records",
                        f"{dropped - before} records from source {source.name} were dropped since the last "
                        f"check; {dropped} in total: {counters.dropped_kernel} by the kernel (receive buffer "
                        f"full), {counters.dropped_queue_full} with the queue full, {counters.dropped_rate} "
                        "over the rate limit",
                        now,
                        source=source.name,
                        dropped=dropped,
                        dropped_since_last_check=dropped - before,
                        dropped_kernel=counters.dropped_kernel,
                        dropped_queue_full=counters.dropped_queue_full,
                        dropped_rate=counters.dropped_rate,
                    )

    def stalled(self, seconds: float) -> None:
        """The worker just came back from one turn that took ``seconds`` (it held the loop)."""
        now = time.time()
        if "stalled" not in self._open:
            self._raise(
                "stalled",
                RULE_STALLED,
                "stackwatch pipeline stalled",
                f"the pipeline made no progress for {seconds:.1f} s",
                now,
                severity="critical",
                immediate=True,
                stalled_for=round(seconds, 3),
            )
        self.stalled_since = None
        self._resolve("stalled", now, immediate=True)

    async def _watch(self) -> None:
        """Notices a pipeline that makes no progress (or a blocked event loop) for ``stall_after``."""
        stall_after = float(self.limits.stall_after)
        expected = time.monotonic() + WATCHDOG_PERIOD
        while True:
            await asyncio.sleep(WATCHDOG_PERIOD)
            mono = time.monotonic()
            lag = mono - expected
            expected = mono + WATCHDOG_PERIOD
            idle = mono - self.runner.last_progress
            now = time.time()
            if idle >= stall_after or lag >= stall_after:
                gap = max(idle, lag)
                if self.stalled_since is None:
                    self.stalled_since = now - gap
                    self._raise(
                        "stalled",
                        RULE_STALLED,
                        "stackwatch pipeline stalled",
                        f"the pipeline made no progress for {gap:.1f} s",
                        now,
                        severity="critical",
                        immediate=True,
                        stalled_for=round(gap, 3),
                    )
            elif self.stalled_since is not None:
                self.stalled_since = None
                self._resolve("stalled", now, immediate=True)

    def healthy(self) -> bool:
        return time.monotonic() - self.runner.last_progress < float(self.limits.stall_after)
