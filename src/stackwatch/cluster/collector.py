"""``stackwatch serve --role collector``: sources, framing and parsing as ``serve`` does them, then
batches of routed events published to the cluster's partitions instead of a local store.

The sources, their bounded queues and their decoding are the ones ``serve`` uses
(``sources/``, created by ``create_source`` from the same configuration); only what happens to
the decoded events differs. Each event is routed by the partition planner (``routing.py``) to
routing buckets, and its copies go into per-**partition** batch builders (the partition of a
bucket: ``topology.partition_map``; two buckets of one event in one partition make one copy
with both rule sets). Every ``cluster.batch_delay`` (sooner when ``max_unconfirmed`` copies
wait) the collector makes a **cut**: the open builders become batches, one per partition,
published with publisher confirms to that partition's queue, and the sources' checkpoints taken
at that moment are committed (TCP/RELP acknowledged, file offsets saved, AMQP notifications
acknowledged) only after every batch of the cut, and of every cut before it, was confirmed. A
batch that fills up (``batch_events``) is published at once, ahead of its cut.

Watermarks (cluster/reorder.py): every batch carries the collector's event clock (the newest
event time it routed). At a cut, each partition that got no batch of it gets an empty one with
the clock, if the clock moved since that partition last heard it; and while the collector is
idle (nothing read for a ``batch_delay``) it sends the partitions, each ``batch_delay`` for up to
``reorder.QUIET`` seconds, its clock advanced by the wall time it has been idle less what a
record may still be on its way (``idle_watermark``). So an analyzer knows how far every live
collector has got without waiting for its next records.

Backpressure: events routed but not yet confirmed are bounded by ``cluster.max_unconfirmed``;
past it the collector stops taking records from the source queues, the queues fill and the
sources pause (TCP stops reading, the file tail stops, AMQP stops consuming). A broker that is
down holds the pipeline there, losing nothing: on reconnection the unconfirmed batches are sent
again (the analyzers' store recognises an event stored twice by its record ref only where the
source gives stable refs; see docs/cluster.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stackwatch.cluster.membership import Beacon
from stackwatch.cluster.publisher import Publisher
from stackwatch.cluster.reorder import QUIET
from stackwatch.cluster.routing import Planner
from stackwatch.cluster.salvage import MAX_RAW, is_salvaged, wire_refused
from stackwatch.cluster.topology import Topology, check_member, partition_map
from stackwatch.cluster.wire import MAX_BATCH_BYTES, BatchBuilder, Item, WireError, encode_batch
from stackwatch.config.settings import Settings
from stackwatch.core.event import Event
from stackwatch.sources.base import Source, SourceContext
from stackwatch.sources.fair import FairTurns, release_idle
from stackwatch.sources.registry import create_source
from stackwatch.sources.undecoded import malformed_events

log = logging.getLogger(__name__)

TAKE_LIMIT = 2048
"""Records decoded per turn before the readers get the loop back (as the single-process runner)."""
BATCH_BYTES = MAX_BATCH_BYTES // 4
"""A builder past this estimate is published (far below the wire's hard limit)."""
IDLE_MARGIN = 0.25
"""Seconds a record may spend between its writer and a source that reads as records arrive
(network, a sender writing its queue in batches: rsyslog's action dequeues), on top of each
source's own ``delivery_delay``: an idle watermark stays this far behind."""
COARSE = 1.0
"""The precision of whole-second stamps (RFC 3164 syslog, Apache's access log): such a record
may be stamped up to a second before it was written."""


@dataclass
class _Cut:
    """The batches published since the previous cut, and the source checkpoints they cover."""

    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    tokens: dict[Source, Any] = field(default_factory=dict)
    events: int = 0  # events (not copies) in it
    sources: dict[str, int] = field(default_factory=dict)  # source name -> events


@dataclass
class CollectorStats:
    events: int = 0  # events routed
    copies: int = 0  # items published (an event routed to k partitions counts k)
    batches: int = 0  # batches confirmed (idle ones, carrying only the watermark, included)
    idle_batches: int = 0  # of which empty: a watermark for a partition that had no records
    confirmed_events: int = 0  # events whose every copy is confirmed and source acknowledged
    paused: int = 0  # turns the source queues were left alone: too much unconfirmed
    refused: int = 0  # batches the wire refused although estimated small enough: split, sent in halves
    salvaged: int = 0  # events the wire refused even alone: sent as their raw text (unparsed, flagged)
    lost: int = 0  # events not even salvaged could carry (logged each): should stay 0
    malformed: int = 0  # records a source's decoder failed on, published raw (unparsed, flagged)


class Collector:
    def __init__(self, settings: Settings, *, rules: list[Any] | None = None,
                 sources: list[Source] | None = None) -> None:
        from stackwatch.detect.loader import RuleSet, builtin_rules, load_rules

        self.settings = settings
        cluster = settings.cluster
        self.limits = settings.limits
        self.member = cluster.member or f"{settings.hostname}-collector"
        check_member(self.member)  # the configured name is checked at load; this is the hostname's
        self.epoch = uuid.uuid4().hex[:12]
        self.topology = Topology(cluster.name, cluster.partitions)
        if rules is None:
            ruleset = builtin_rules() if settings.rules.builtin else RuleSet()
            if settings.rules.paths:
                ruleset.extend(load_rules([Path(p) for p in settings.rules.paths]))
            if ruleset.errors and settings.rules.strict:
                raise ruleset.errors[0]
            for error in ruleset.errors:  # left out here as on the analyzers: routing agrees with them
                log.warning("rule not loaded: %s", error)
            rules = ruleset.rules
        self.planner = Planner(rules, cluster.buckets)
        self._partition_of = partition_map(cluster.buckets, cluster.partitions)
        self.publisher = Publisher(cluster.connect_url(), self.topology,
                                   reconnect_interval=float(cluster.reconnect_interval))
        self.wake = asyncio.Event()
        context = SourceContext(queue_size=self.limits.queue_size, wake=self.wake,
                                state_dir=settings.state_dir, hostname=settings.hostname)
        self.sources = (sources if sources is not None
                        else [create_source(s, context) for s in settings.sources])
        for source in self.sources:
            source.queue.wake = self.wake
        self.stats = CollectorStats()
        self._builders: dict[int, BatchBuilder] = {}  # partition -> its next batch
        self._cut = _Cut()
        self._cut_started = time.monotonic()
        self._cuts: deque[_Cut] = deque()
        self._cut_ready = asyncio.Event()
        self._unconfirmed = 0  # copies routed and not yet confirmed
        self._seq = 0
        self._clock = 0.0  # event clock: the newest event time routed from a source (the watermark)
        self._clock_wall = 0.0  # time.time() when an event was last routed from a source
        self._coarse = False  # a source stamps in whole seconds (sticky: sources do not change)
        self._told: list[float] = [0.0] * cluster.partitions  # the watermark each partition last got
        self._cut_partitions: set[int] = set()  # partitions sent a batch in the open cut
        self._last_sent = time.monotonic()  # the last cut or idle tick
        self._turns = FairTurns()  # where the next fair turn over the sources starts
        self._stopping = False
        self._worker: asyncio.Task[None] | None = None
        self._committer: asyncio.Task[None] | None = None
        self.started = time.time()
        self._http: Any = None
        self._beat_stop = asyncio.Event()
        self._beating: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        Path(self.settings.state_dir).mkdir(parents=True, exist_ok=True)
        await self.publisher.connect()  # the topology exists before anything is read
        for source in self.sources:
            await source.start()
        self._worker = asyncio.create_task(self._work(), name="collector")
        self._committer = asyncio.create_task(self._commit_cuts(), name="collector-acks")
        beacon = Beacon(self.settings.cluster.connect_url(), self.topology, "collector", self.member,
                        self.describe)
        self._beating = asyncio.create_task(beacon.run(self._beat_stop), name="heartbeat")
        listen = self.settings.listen
        if listen.metrics is not None and listen.metrics_token is not None:
            from stackwatch.cluster.collector_http import CollectorHTTP

            self._http = CollectorHTTP(self, listen.metrics, listen.metrics_token.value)
            await self._http.start()

    @property
    def http_address(self) -> tuple[str, int] | None:
        return getattr(self._http, "address", None)

    def healthy(self) -> bool:
        """False while the broker is unreachable with something waiting for it."""
        return self.publisher.connected.is_set() or (self._unconfirmed == 0 and not self.queue_depth())

    async def stop(self) -> None:
        """Stop reading, publish what was read, wait for the confirms, acknowledge; within
        ``limits.shutdown_timeout`` (what is not confirmed by then stays unacknowledged)."""
        deadline = time.monotonic() + float(self.limits.shutdown_timeout)
        for source in self.sources:
            with contextlib.suppress(Exception):
                await source.stop()
        self._stopping = True
        self.wake.set()
        for task in (self._worker, self._committer):
            if task is None:
                continue
            try:
                await asyncio.wait_for(asyncio.shield(task), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                log.error("shutdown: batches not confirmed in time; their records stay unacknowledged")
                task.cancel()
            except Exception:
                log.exception("collector task failed at shutdown")
        self._beat_stop.set()  # the last beat says "stopped"
        if self._beating is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._beating, 3.0)
        await self.publisher.close()
        if self._http is not None:
            await self._http.stop()

    async def wait(self, stop: asyncio.Event) -> None:
        assert self._worker is not None and self._committer is not None
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({stopper, self._worker, self._committer},
                                     return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        for task in (self._worker, self._committer):
            if task in done and not self._stopping:
                task.result()
                raise RuntimeError("the collector's pipeline ended unexpectedly")

    # ------------------------------------------------------------------ the worker

    async def _work(self) -> None:
        cluster = self.settings.cluster
        delay = float(cluster.batch_delay)
        beat_every = float(self.limits.heartbeat_interval)
        next_beat = time.time()
        while True:
            self.wake.clear()
            took = False
            if self._unconfirmed < cluster.max_unconfirmed:
                for source, records in self._take_fair(TAKE_LIMIT):
                    took = True
                    self._decode(source, records)
            elif any(len(s.queue) for s in self.sources):
                self.stats.paused += 1
            now = time.time()
            release_idle(self.sources, now, self._route)
            if beat_every and now >= next_beat:
                next_beat = now + beat_every
                self._heartbeat(now)
            cut = self._cut
            age = time.monotonic() - self._cut_started
            # a cut per batch_delay: the batches fill per bucket meanwhile (a full one is sent at
            # once); sooner only when the bound on unconfirmed copies is reached
            if (cut.tokens or cut.events) and (age >= delay or self._unconfirmed >= cluster.max_unconfirmed):
                self._close_cut()
            elif (not took and not cut.events and self._clock_wall and now - self._clock_wall < QUIET
                  and time.monotonic() - self._last_sent >= delay):
                self._idle_tick(now)
            if self._stopping and not any(len(s.queue) for s in self.sources):
                release_idle(self.sources, float("inf"), self._route)
                self._close_cut()
                self._cuts.append(_Cut())  # the end marker: the committer stops after the last cut
                self._cut_ready.set()
                return
            if took:
                await asyncio.sleep(0)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), max(0.01, min(delay, next_beat - time.time())
                                                                 if beat_every else delay))

    def _take_fair(self, budget: int) -> list[tuple[Source, list[Any]]]:
        return self._turns.take(self.sources, self.limits.fair_quantum, budget)

    def _decode(self, source: Source, records: list[Any]) -> None:
        try:
            events = source.decode(records)
        except Exception as exc:
            # a decoder bug must not stop the collector, nor lose the records: the source may
            # have marked some of them taken already (a file's offset, RELP/AMQP acks pending),
            # so the next checkpoint covers them. They are published raw, and the checkpoint
            # is committed only once they are confirmed.
            log.exception("source %s failed to decode %d records; they are kept unparsed (malformed)",
                          source.name, len(records))
            source.counters.errors += 1
            try:
                source.taken_undecoded(records)
            except Exception:  # the records still go out raw; at worst they are sent again later
                log.exception("source %s: marking the records it failed to decode failed", source.name)
            reason = f"decoder failed: {type(exc).__name__}: {exc}"
            events = malformed_events(records, f"malformed:{source.name}", self.settings.hostname, reason,
                                      self.stats.malformed + 1, MAX_RAW)
            self.stats.malformed += len(events)
        self._cut.tokens[source] = None  # its checkpoint is taken at the cut
        self._route(source, events)

    def _route(self, source: Source | None, events: list[Event]) -> None:
        if not events:
            return
        cut = self._cut
        builders = self._builders
        route = self.planner.route
        partition_of = self._partition_of
        max_items = self.settings.cluster.batch_events
        copies = 0
        for event in events:
            routes = route(event)
            if len(routes) > 1:
                routes = _per_partition(routes, partition_of)
            for bucket, rules, home in routes:
                partition = partition_of[bucket]
                builder = builders.get(partition)
                if builder is None:
                    builder = builders[partition] = BatchBuilder()
                builder.add(event, rules, home)
                copies += 1
                if builder.full(max_items, BATCH_BYTES):
                    self._publish(partition, builders.pop(partition))
        # the clock follows the sources' records (not the heartbeat's wall time), moved only once
        # every record of the read is in a builder: a batch that filled above went out with the
        # clock before this read, as records of the read still to be routed may be older than
        # its newest (taken as late by the partition, other collectors' copies released first)
        if source is not None:
            now = time.time()
            newest = min(max(e.time for e in events).timestamp(),
                         now + float(self.limits.future_tolerance))  # as an analyzer clamps them
            if newest > self._clock:
                self._clock = newest
            self._clock_wall = now
            if not self._coarse:
                self._coarse = _whole_seconds(events)
        cut.events += len(events)
        self.stats.events += len(events)
        self.stats.copies += copies
        self._unconfirmed += copies
        if source is not None:
            source.counters.events += len(events)
            cut.sources[source.name] = cut.sources.get(source.name, 0) + len(events)
            cut.tokens.setdefault(source, None)

    def _publish(self, partition: int, builder: BatchBuilder, watermark: float | None = None) -> None:
        self._seq += 1
        mark = self._clock if watermark is None else watermark
        batch = builder.build(collector=self.member, seq=self._seq, epoch=self.epoch, partition=partition,
                              sent=time.time(), watermark=mark)
        self._told[partition] = mark
        self._cut_partitions.add(partition)
        if not len(builder):
            self.stats.idle_batches += 1
        try:
            body = encode_batch(batch)
        except WireError as exc:  # never a crash (the same records again after the restart), never a loss
            self._refused(partition, builder, mark, exc)
            return
        message_id = f"{self.member}:{self.epoch}:{self._seq}"
        task = asyncio.get_running_loop().create_task(self._send(body, partition, message_id, len(builder)))
        self._cut.tasks.append(task)

    def _refused(self, partition: int, builder: BatchBuilder, watermark: float, exc: WireError) -> None:
        """The wire refused a batch the size estimate let through (parsed fields far larger than
        the record): its halves are published instead, each under a seq of its own; an event
        refused alone goes as its raw text (salvage.wire_refused)."""
        self.stats.refused += 1
        if len(builder) > 1:
            log.warning("batch %s#%d refused by the wire format (%s): sent in two halves",
                        self.member, self._seq, exc)
            for half in builder.split():
                self._publish(partition, half, watermark)
            return
        item = builder.items[0] if len(builder) else None
        if item is None or is_salvaged(item.event):  # cannot happen: salvaged events are far below the limit
            log.error("batch %s#%d refused by the wire format, dropped: %s", self.member, self._seq, exc)
            self.stats.lost += len(builder)
            self._unconfirmed -= len(builder)
            return
        event = item.event
        log.error("event %s (host %s, source %s) refused by the wire format (%s): sent as its raw text, "
                  "unparsed", event.ref, event.host, event.origin, exc)
        self.stats.salvaged += 1
        builder.items[0] = Item(wire_refused(event, f"wire format: {exc}"), item.rules, item.home)
        self._publish(partition, builder, watermark)

    async def _send(self, body: bytes, partition: int, message_id: str, copies: int) -> None:
        await self.publisher.publish(body, partition, message_id=message_id)
        self.stats.batches += 1
        self._unconfirmed -= copies
        self.wake.set()  # the worker may have paused the sources

    def _close_cut(self) -> None:
        for partition in list(self._builders):
            self._publish(partition, self._builders.pop(partition))
        if self._clock:  # the partitions this cut sent nothing learn how far the collector got
            for partition, told in enumerate(self._told):
                if told < self._clock and partition not in self._cut_partitions:
                    self._publish(partition, BatchBuilder())
        self._cut_partitions.clear()
        cut, self._cut = self._cut, _Cut()
        self._cut_started = self._last_sent = time.monotonic()
        for source in cut.tokens:
            cut.tokens[source] = source.checkpoint()
        if cut.tokens or cut.tasks:
            self._cuts.append(cut)
            self._cut_ready.set()

    def _idle_tick(self, now: float) -> None:
        """Nothing read for a ``batch_delay``: the partitions learn the event clock advanced as far
        as no record still on its way can be older (``idle_watermark``), so the analyzers release
        the other collectors' records without waiting ``QUIET`` for this one to fall silent. Only
        within ``QUIET`` of the last record: after that the analyzers count this collector as
        quiet anyway. Nothing is sent when that is not past what the partitions heard: an idle
        batch repeating the clock would only keep this collector counted as live, holding the
        others back longer."""
        if self.queue_depth():  # records wait in the source queues (paused): their times unknown
            return
        mark = self._idle_watermark(now)
        behind = [p for p, told in enumerate(self._told) if told < mark]
        if not behind:
            return
        for partition in behind:
            self._publish(partition, BatchBuilder(), mark)
        self._close_cut()

    def _idle_watermark(self, now: float) -> float:
        hold = max((s.delivery_delay() for s in self.sources), default=0.0) + IDLE_MARGIN
        return idle_watermark(self._clock, self._clock_wall, now, hold + (COARSE if self._coarse else 0.0))

    async def _commit_cuts(self) -> None:
        """Acknowledge each cut's sources once all its batches are confirmed, strictly in order."""
        while True:
            while not self._cuts:
                self._cut_ready.clear()
                await self._cut_ready.wait()
            cut = self._cuts[0]
            if not cut.tasks and not cut.tokens:  # the end marker (a real cut has one or the other)
                self._cuts.popleft()
                return
            if cut.tasks:
                await asyncio.gather(*cut.tasks)
            self._cuts.popleft()
            for source, token in cut.tokens.items():
                try:
                    await source.commit(token)
                except Exception:  # an ack that fails means a redelivery: sent twice, never lost
                    log.exception("source %s: acknowledging failed", source.name)
                source.counters.committed += cut.sources.get(source.name, 0)
            self.stats.confirmed_events += cut.events

    def _heartbeat(self, now: float) -> None:
        """The monitor's own heartbeat, routed like any event: an absence rule on the analyzers
        notices a collector that went quiet (service stackwatch, the collector's host)."""
        stamp = datetime.fromtimestamp(now, UTC)
        depth = sum(len(s.queue) for s in self.sources)
        event = Event(
            time=stamp, received=stamp, host=self.settings.hostname, service="stackwatch", severity="info",
            kind="heartbeat", action="monitor.heartbeat", outcome="success",
            message=f"stackwatch collector {self.member} heartbeat: {self.stats.events} events routed, "
                    f"queue depth {depth}",
            attrs={"role": "collector", "member": self.member, "queue_depth": depth,
                   "events_routed": self.stats.events, "unconfirmed": self._unconfirmed,
                   "uptime": round(now - self.started, 3)},
            origin="internal", ref=f"heartbeat:{self.member}:{int(now * 1000)}",
        )
        self._route(None, [event])

    def queue_depth(self) -> int:
        return sum(len(s.queue) for s in self.sources)

    def describe(self) -> dict[str, Any]:
        """This collector's heartbeat on the control exchange (cluster/membership.py)."""
        http = self.http_address
        return {"events": self.stats.events, "copies": self.stats.copies, "batches": self.stats.batches,
                "acknowledged": self.stats.confirmed_events, "unconfirmed": self._unconfirmed,
                "queue_depth": self.queue_depth(), "connected": self.publisher.connected.is_set(),
                "sources": [s.name for s in self.sources],
                "metrics": f"{http[0]}:{http[1]}" if http else None}

    def metrics(self) -> dict[str, float]:
        """Numbers for /metrics and `cluster status`."""
        return {
            "stackwatch_collector_events_total": self.stats.events,
            "stackwatch_collector_copies_total": self.stats.copies,
            "stackwatch_collector_batches_total": self.stats.batches,
            "stackwatch_collector_idle_batches_total": self.stats.idle_batches,
            "stackwatch_collector_acknowledged_events_total": self.stats.confirmed_events,
            "stackwatch_collector_unconfirmed": self._unconfirmed,
            "stackwatch_collector_queue_depth": self.queue_depth(),
            "stackwatch_collector_publish_retries_total": self.publisher.failures,
            "stackwatch_collector_reconnects_total": self.publisher.reconnects,
            "stackwatch_collector_paused_turns_total": self.stats.paused,
            "stackwatch_collector_malformed_records_total": self.stats.malformed,
            "stackwatch_collector_refused_batches_total": self.stats.refused,
            "stackwatch_collector_salvaged_events_total": self.stats.salvaged,
            "stackwatch_collector_lost_events_total": self.stats.lost,
        }


