"""The live runner behind ``stackwatch serve``: sources -> fair worker -> detection -> store
-> acknowledgements and alert delivery.

* Every source has its own bounded queue. The worker takes at most ``fair_quantum`` records
  from each non-empty queue in turn (the starting source rotates), so a flood on one source
  delays the others by at most one quantum.
* Parsing and detection run in the worker on the event loop; commits run in a thread (SQLite
  releases the GIL) while the worker goes on with the next batch. Commits are strictly in
  order; a batch is committed when it holds ``batch_size`` events or is ``commit_interval``
  old. Only after its commit are the batch's records acknowledged (AMQP ack, file offsets)
  and its alerts delivered, so an alert always points at stored evidence and nothing
  acknowledged can be lost. A failing store is retried; nothing is acknowledged meanwhile.
* The engine ticks on the wall clock every ``tick_interval``, so absence rules fire when
  nothing arrives; a ``monitor.heartbeat`` event (service ``stackwatch``) is injected every
  ``heartbeat_interval`` so a rule can watch the monitor itself. ``selfmon`` raises alerts
  for dropped input, a silent input and a stalled pipeline.
* SIGTERM (``stop``): sources stop reading, queued records are decoded and committed,
  acknowledged, and pending alerts delivered, within ``shutdown_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackwatch.alerts.dispatch import Dispatcher
from stackwatch.alerts.registry import create_sink
from stackwatch.alerts.routing import Router
from stackwatch.alerts.throttle import Throttle
from stackwatch.config.settings import Settings
from stackwatch.core.alert import Alert
from stackwatch.core.errors import StoreError
from stackwatch.core.event import Event, from_json
from stackwatch.core.types import DetectionEngine
from stackwatch.pipeline import baselines, ingest
from stackwatch.pipeline.selfmon import SelfMonitor
from stackwatch.sources.base import Source, SourceContext
from stackwatch.sources.fair import FairTurns, release_idle
from stackwatch.sources.registry import create_source
from stackwatch.sources.undecoded import malformed_events
from stackwatch.store.admin import AUDIT_SPOOL
from stackwatch.store.base import MAX_LIMIT, Store

if TYPE_CHECKING:  # the live engine is built (with its ledger) by pipeline/engine.py
    from stackwatch.respond.orphans import OrphanDetector

MAX_UNDECODED_RAW = 1 << 20
"""Characters of a record kept when its decoder failed (sources bound what they read anyway)."""

log = logging.getLogger(__name__)

TAKE_LIMIT = 2048
"""Records decoded per worker turn before the readers get the loop back."""
RESPONSE_FINISH = 10.0  # seconds a running sweep or countermeasure pass may take at shutdown


class _Batch:
    """Events waiting for one commit (their alert changes wait in the runner's AlertChanges)."""

    __slots__ = ("appended", "events", "oldest", "per_source", "started", "tokens")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.tokens: dict[Source, Any] = {}
        self.per_source: dict[str, int] = {}
        self.started = time.monotonic()
        self.oldest: float | None = None
        self.appended = False


class Runner:
    def __init__(
        self,
        settings: Settings,
        *,
        store: Store,
        engine: DetectionEngine,
        sources: list[Source] | None = None,
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self.settings = settings
        self.limits = settings.limits
        self.store = store
        self.engine = engine
        # the resource ledger of respond/orphans.OrphanAwareEngine (saved with the state), once
        self.orphans: OrphanDetector | None = getattr(engine, "orphans", None)
        self.wake = asyncio.Event()
        context = SourceContext(
            queue_size=self.limits.queue_size,
            wake=self.wake,
            state_dir=settings.state_dir,
            hostname=settings.hostname,
            recent_refs=self.recent_refs,
        )
        self.sources = (
            sources if sources is not None else [create_source(s, context) for s in settings.sources]
        )
        for source in self.sources:  # sources built elsewhere (tests) join the same wake-up
            source.queue.wake = self.wake
            source.context.recent_refs = source.context.recent_refs or self.recent_refs
        if dispatcher is None:
            sinks = [create_sink(s) for s in settings.sinks]
            dispatcher = Dispatcher(
                sinks,
                Router(settings.routing, [s.name for s in sinks]),
                Throttle(float(settings.throttle.update_interval), settings.throttle.max_per_minute),
                Path(settings.state_dir) / "dead-letter.jsonl",
            )
        self.dispatcher = dispatcher
        self.selfmon = SelfMonitor(self)
        self.started = time.time()
        self.stored_events = 0
        self.alert_changes: dict[tuple[str, str], int] = {}  # (category, severity) -> changes
        self.silenced_changes = 0  # alert changes stored but not delivered: a silence muted them
        self.last_commit = 0.0
        self.commit_lag = 0.0
        self.last_progress = time.monotonic()
        self.store_errors = 0
        self.malformed = 0  # records a source's decoder failed on, stored raw (sources/undecoded.py)
        self._batch = _Batch()
        self._future_tolerance = timedelta(seconds=float(self.limits.future_tolerance))
        self._commit_task: asyncio.Task[None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._stopping = False
        self._turns = FairTurns()  # where the next fair turn over the sources starts
        self._next_sweep = 0.0  # the first sweep runs at the first tick
        self._next_baselines = time.time() + float(self.limits.baselines_interval)
        self._sweep_task: asyncio.Task[None] | None = None
        self._state_task: asyncio.Task[None] | None = None  # the periodic snapshots' writer
        self._sweep_writes: _QueuedWrites | None = None
        self._next_counter = 0.0  # the countermeasure pass: its own cadence, no cloud needed
        self._counter_task: asyncio.Task[None] | None = None
        self._said_no_cloud = False  # the cloud actions skipped for want of respond.cloud: said once
        self._changes = ingest.AlertChanges()  # the engine's output as new / update / resolved
        self._recent: dict[str, set[str]] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        Path(self.settings.state_dir).mkdir(parents=True, exist_ok=True)
        await self.dispatcher.start()
        for source in self.sources:
            await source.start()
        self._worker = asyncio.create_task(self._work(), name="worker")
        await self.selfmon.start()

    async def stop(self) -> None:
        """Graceful shutdown: stop reading, drain, commit, acknowledge, deliver."""
        deadline = time.monotonic() + float(self.limits.shutdown_timeout)
        for source in self.sources:
            with contextlib.suppress(Exception):
                await source.stop()
        self._stopping = True
        self.wake.set()
        if self._worker is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._worker), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                log.error(
                    "shutdown: the pipeline did not drain in time; unacknowledged records will be redelivered"
                )
                self._worker.cancel()
        await self.selfmon.stop()
        await self.dispatcher.close(max(0.5, deadline - time.monotonic()))
        if self._state_task is not None:  # a periodic write under way finishes first
            await self._state_task
        if self.orphans is not None:  # the resource ledger survives restarts
            with contextlib.suppress(OSError):
                self.orphans.save(self.settings.state_dir)
        self._save_baselines()
        await asyncio.to_thread(self.store.close)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (or the worker dies: its exception is raised)."""
        await self.start()
        try:
            await self.wait(stop)
        finally:
            await self.stop()

    async def wait(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set; raises if the worker died (a bug: systemd restarts us)."""
        assert self._worker is not None
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({stopper, self._worker}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if self._worker in done and not self._stopping:
            self._worker.result()
            raise RuntimeError("the pipeline worker ended unexpectedly")

    # ------------------------------------------------------------------ the worker

    async def _work(self) -> None:
        limits = self.limits
        tick_every = float(limits.tick_interval)
        beat_every = float(limits.heartbeat_interval)
        # Declared sources (the monitor's own heartbeat) are silent from the service's start,
        # not from the claimed time of whichever record is decoded first: a year-less or
        # replayed stamp from months ago arriving before the first heartbeat made the next tick
        # find the heartbeat "silent" since then (test_future_clock, under load). The engine's
        # clock itself still follows the records and the wall-clock ticks, as before.
        self.engine.live_from(datetime.fromtimestamp(time.time(), UTC))
        next_tick = time.time() + tick_every
        next_beat = time.time()
        stall_after = float(limits.stall_after)
        while True:
            self.wake.clear()
            began = time.monotonic()
            took = self._take_fair(TAKE_LIMIT)
            for source, records in took:
                self._decode(source, records)
            now = time.time()
            release_idle(self.sources, now, self._add)
            if now >= next_tick:
                next_tick = now + tick_every
                ticked = self.engine.tick(datetime.fromtimestamp(now, UTC))
                self._alerts(ticked, [self.engine.created(alert) for alert in ticked])
                self.selfmon.check(now)
                self._drain_audit_spool()
                self._sweep_orphans(now)
                if now >= self._next_baselines:
                    self._next_baselines = now + float(self.limits.baselines_interval)
                    self._save_state()
                self._countermeasures(now)
                self.store.tick()  # an idle writer still checkpoints and seals on time
            if beat_every and now >= next_beat:
                next_beat = now + beat_every
                self._heartbeat(now)
            self.last_progress = time.monotonic()
            if self.last_progress - began >= stall_after:  # one turn held the loop that long
                self.selfmon.stalled(self.last_progress - began)
            batch = self._batch
            due = time.monotonic() - batch.started >= float(limits.commit_interval)
            if len(batch.events) >= limits.batch_size or (
                due and (batch.events or self._changes.pending or batch.tokens)
            ):
                await self._commit()
            if self._stopping and not any(len(s.queue) for s in self.sources):
                release_idle(self.sources, float("inf"), self._add)
                await self._finish_responses()
                await self._commit()
                if self._commit_task is not None:
                    await self._commit_task
                return
            if took:
                await asyncio.sleep(0)
            else:
                wait = max(
                    0.01,
                    min(
                        float(limits.commit_interval),
                        next_tick - time.time(),
                        next_beat - time.time() if beat_every else next_tick,
                    ),
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), wait)

    def _take_fair(self, budget: int) -> list[tuple[Source, list[Any]]]:
        return self._turns.take(self.sources, self.limits.fair_quantum, budget)

    def _decode(self, source: Source, records: list[Any]) -> None:
        batch = self._batch
        oldest = records[0].received
        if batch.oldest is None or oldest < batch.oldest:
            batch.oldest = oldest
        try:
            events = source.decode(records)
        except Exception as exc:
            # a decoder bug must not stop the monitor, nor lose the records: the source may have
            # moved past them already (a file's offset; RELP/AMQP acknowledgements are marked
            # pending by taken_undecoded), so they are stored raw, flagged malformed, and the
            # source's checkpoint covers them only with that commit
            log.exception("source %s failed to decode %d records; they are kept unparsed (malformed)",
                          source.name, len(records))
            source.counters.errors += 1
            with contextlib.suppress(Exception):  # the records are kept below whatever it says
                source.taken_undecoded(records)
            events = malformed_events(records, f"malformed:{source.name}@{int(self.started)}",
                                      self.settings.hostname, f"decoder failed: {type(exc).__name__}: {exc}",
                                      self.malformed + 1, MAX_UNDECODED_RAW)
            self.malformed += len(events)
        batch.tokens[source] = None  # checkpoint taken at the cut
        self._add(source, events)

    def _add(self, source: Source | None, events: list[Event]) -> None:
        if not events:
            return
        ingest.clamp(events, self._future_tolerance)
        batch = self._batch
        process, created = self.engine.process, self.engine.created
        changed: list[Alert] = []
        new: list[bool] = []
        for event in events:
            out = process(event)
            if out:  # which it created: the engine's answer holds until its next call
                changed += out
                new += map(created, out)
        batch.events.extend(events)
        if source is not None:
            source.counters.events += len(events)
            batch.per_source[source.name] = batch.per_source.get(source.name, 0) + len(events)
            batch.tokens.setdefault(source, None)
        if changed:
            self._alerts(changed, new)

    def _alerts(self, alerts: list[Alert], created: list[bool], dispatch: bool = True) -> None:
        """Record alert changes for the next commit (delivered after it); ``created[i]``: whether
        ``alerts[i]`` is a new alert (else an update, or resolved)."""
        self._changes.add(alerts, created, dispatch)

    def _save_baselines(self) -> None:
        """The spike rules' baselines to state_dir (pipeline/baselines.py), at stop."""
        try:
            baselines.save(self.engine, self.settings.state_dir)
        except OSError as exc:
            log.error("spike baselines not saved to %s: %s", self.settings.state_dir, exc)

    def _save_state(self) -> None:
        """The periodic save (limits.baselines_interval) of what must survive a kill -9 with
        minutes lost, not days: the spike rules' baselines and the orphan ledger. Both are
        snapshotted here, on the loop, between two events (a consistent state); encoding
        the baselines and writing both files (fsync included) is left to a thread, so a
        200k-key save does not pause ingestion. A write still under way skips this turn."""
        if self._state_task is not None and not self._state_task.done():
            return
        doc = baselines.snapshot(self.engine)
        ledger = self.orphans.snapshot() if self.orphans is not None else None
        if doc is not None or ledger is not None:
            self._state_task = asyncio.create_task(asyncio.to_thread(self._write_state, doc, ledger),
                                                   name="state-save")

    def _write_state(self, doc: dict[str, Any] | None, ledger: bytes | None) -> None:
        """In a thread: write what ``_save_state`` took; a failure is logged, the next turn retries."""
        state_dir = self.settings.state_dir
        if doc is not None:
            try:
                baselines.write(doc, state_dir)
            except OSError as exc:
                log.error("spike baselines not saved to %s: %s", state_dir, exc)
        if ledger is not None and self.orphans is not None:  # a ledger is only taken from one
            try:
                self.orphans.write(ledger, state_dir)
            except OSError as exc:
                log.error("orphan ledger not saved to %s: %s", state_dir, exc)

    def _sweep_orphans(self, now: float) -> None:
        """The periodic reconciliation sweep (respond.cloud, respond.sweep_interval): owners
        deleted while no notification was seen. It runs in a worker thread; what it writes is
        taken in here, on the loop."""
        self._take_queued_writes()
        policy = self.settings.respond
        cloud = getattr(policy, "cloud", None)
        if not cloud or now < self._next_sweep or (self._sweep_task and not self._sweep_task.done()):
            return
        self._next_sweep = now + float(policy.sweep_interval)
        writes = self._sweep_writes
        if writes is None:
            writes = self._sweep_writes = _QueuedWrites(self.store)
        known = [a for a in self.engine.alerts() if a.category == "identity.orphaned_resources"]
        self._sweep_task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(self._run_sweep, policy, writes, known), name="orphan-sweep")

    def _run_sweep(self, policy: Any, writes: _QueuedWrites, known: list[Alert]) -> None:
        from stackwatch.respond.approvals import ApprovalQueue
        from stackwatch.respond.openstack import Cloud
        from stackwatch.respond.reconcile import reconcile

        folder = self.store.data_dir or self.settings.state_dir
        try:
            queue = ApprovalQueue.open(folder, store=writes)
            report = reconcile(Cloud.connect(policy.cloud), policy, queue=queue, store=writes, alerts=known,
                               out=None, countermeasures=False)  # those run on their own cadence
            log.info("orphan sweep: %d orphaned owners confirmed, %d actions planned, %d queued",
                     len(report.orphans), len(report.planned), len(report.queued))
        except Exception as exc:  # the API may be down: say so, try again next interval
            log.error("orphan sweep against cloud %r failed: %s", policy.cloud, exc)

    def _take_queued_writes(self) -> None:
        writes = self._sweep_writes
        if writes is not None:
            if writes.events:
                taken = [writes.events.popleft() for _ in range(len(writes.events))]
                self._add(None, taken)
            if writes.new_alerts:  # the sweep's: a new alert object for each orphan it found
                found = [writes.new_alerts.popleft() for _ in range(len(writes.new_alerts))]
                self._alerts(found, [True] * len(found))

    async def _finish_responses(self) -> None:
        """At shutdown: a running sweep or countermeasure pass may finish (bounded), and what
        they recorded is committed with the last batch rather than lost."""
        running = [t for t in (self._sweep_task, self._counter_task) if t is not None and not t.done()]
        if running:
            await asyncio.wait(running, timeout=RESPONSE_FINISH)
        self._take_queued_writes()

    def _countermeasures(self, now: float) -> None:
        """The countermeasure pass (respond.countermeasures, every respond.countermeasure_interval):
        open alerts -> plan -> queue -> run what is due -> expire -> restore lost deny entries.
        deny_address needs no cloud, so this runs with or without respond.cloud; without it the
        cloud actions are reported only. A worker thread; its writes are taken in by
        ``_sweep_orphans`` on the loop."""
        policy = self.settings.respond
        counter = getattr(policy, "countermeasures", None)
        if counter is None or counter.report_only or now < self._next_counter \
                or (self._counter_task and not self._counter_task.done()):
            return
        self._next_counter = now + float(policy.countermeasure_interval)
        if self._sweep_writes is None:
            self._sweep_writes = _QueuedWrites(self.store)
        self._counter_task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(self._run_countermeasures, policy, self._sweep_writes), name="countermeasures")

    def _run_countermeasures(self, policy: Any, writes: _QueuedWrites) -> None:
        import dataclasses

        from stackwatch.respond.applied import AppliedLedger
        from stackwatch.respond.approvals import ApprovalQueue
        from stackwatch.respond.counter_run import countermeasure_pass

        folder = self.store.data_dir or self.settings.state_dir
        try:
            cloud = None
            if policy.cloud:
                from stackwatch.respond.openstack import Cloud

                cloud = Cloud.connect(policy.cloud)
            else:
                counter, skipped = policy.countermeasures.without_cloud()
                if skipped and not self._said_no_cloud:
                    self._said_no_cloud = True
                    log.warning("countermeasures %s: report only, no respond.cloud to act on",
                                ", ".join(skipped))
                policy = dataclasses.replace(policy, countermeasures=counter)
            with ApprovalQueue.open(folder, store=writes) as queue, AppliedLedger.open(folder) as ledger:
                report = countermeasure_pass(policy, cloud=cloud, store=writes, queue=queue, ledger=ledger,
                                             out=None)
            ran = report.run.results if report.run else []
            log.info("countermeasures: %d planned, %d queued, %d run, %d restored", len(report.planned),
                     len(report.queued), len(ran), len(report.restored))
        except Exception as exc:  # the cloud or HAProxy may be down: said, tried again next interval
            log.error("countermeasure pass failed: %s", exc)

    def _drain_audit_spool(self) -> None:
        """Audit events the web process could not append itself (this process holds the
        store's append lock) wait in the data folder's spool; take them in, once each."""
        folder = self.store.data_dir  # embedded store only: the spool sits beside it
        if folder is None:
            return
        spool = Path(folder) / AUDIT_SPOOL
        if not spool.exists():
            return
        draining = spool.with_suffix(".draining")
        try:
            if not draining.exists():
                spool.rename(draining)  # the web process starts a new spool; nothing is read twice
            lines = draining.read_bytes().splitlines()
        except OSError as exc:
            log.warning("cannot read the audit spool %s: %s", spool, exc)
            return
        events = []
        for line in lines:
            if not line.strip():
                continue
            try:
                events.append(from_json(line))
            except ValueError:
                log.warning("audit spool line is not an event, kept as unparsed: %r", line[:200])
                now = datetime.now(UTC)
                raw = line.decode("utf-8", "surrogateescape")
                events.append(Event(time=now, received=now, host=self.settings.hostname,
                                    service="stackwatch", kind="unparsed", raw=raw,
                                    origin="stackwatch:audit-spool", ref=f"audit-spool:{len(events)}"))
        if events:
            self._add(None, events)
        draining.unlink(missing_ok=True)

    def _heartbeat(self, now: float) -> None:
        stamp = datetime.fromtimestamp(now, UTC)
        depth = sum(len(s.queue) for s in self.sources)
        event = Event(
            time=stamp,
            received=stamp,
            host=self.settings.hostname,
            service="stackwatch",
            severity="info",
            kind="heartbeat",
            action="monitor.heartbeat",
            outcome="success",
            message=f"stackwatch heartbeat: {self.stored_events} events stored, queue depth {depth}",
            attrs={
                "queue_depth": depth,
                "events_stored": self.stored_events,
                "uptime": round(now - self.started, 3),
            },
            origin="internal",
            ref=f"heartbeat:{self.settings.hostname}:{int(now * 1000)}",
        )
        self._add(None, [event])

    # ------------------------------------------------------------------ committing

    async def _commit(self) -> None:
        if self._commit_task is not None:
            await self._commit_task  # strictly in order
            self._commit_task = None
        batch, self._batch = self._batch, _Batch()
        changes = self._changes.take()
        for source in batch.tokens:
            batch.tokens[source] = source.checkpoint()
        if batch.events or changes or batch.tokens:
            self._commit_task = asyncio.create_task(self._finish(batch, changes))

    async def _finish(self, batch: _Batch, changes: list[ingest.AlertChange]) -> None:
        alerts = [item.snapshot for item in changes]
        delay = 0.5
        while True:
            try:
                committed = await asyncio.to_thread(self._write, batch, alerts)
                break
            except Exception as exc:  # keep the batch and retry: nothing is acknowledged meanwhile
                self.store_errors += 1
                if isinstance(exc, StoreError):
                    log.error("store commit failed (will retry, nothing acknowledged): %s", exc)
                else:
                    log.exception("store commit failed (will retry, nothing acknowledged)")
                if self._stopping and time.monotonic() - batch.started > float(self.limits.shutdown_timeout):
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        now = time.time()
        self.stored_events += len(batch.events)
        self.last_commit = now
        if batch.oldest is not None:
            self.commit_lag = now - batch.oldest
        for source in batch.tokens:
            source.counters.committed += batch.per_source.get(source.name, 0)
        for source, token in batch.tokens.items():
            try:
                await source.commit(token)
            except Exception:  # an ack that fails means a redelivery, which dedup absorbs
                log.exception("source %s: acknowledging failed", source.name)
        for item, alert_id, status, muted in zip(
            changes, committed.ids, committed.statuses, committed.silenced, strict=True
        ):
            alert = item.snapshot
            counter = (alert.category, alert.severity)
            self.alert_changes[counter] = self.alert_changes.get(counter, 0) + 1
            if muted:
                self.silenced_changes += 1
            elif item.dispatch:
                self.dispatcher.submit(alert, item.change, alert_id, status)

    def _write(self, batch: _Batch, alerts: list[Alert]) -> ingest.Committed:
        """In a thread: append, upsert, commit (pipeline/ingest.commit)."""

        def appended() -> None:
            batch.appended = True  # the store holds them now; a retry only flushes

        return ingest.commit(self.store, [] if batch.appended else batch.events, alerts, appended=appended)

    # ------------------------------------------------------------------ helpers for sources

    def recent_refs(self, origin_prefix: str) -> set[str]:
        """Refs of the newest stored events whose origin starts with ``origin_prefix``: how
        sources recognise records committed just before a crash but not acknowledged."""
        if self._recent is None:
            self._recent = {}
            try:
                last = self.store.counts().events
                seqs = list(range(max(1, last - MAX_LIMIT + 1), last + 1))
                for stored in self.store.get_events(seqs) if seqs else []:
                    event = stored.event
                    self._recent.setdefault(event.origin.partition(":")[0] + ":", set()).add(event.ref)
            except StoreError as exc:
                log.warning("cannot read the newest stored events: %s", exc)
        return set(self._recent.get(origin_prefix, set()))

    def queue_depth(self) -> int:
        return sum(len(s.queue) for s in self.sources)


class _QueuedWrites:
    """The store as a reconciliation sweep in a worker thread sees it while this runner owns the
    append path: reads go to the store (which serialises them), writes are queued here and taken
    in by the runner's loop, in order, like any other events."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.events: deque[Event] = deque()
        self.new_alerts: deque[Alert] = deque()

    def append_events(self, events: Any) -> list[int]:
        self.events.extend(events)
        return []

    def upsert_alerts(self, alerts: Any) -> list[int]:
        self.new_alerts.extend(alerts)
        return []

    def flush(self) -> None:
        """Nothing to do: the runner commits what it takes in."""

    def alerts(self, query: Any = None) -> Any:
        return self._store.alerts(query)


def create_runner(settings: Settings) -> Runner:
    """Open the store, build the engine, sources and sinks named by ``settings``."""
    from stackwatch.pipeline.engine import engine_for
    from stackwatch.store import open_store

    engine = engine_for(settings, live=True)
    store = open_store(settings.store.open_url(), **settings.store.options)
    try:
        return Runner(settings, store=store, engine=engine)
    except BaseException:
        store.close()
        raise