async def serve_collector(settings: Settings, stop: asyncio.Event) -> Collector:
    """Run a collector until ``stop`` is set; returns it (its stats) after a graceful stop."""
    collector = Collector(settings)
    starting = asyncio.create_task(collector.start())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():  # stopped while still waiting for the broker: nothing was read yet
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        await collector.publisher.close()
        log.info("stopped before the broker was reached")
        return collector
    stopper.cancel()
    starting.result()
    listening = []
    for source in collector.sources:
        address = getattr(source, "address", None)
        listening.append(f"{source.name}={address[0]}:{address[1]}" if address else source.name)
    if collector.http_address:
        listening.append(f"http={collector.http_address[0]}:{collector.http_address[1]}")
    log.info("collector %s ready: %s -> %s (%d partitions, %d buckets)", collector.member,
             " ".join(listening), collector.topology.exchange, collector.topology.partitions,
             settings.cluster.buckets)
    try:
        await collector.wait(stop)
        log.info("stopping: publishing what was read, waiting for the broker's confirms")
    finally:
        await collector.stop()
    log.info("stopped: %d events routed, %d acknowledged", collector.stats.events,
             collector.stats.confirmed_events)
    return collector


def idle_watermark(clock: float, clock_wall: float, now: float, hold: float) -> float:
    """How far an idle collector's event clock may be said to be at wall time ``now``: no record
    still to come is older. ``clock`` is the newest event time routed, ``clock_wall`` the wall
    time of the last routing; ``hold`` bounds how long a record may take from being stamped to
    being routed (delivery delay, poll periods, stamp precision). A record stamped ``t`` is routed
    by ``t + hold`` on the writer's clock, whose offset to ours the last record bounds: it was
    stamped at most ``clock`` when we read it at ``clock_wall``. So one routed after ``now`` was
    stamped at least ``clock + (now - clock_wall) - hold``: no clock skew enters. Never below
    ``clock`` (a watermark does not go back)."""
    return max(clock, clock + (now - clock_wall) - hold)


def _whole_seconds(events: list[Event]) -> bool:
    """Whether any of these records is stamped in whole seconds (a coarse source)."""
    return any(not e.time.microsecond for e in events)


def _per_partition(routes: list[tuple[int, tuple[str, ...], bool]],
                   partition_of: tuple[int, ...]) -> list[tuple[int, tuple[str, ...], bool]]:
    """An event's copies merged per partition: two buckets of one partition are one copy there,
    with the rule ids of both (in order, once each) and home if either is (the analyzer offers each
    rule a record once anyway, detect/engine.process_only). Keyed by the first bucket's number."""
    merged: dict[int, tuple[int, tuple[str, ...], bool]] = {}
    for bucket, rules, home in routes:
        partition = partition_of[bucket]
        known = merged.get(partition)
        if known is None:
            merged[partition] = (bucket, rules, home)
        else:
            ids = known[1] + tuple(r for r in rules if r not in known[1])
            merged[partition] = (known[0], ids, known[2] or home)
    if len(merged) == len(routes):
        return routes
    return list(merged.values())
