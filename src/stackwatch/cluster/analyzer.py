"""``stackwatch serve --role analyzer``: consume partition queues, detect, store, acknowledge.

Every analyzer subscribes to every partition queue of the cluster (cluster/topology.py): the
queues have single active consumer, so the broker delivers a partition to one analyzer at a
time and the others wait as standbys; when the active one dies (its connection closes) the
broker hands the partition to the next. Partitions named by ``prefer`` are subscribed at
once, the others ``STANDBY_DELAY`` later, so analyzers started with different preferences
share the work and each is the standby of the others.

A partition becomes this analyzer's when its first batch arrives (``Partition.open``): its
store is opened, the engine built from the settings (pipeline/engine.rule_engine, the same
factory as analyze and serve), and the last checkpoint loaded — detection state and position
(the last batch taken from each collector run). Then, per turn, every batch waiting in the
channel's prefetch window is taken together (pipeline/ingest.py):

* a batch at or before the position (a redelivery of one already committed) is acknowledged
  and skipped: detected once, stored once;
* each routed copy goes through ``Engine.process_only`` with the rule ids it names; home copies
  are stored;
* events, alerts and the new checkpoint are committed (``ingest.commit``: the checkpoint in the
  same transaction as the events), then the batches are acknowledged, then alerts delivered.

A crash at any point leaves either the old checkpoint with the batches unacknowledged (the
standby replays them from the same state: the same alerts, upserted under the same rule and
key) or the new one (the redelivered batches are skipped).

Stores: an embedded store gets one data folder per partition (``<url>/pNNN``), written by
whichever analyzer holds the partition (its append lock moves with the partition); a
PostgreSQL store is shared, each analyzer a writer of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from stackwatch.alerts.dispatch import Dispatcher
from stackwatch.cluster.commit_errors import transient
from stackwatch.cluster.membership import Beacon
from stackwatch.cluster.reorder import QUIET, Copy, Reorder, StoredRefs, pack, unpack
from stackwatch.cluster.routing import bucket_of
from stackwatch.cluster.topology import DELIVERY_LIMIT, Topology, check_member, declare, partition_map
from stackwatch.cluster.wire import MAX_BATCH_ITEMS, Batch, WireError, decode_batch
from stackwatch.config.settings import Settings
from stackwatch.core.event import Event, replace
from stackwatch.detect.engine import Engine
from stackwatch.detect.snapshot import SnapshotError, capture, restore
from stackwatch.pipeline import ingest
from stackwatch.store.base import Store
from stackwatch.store.fencing import PartitionFenced

log = logging.getLogger(__name__)

PREFETCH: Final = 64
"""Batches the broker may have in flight to one partition's consumer (at most 2,000 events each):
a turn takes them all, so a backlog's batches of several collectors are merged in time order."""
STANDBY_DELAY: Final = 2.0
"""Seconds before subscribing to partitions this analyzer does not prefer (as their standby)."""
PROBE: Final = "~bucket-probe"
"""The collector name of the empty batch an analyzer publishes to every partition at its start,
so every partition opens (and watches the declared sources of its buckets) even where no traffic
flows."""
CHECKPOINT_INTERVAL: Final = 5.0
"""Seconds between two checkpoints of a partition's detection state (its cost grows with the
state: about 3 s for 50,000 keys with their evidence), and at most PREFETCH // 2 batches: the
batches since the last one stay unacknowledged until the next, so a standby replays them."""
GATHER_QUIET: Final = 0.03
GATHER_MAX: Final = 0.2
"""A turn starts with the batches waiting and takes those arriving until none came for
GATHER_QUIET seconds (at most GATHER_MAX): a collector's cut publishes its batches of several
buckets back to back, each spanning the cut's time; taken in one turn they are merged in time
order, taken one per turn a later batch's records would reach the engine after newer ones (the
copies of one keystone login split across turns would not be correlated)."""
RESUBSCRIBE_DELAY: Final = 30.0
RESUBSCRIBE_MAX: Final = 600.0
"""Seconds after giving a partition up before subscribing to it again as a standby, doubling at
each give-up of the same partition up to RESUBSCRIBE_MAX: a batch every analyzer's commit refuses
would otherwise leave the partition with no consumer once each had given it up, for good; coming
back, the analyzers take it again once the cause is gone, and a poison batch, delivered again at
each give-up, is dead-lettered (ISOLATE_AFTER)."""
ISOLATE_AFTER: Final = 3
"""A batch the broker has delivered this often (``x-delivery-count``) is taken in a turn of its
own, committed with a checkpoint and acknowledged before the next: a poison batch then fails
alone and is dead-lettered by the analyzer (``_dead_letter``), and the good batches that shared
its turns are stored (each return counts a delivery for every batch not acknowledged: left to
the broker's ``DELIVERY_LIMIT`` they would be dead-lettered with it). The broker's limit still
catches a batch that kills the analyzer process before it can say anything."""
IDLE_FINISH: Final = 2.0
"""A partition idle this long releases what the correlation stage holds and runs its last tick
(``Engine.finish``), as ``analyze`` does at the end of its input, and checkpoints."""


class Partition:
    """One partition while this analyzer is its active consumer."""

    def __init__(self, number: int, settings: Settings, member: str) -> None:
        self.number = number
        self.name = f"p{number:03d}"
        self.settings = settings
        self.member = member
        self.store: Store | None = None  # opened by ``open`` (in a thread: blocking)
        self.engine: Engine | None = None  # the engine itself: its state is checkpointed
        self.epoch: int | None = None  # ownership epoch claimed at open (store/fencing.py)
        self.channel: Any = None  # the broker channel it is consumed on (closed when fenced)
        self.position: dict[str, list[Any]] = {}  # collector -> [epoch, last seq in the checkpointed state]
        self.stored: dict[str, list[Any]] = {}  # collector -> [epoch, last seq whose events are stored]
        self.epochs: dict[str, list[Any]] = {}  # collector -> [its newest run, send time of its newest batch]
        self._state_position: dict[str, list[Any]] = {}  # ``position`` at the last checkpoint
        self.last_checkpoint = 0.0  # time.monotonic() of the last checkpoint (0: never)
        # routing buckets seen here: a declared source is watched where its bucket lands
        self.buckets: set[int] = set()
        self._declared = [{"host": e.host, "service": e.service} for e in settings.expected_sources]
        self.changes = ingest.AlertChanges()
        self._committing: list[ingest.AlertChange] | None = None  # taken, not yet committed
        self._appended = False  # the store holds the events of the commit being retried
        self._rule_sets: dict[tuple[str, ...], frozenset[str]] = {}
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.last_batch = time.monotonic()
        self.finished = True  # nothing held since the last finish
        self.committed_batches = 0
        self.unacked: list[Any] = []  # delivered batches committed since the last checkpoint
        self.skipped_batches = 0
        self.refused_batches = 0  # dead-lettered: undecodable or out of range
        self.reorder = Reorder()
        self.stored_refs = StoredRefs()
        self.duplicates = 0  # records sent again by a collector's successor, recognised and dropped
        self.resumed = False  # opened from a checkpoint: a takeover (or this member's restart)
        self.events_in = 0  # routed copies detected on
        self.stored_events = 0  # home copies committed
        self.alert_changes = 0
        self.commit_lag: float | None = None  # publish of the oldest batch of the last commit -> commit
        self.event_lag: float | None = None  # newest event time of the last commit -> commit
        self.last_commit = 0.0
        self.checkpoint_cpu = 0.0  # CPU seconds capturing the detection state (once per commit)
        self.store_cpu = 0.0  # CPU seconds in the store's commit (this thread's share)
        self.checkpoint_bytes = 0  # size of the last checkpoint's detection state
        self.commit_failures = 0  # failed commit attempts (each retried or given up)
        self.stalled_since: float | None = None  # time.monotonic() of the first failure of a commit

    def open(self) -> None:
        """Open the store, build the engine, load the checkpoint (in a thread: blocking)."""
        from stackwatch.pipeline.engine import rule_engine
        from stackwatch.store import open_store

        url = self.settings.store.open_url()
        options = dict(self.settings.store.options)
        folder = self.settings.store.embedded_folder()
        if folder is not None:
            url = str(Path(folder) / self.name)
        elif url.startswith(("postgresql:", "postgres:")):
            options["writer"] = f"{self.member}-{self.name}"
            # a turn's events commit in one transaction with the partition's position, never
            # split by the store's own batching (an early commit would store them positionless)
            options["batch_size"] = PREFETCH * MAX_BATCH_ITEMS
        self.store = open_store(url, **options)
        # wall-clock rules watch declared sources in one place only: not yet per partition
        settings = dataclasses.replace(self.settings, expected_sources=[])
        # the rule set is loaded once per process (pipeline/rule_cache.py): a standby taking
        # over all of a dead analyzer's partitions compiled every rule file once per partition
        self.engine = rule_engine(settings, live=False, shared_rules=True)
        # a new epoch before the checkpoint is read: a cut-off predecessor commits nothing after it
        self.epoch = self.store.claim_partition(self.name)
        saved = self.store.partition_state(self.name)
        if saved is not None:
            self.resumed = True
            position, state = saved
            try:
                engine_state, held, self.stored_refs = unpack(state)
                self.reorder.restore(held)
                restore(self.engine, engine_state)
                self.position = {k: list(v) for k, v in position.get("collectors", {}).items()}
                self.stored = {k: list(v) for k, v in position.get("stored", {}).items()}
                self._state_position = {k: list(v) for k, v in self.position.items()}
                self.epochs = {k: list(v) for k, v in position.get("epochs", {}).items()}
                # not the checkpoint's buckets: those of an older partition count or of the
                # consistent-hash ring before the partition map would keep this partition watching
                # declared sources whose records now go elsewhere (false silences, two watchers);
                # the map's buckets are taken below, an older collector's live batches add theirs
            except SnapshotError as exc:  # said loudly; detection restarts empty, nothing is lost
                log.error("partition %s: checkpoint not loaded, windows start empty: %s", self.name, exc)
        cluster = self.settings.cluster
        self._take_buckets(b for b, p in enumerate(partition_map(cluster.buckets, cluster.partitions))
                           if p == self.number)
        log.info("partition %s: active here, epoch %d (position %s)", self.name, self.epoch,
                 self.position or "start")

    def _owned_sources(self) -> list[dict[str, str]]:
        """The declared sources (``expected_sources``) this partition watches: those whose
        host+service key routes to a bucket it receives (the absence kinds key by host+service,
        cluster/routing.py), so every declared source is watched by exactly one analyzer."""
        buckets = self.settings.cluster.buckets
        return [d for d in self._declared if bucket_of((d["host"], d["service"]), buckets) in self.buckets]

    def _take_buckets(self, buckets: Any) -> None:
        """Buckets this partition receives (``partition_map``; or an older collector's batch
        of a bucket seen here): watch the declared sources routed there."""
        assert self.engine is not None  # built by open(), the first thing done with a partition
        self.buckets.update(buckets)
        owned = tuple(self._owned_sources())
        if owned == self.engine.ctx.expected_sources:
            return
        self.engine.ctx.expected_sources = owned
        for _, detector in self.engine.detectors():
            if hasattr(detector, "_declared_done"):  # the absence kind declares them once: again
                detector._declared_done = False

    def out_of_range(self, batch: Batch) -> str | None:
        """Why this well-formed batch cannot be taken here, or None: a bucket or partition outside
        the cluster's (a collector configured with other numbers, or forged), or a probe with
        records. Taken, its bucket would join ``buckets`` (the state and the checkpoint growing
        with whatever numbers arrive) and its records be detected where they do not belong."""
        buckets = self.settings.cluster.buckets
        if not -1 <= batch.bucket < buckets:
            return f"bucket {batch.bucket} outside 0..{buckets - 1}"
        if batch.partition not in (-1, self.number):
            return f"partition {batch.partition} sent to partition {self.number}"
        if batch.collector == PROBE and batch.items:
            return f"{len(batch.items)} records under the reserved collector name {PROBE}"
        return None

    def stale_idle(self, batch: Batch) -> bool:
        """Whether ``batch`` is an idle batch redelivered from the past: at or before the
        collector's checkpointed position, or of a run (epoch) older than the newest of that
        collector heard here. Its watermark is old news, and pushed it would count a collector
        that died (or restarted) as live for ``reorder.QUIET`` again, holding the others back."""
        if batch.items:
            return False
        if self.seen(batch.collector, batch.epoch, batch.seq):
            return True
        newest = self.epochs.get(batch.collector)
        # runs are told apart by their batches' send times (one collector's own clock)
        return newest is not None and newest[0] != batch.epoch and batch.sent < newest[1]

    def note_epoch(self, batch: Batch) -> None:
        """Remember the collector's newest run and the send time of its newest batch here."""
        newest = self.epochs.get(batch.collector)
        if newest is None or batch.sent >= newest[1]:
            self.epochs[batch.collector] = [batch.epoch, batch.sent]

    def seen(self, collector: str, epoch: str, seq: int) -> bool:
        """Whether that batch is in the checkpointed state already (a redelivery)."""
        return _at_or_before(self.position, collector, epoch, seq)

    def run_batches(self, batches: list[Batch]) -> tuple[list[Event], int]:
        """Take the batches' routed copies: the home copies to store (returned, with how many
        batches were redeliveries skipped) and every copy into the reorder buffer; then detect
        on the copies the watermark releases (cluster/reorder.py)."""
        home: list[Event] = []
        skipped = 0
        tolerance = self._tolerance()
        stored_refs = self.stored_refs
        for batch in batches:
            if batch.bucket >= 0 and batch.bucket not in self.buckets:
                self._take_buckets((batch.bucket,))
            if batch.collector == PROBE:
                continue  # nothing else: no position either
            if self.stale_idle(batch):
                continue
            self.note_epoch(batch)
            if not batch.items:  # an idle batch: the collector's watermark, no records, no position
                self.reorder.push(batch.collector, [], watermark=batch.watermark)
                continue
            if self.seen(batch.collector, batch.epoch, batch.seq):
                skipped += 1
                continue
            # a batch replayed from the checkpoint whose events are stored already: detected
            # again (the state is older than it), neither stored nor delivered again
            replayed = _at_or_before(self.stored, batch.collector, batch.epoch, batch.seq)
            copies, duplicates = _batch_copies(batch, not replayed, stored_refs, home, tolerance)
            self.duplicates += duplicates
            self.reorder.push(batch.collector, copies, watermark=batch.watermark)
            self.position[batch.collector] = [batch.epoch, batch.seq]
            if not replayed:
                self.stored[batch.collector] = [batch.epoch, batch.seq]
            self.finished = False
        self.detect(self.reorder.release())
        return home, skipped

    def detect(self, copies: list[Copy]) -> None:
        """Run released copies (oldest first) through the engine, each for its rule ids."""
        assert self.engine is not None  # built by open()
        process_only, created = self.engine.process_only, self.engine.created
        add = self.changes.add
        rule_sets = self._rule_sets
        self.events_in += len(copies)
        for event, rules, dispatch in copies:
            only = rule_sets.get(rules)
            if only is None:
                only = rule_sets[rules] = frozenset(rules)
            changed = process_only(event, only)
            if changed:  # which it created: the engine's answer holds until its next call
                add(changed, [created(alert) for alert in changed], dispatch)

    def release_due(self) -> bool:
        """Detect on the held copies whose collectors went quiet; whether any were."""
        copies = self.reorder.release()
        self.detect(copies)
        return bool(copies)

    def finish(self) -> None:
        assert self.engine is not None  # built by open()
        self.detect(self.reorder.release(everything=True))
        changed = self.engine.finish()
        if changed:
            self.changes.add(changed, [self.engine.created(alert) for alert in changed])
        self.finished = True

    def tick(self, now: float) -> bool:
        """The wall clock (absence rules fire while nothing arrives); whether alerts changed."""
        assert self.engine is not None  # built by open()
        changed = self.engine.tick(datetime.fromtimestamp(now, UTC))
        if changed:
            self.changes.add(changed, [self.engine.created(alert) for alert in changed])
        return bool(changed)

    def commit(self, events: list[Event],
               checkpoint: bool) -> tuple[list[ingest.AlertChange], ingest.Committed]:
        """Events, alerts and the stored position in one commit, with the detection state when
        ``checkpoint``; called again with the same events after a failure (the changes taken
        stay taken, events the store holds are not appended twice)."""
        assert self.engine is not None and self.store is not None  # both made by open()
        if self._committing is None:
            self._committing = self.changes.take()
        changes = self._committing

        def appended() -> None:
            self._appended = True

        started = time.thread_time()  # this runs in a worker thread: its own CPU time
        state = pack(capture(self.engine), self.reorder.held, self.stored_refs) if checkpoint else None
        captured = time.thread_time()
        if checkpoint:  # the position the state is at: kept as it is by the commits between two
            self._state_position = {k: list(v) for k, v in self.position.items()}
        position = {"collectors": self._state_position, "stored": self.stored,
                    "buckets": sorted(self.buckets), "epochs": self.epochs}
        committed = ingest.commit(self.store, [] if self._appended else events,
                                  [c.snapshot for c in changes], appended=appended,
                                  partition=(self.name, position, state))
        self.checkpoint_cpu += captured - started
        self.store_cpu += time.thread_time() - captured
        if state is not None:
            self.checkpoint_bytes = len(state)
        self._committing, self._appended = None, False
        if checkpoint:
            self.last_checkpoint = time.monotonic()
        return changes, committed

    def _tolerance(self) -> Any:
        from datetime import timedelta

        return timedelta(seconds=float(self.settings.limits.future_tolerance))

    def note_lag(self, batches: list[Batch], home: list[Event]) -> None:
        """The lag of the commit just made: from the oldest batch's publish, and from the newest
        event's own time (a source replaying old logs shows a large event lag, not a slow analyzer)."""
        now = time.time()
        if batches:
            self.commit_lag = round(max(0.0, now - min(b.sent for b in batches)), 6)
        if home:
            self.event_lag = round(now - max(e.time for e in home).timestamp(), 6)

    def close(self) -> None:
        if self.store is not None:
            with contextlib.suppress(Exception):
                self.store.close()


async def _gather(inbox: asyncio.Queue[Any], first: Any) -> list[Any]:
    """``first`` and the batches that arrive with it (see GATHER_QUIET)."""
    messages = [first]
    deadline = time.monotonic() + GATHER_MAX
    while len(messages) < PREFETCH:
        while not inbox.empty() and len(messages) < PREFETCH:
            messages.append(inbox.get_nowait())
        left = deadline - time.monotonic()
        if left <= 0 or len(messages) >= PREFETCH:
            break
        try:
            messages.append(await asyncio.wait_for(inbox.get(), min(GATHER_QUIET, left)))
        except TimeoutError:
            break
    return messages


def _deliveries(message: Any) -> int:
    """How often the broker has delivered this message before (quorum queues count it)."""
    count = (getattr(message, "headers", None) or {}).get("x-delivery-count", 0)
    return count if isinstance(count, int) else 0


def _turns(messages: list[Any]) -> list[tuple[list[Any], bool]]:
    """The gathered messages as one turn; or, when one was delivered ISOLATE_AFTER times or more
    (a poison batch may be among them), as turns of one message each, in their order."""
    if any(_deliveries(m) >= ISOLATE_AFTER for m in messages):
        log.warning("batches delivered %d times or more: taken one at a time, each acknowledged "
                    "once committed (at %d deliveries the broker dead-letters a batch)", ISOLATE_AFTER,
                    DELIVERY_LIMIT + 1)
        return [([m], True) for m in messages]
    return [(messages, False)]


async def _accepted(partition: Partition, messages: list[Any]) -> tuple[list[Any], list[Batch]]:
    """The messages that are batches this partition can take, and those batches; the others are
    dead-lettered (rejected without requeue) and counted, each said in the log."""
    good, batches = [], []
    for message in messages:
        try:
            batch = decode_batch(message.body)
            why = partition.out_of_range(batch)
            if why is not None:
                raise WireError(f"batch {batch.collector}#{batch.seq}: {why}")
        except WireError as exc:
            log.error("partition %s: batch refused, dead-lettered: %s", partition.name, exc)
            partition.refused_batches += 1
            await message.reject(requeue=False)
            continue
        good.append(message)
        batches.append(batch)
    return good, batches


def _batch_copies(batch: Batch, fresh: bool, stored_refs: StoredRefs, home: list[Event],
                  tolerance: Any) -> tuple[list[Copy], int]:
    """A batch's routed copies, clamped (``ingest.clamp_future``), and how many were duplicates;
    its home copies are appended to ``home`` unless the batch is a replay (not ``fresh``: stored
    already). One pass per item, run for every copy an analyzer takes (the hot path)."""
    copies: list[Copy] = []
    duplicates = 0
    sets = batch.rule_sets
    run = f"@{batch.collector}.{batch.epoch}"
    latest = datetime.now(UTC) + tolerance  # as ingest.clamp: only events past it can be too far ahead
    for item in batch.items:
        event = item.event
        key = StoredRefs.key(event)
        if key is None:
            # a counter of the collector's run (``<origin>:<n>``): two collectors with the
            # same sources, or one restarted, count from 1 again; the run makes it unique,
            # so the engine does not take another record for a copy of this one
            event = replace(event, ref=event.ref + run)
        elif item.home and not stored_refs.first_time(key):
            # a record a killed collector published and its successor read again (the same
            # file offset, RELP digest, AMQP message): stored and detected already
            duplicates += 1
            continue
        if event.time > latest:
            event = ingest.clamp_future(event, tolerance)
        copies.append(Copy(event, sets[item.rules], fresh))
        if item.home and fresh:
            home.append(event)
    return copies, duplicates


def _at_or_before(position: dict[str, list[Any]], collector: str, epoch: str, seq: int) -> bool:
    mark = position.get(collector)
    return mark is not None and mark[0] == epoch and seq <= int(mark[1])


class Analyzer:
    """The analyzer role of one process."""

    def __init__(self, settings: Settings, *, prefer: list[int] | None = None) -> None:
        cluster = settings.cluster
        self.settings = settings
        self.topology = Topology(cluster.name, cluster.partitions)
        self.member = cluster.member or f"{settings.hostname}-analyzer"
        check_member(self.member)
        self.prefer = sorted(set(prefer if prefer is not None else range(cluster.partitions)))
        self.partitions: dict[int, Partition] = {}
        self.dispatcher = _dispatcher(settings)
        self.subscribed: list[int] = []
        self.depths: dict[int, int] = {}  # partition -> batches ready in its queue (refreshed per beat)
        self.started = time.time()
        self._http: Any = None
        self._beat_stop = asyncio.Event()
        self._lost = asyncio.Event()  # the broker connection closed
        self._beating: asyncio.Task[None] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._connection: Any = None
        self._failed: BaseException | None = None
        self.fenced = 0  # partitions given up because another analyzer claimed them
        self._channels: dict[int, Any] = {}  # partition -> the channel of its consumer
        self.given_up: dict[int, str] = {}  # partition -> why this analyzer stopped consuming it
        self.stall_limit = float(cluster.commit_stall_limit)
        self.resubscribe_delay = RESUBSCRIBE_DELAY
        self.resubscribe_max = RESUBSCRIBE_MAX
        self._backoff: dict[int, float] = {}  # partition -> the next back-off after a give-up
        self.give_ups: dict[int, int] = {}  # partition -> times given up (back-off, then standby again)

    async def run(self, stop: asyncio.Event) -> None:
        import aio_pika

        self._connection = await aio_pika.connect(self.settings.cluster.connect_url())
        # aio_pika's is_closed stays False when the server side vanishes; its close callbacks run
        self._connection.close_callbacks.add(lambda *_: self._lost.set())
        try:
            await declare(self._connection, self.topology)
            await self.dispatcher.start()
            beacon = Beacon(self.settings.cluster.connect_url(), self.topology, "analyzer", self.member,
                            self.describe, refresh=self._refresh_depths)
            self._beating = asyncio.create_task(beacon.run(self._beat_stop), name="heartbeat")
            await self._start_http()
            for number in self.prefer:
                await self._subscribe(number)
            others = [n for n in range(self.topology.partitions) if n not in self.prefer]
            await self._probe_partitions()
            log.info("analyzer %s ready: partitions %s (standby for %s)", self.member, self.prefer, others)
            if others:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), STANDBY_DELAY)
                for number in others if not stop.is_set() else []:
                    await self._subscribe(number)
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
                # the lost connection first: a worker acknowledging on its closed channel then
                # fails too (ChannelInvalidStateError), a consequence, not the cause (and may
                # fail a moment before the connection's close callbacks run)
                if self._failed is not None and not self._lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._lost.wait(), 1.0)
                if self._lost.is_set():  # the broker went away: exit, the service manager restarts us
                    raise ConnectionError("lost the broker connection; nothing uncommitted was acknowledged")
                if self._failed is not None:
                    raise self._failed
        finally:
            for worker in self._workers:
                worker.cancel()
            self._beat_stop.set()  # the last beat says "stopped": status drops this member at once
            if self._beating is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._beating, 3.0)
            if self._http is not None:
                await self._http.stop()
            with contextlib.suppress(Exception):
                await self._connection.close()
            for partition in self.partitions.values():
                await asyncio.to_thread(partition.close)
            await self.dispatcher.close(5.0)

    async def _probe_partitions(self) -> None:
        """An empty batch to every partition (see PROBE), with publisher confirms."""
        import aio_pika

        from stackwatch.cluster.wire import encode_batch

        channel = await self._connection.channel(publisher_confirms=True)
        try:
            exchange = await channel.get_exchange(self.topology.direct, ensure=False)
            for number, queue in enumerate(self.topology.queues):
                body = encode_batch(Batch(collector=PROBE, seq=1, epoch=self.member, bucket=-1,
                                          partition=number, sent=time.time()))
                await exchange.publish(aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                                       routing_key=queue)
        finally:
            await channel.close()

    async def _subscribe(self, number: int) -> None:
        channel = await self._connection.channel()
        self._channels[number] = channel
        await channel.set_qos(prefetch_count=PREFETCH)
        queue = await channel.get_queue(self.topology.queue(number), ensure=False)
        partition = Partition(number, self.settings, self.member)
        partition.channel = channel
        if number not in self.subscribed:
            self.subscribed.append(number)
        self._workers.append(asyncio.create_task(self._work(partition), name=f"partition-{number}"))
        await queue.consume(partition.inbox.put, no_ack=False)

    async def _work(self, partition: Partition) -> None:
        tick_every = float(self.settings.limits.tick_interval)
        next_tick = time.time() + tick_every
        try:
            while True:
                wait = max(0.01, min(IDLE_FINISH, next_tick - time.time()))
                if partition.reorder.held:  # released once their collectors went quiet
                    wait = min(wait, QUIET / 2)
                try:
                    first = await asyncio.wait_for(partition.inbox.get(), wait)
                except TimeoutError:
                    first = None
                now = time.time()
                if partition.engine is not None and now >= next_tick:
                    next_tick = now + tick_every
                    if partition.tick(now) and first is None:
                        await self._commit(partition, [], [])
                if first is None:
                    if partition.engine is not None and partition.reorder.held and partition.release_due():
                        await self._commit(partition, [], [])
                    idle = time.monotonic() - partition.last_batch >= IDLE_FINISH
                    if partition.engine is not None and not partition.finished and idle:
                        partition.finish()
                        await self._commit(partition, [], [], checkpoint=True)
                    elif partition.unacked:
                        await self._commit(partition, [], [], checkpoint=True)
                    continue
                partition.last_batch = time.monotonic()
                if partition.engine is None:
                    await asyncio.to_thread(partition.open)
                    self.partitions[partition.number] = partition
                    if partition.resumed:
                        log.info("partition %s: taken over from its checkpoint", partition.name)
                messages = await _gather(partition.inbox, first)
                for turn, alone in _turns(messages):
                    await self._take(partition, turn, alone)
        except asyncio.CancelledError:
            raise
        except PartitionFenced as exc:
            await self._fenced(partition, exc)
        except _GiveUp as exc:
            await self._give_up(partition, str(exc))
        except BaseException as exc:  # a bug: the process exits (systemd restarts it), nothing acked
            log.exception("partition %s worker failed", partition.name)
            self._failed = exc

    async def _take(self, partition: Partition, messages: list[Any], alone: bool) -> None:
        """One turn's messages: detect, commit (with a checkpoint, so acknowledged at once, when
        ``alone``: a batch delivered often, see ISOLATE_AFTER)."""
        good, batches = await _accepted(partition, messages)
        if not good:
            return
        before = partition.duplicates
        home, skipped = partition.run_batches(batches)
        partition.skipped_batches += skipped
        if not home and not partition.changes.pending and not any(b.items for b in batches):
            # idle batches and probes only: no records, no position, nothing to commit
            for message in good:
                await message.ack()
            return
        if partition.duplicates > before:
            log.info("partition %s: %d records sent again by a collector recognised (same ref), "
                     "not stored or counted twice", partition.name, partition.duplicates - before)
        try:
            await self._commit(partition, home, good, checkpoint=alone)
        except _GiveUp as exc:
            if alone and exc.refused and _deliveries(good[0]) >= ISOLATE_AFTER:
                await self._dead_letter(partition, good[0], exc)
            raise
        partition.note_lag(batches, home)

    async def _dead_letter(self, partition: Partition, message: Any, exc: _GiveUp) -> None:
        """A batch delivered ISOLATE_AFTER times whose commit, alone, the store refused (its
        predecessors, alone too, committed): a poison batch. Dead-lettered (kept in
        ``sw.<name>.dead``, counted in ``refused_batches``) before the partition is given up, so
        the partition's next owner, resuming from the checkpoint, goes on without it."""
        log.error("partition %s: a batch delivered %d times refused by the store on its own, "
                  "dead-lettered: %s", partition.name, _deliveries(message), exc)
        partition.refused_batches += 1
        with contextlib.suppress(Exception):
            await message.reject(requeue=False)

    async def _commit(self, partition: Partition, home: list[Event], messages: list[Any], *,
                      checkpoint: bool = False) -> None:
        """Commit; the batches are acknowledged with the next checkpoint of the state (every
        CHECKPOINT_INTERVAL, or PREFETCH // 2 batches): until then a standby would replay them."""
        partition.unacked += messages
        checkpoint = checkpoint or partition.last_checkpoint == 0.0 \
            or len(partition.unacked) >= PREFETCH // 2 \
            or time.monotonic() - partition.last_checkpoint >= CHECKPOINT_INTERVAL
        delay = 0.5
        while True:
            try:
                changes, committed = await asyncio.to_thread(partition.commit, home, checkpoint)
                break
            except PartitionFenced:
                raise  # taken over: nothing to retry (Analyzer._fenced)
            except Exception as exc:  # nothing acknowledged; retried while the database may come back
                self._commit_failed(partition, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        partition.stalled_since = None
        if self._backoff:
            self._recovered(partition)
        if checkpoint:
            for message in partition.unacked:
                await message.ack()
            partition.committed_batches += len(partition.unacked)
            partition.unacked = []
        partition.stored_events += len(home)
        partition.alert_changes += len(changes)
        partition.last_commit = time.time()
        for change, alert_id, status, muted in zip(changes, committed.ids, committed.statuses,
                                                   committed.silenced, strict=True):
            if not muted and change.dispatch:
                self.dispatcher.submit(change.snapshot, change.change, alert_id, status)

    async def _fenced(self, partition: Partition, exc: PartitionFenced) -> None:
        """Another analyzer took the partition over (a newer ownership epoch) while this one still
        consumed it: the commit was rolled back whole. Give the partition up (its unacknowledged
        batches go back to the broker with the channel, for the new owner, which replays them
        from its checkpoint) and wait as its standby again."""
        log.error("partition %s: fenced, another analyzer owns it now (%s); giving it up, "
                  "%d batches unacknowledged", partition.name, exc, len(partition.unacked))
        self.partitions.pop(partition.number, None)
        self.fenced += 1
        self._channels.pop(partition.number, None)
        with contextlib.suppress(Exception):
            await partition.channel.close()
        await asyncio.to_thread(partition.close)
        if not self._lost.is_set():
            await self._subscribe(partition.number)

    def _commit_failed(self, partition: Partition, exc: Exception) -> None:
        """A commit failed: return to retry it (a transient error, within ``stall_limit``), or
        raise ``_GiveUp`` (a permanent error, or the database away too long)."""
        now = time.monotonic()
        partition.commit_failures += 1
        if partition.stalled_since is None:
            partition.stalled_since = now
        stalled = now - partition.stalled_since
        if not transient(exc):
            raise _GiveUp(f"commit refused: {type(exc).__name__}: {exc}", refused=True) from exc
        if stalled >= self.stall_limit:
            raise _GiveUp(f"commit failing for {stalled:.0f} s: {type(exc).__name__}: {exc}") from exc
        log.error("partition %s: commit failed, will retry (transient, failing for %.0f s), nothing "
                  "acknowledged: %s", partition.name, stalled, exc)

    async def _give_up(self, partition: Partition, reason: str) -> None:
        """Stop consuming the partition: its channel closes, so the broker takes back every batch
        not acknowledged (none was that is not committed) and hands the partition to a standby.
        Said in the log, /healthz and /metrics until this analyzer restarts."""
        number = partition.number
        log.error("partition %s: given up, a standby takes it over (its batches not committed stay "
                  "unacknowledged): %s", partition.name, reason)
        self.given_up[number] = reason
        self.partitions.pop(number, None)
        if number in self.subscribed:
            self.subscribed.remove(number)
        channel = self._channels.pop(number, None)
        if channel is not None:
            with contextlib.suppress(Exception):
                await channel.close()
        await asyncio.to_thread(partition.close)
        self.give_ups[number] = self.give_ups.get(number, 0) + 1
        delay = self._backoff.get(number, self.resubscribe_delay)
        self._backoff[number] = min(delay * 2, self.resubscribe_max)
        self._workers.append(asyncio.create_task(self._resubscribe_later(number, delay),
                                                 name=f"resubscribe-{number}"))

    async def _resubscribe_later(self, number: int, delay: float) -> None:
        """Wait as a standby again after ``delay`` (see RESUBSCRIBE_DELAY); ``given_up`` keeps the
        reason until then (/healthz 503), ``give_ups`` counts it."""
        log.warning("partition p%03d: subscribing again as a standby in %.0f s", number, delay)
        await asyncio.sleep(delay)
        if self._lost.is_set():
            return
        self.given_up.pop(number, None)
        await self._subscribe(number)

    def _recovered(self, partition: Partition) -> None:
        """A commit of a partition given up before succeeded: the next give-up backs off afresh."""
        if self._backoff.pop(partition.number, None) is not None:
            log.info("partition %s: committing again after %d give-ups", partition.name,
                     self.give_ups.get(partition.number, 0))

    # ------------------------------------------------------------------ operations

    @property
    def takeovers(self) -> int:
        return sum(1 for p in self.partitions.values() if p.resumed)

    def describe(self) -> dict[str, Any]:
        """This analyzer's heartbeat (cluster/membership.py) and the base of its /metrics."""
        active = sorted(self.partitions)
        lag = {str(n): {"commit": p.commit_lag, "event": p.event_lag, "committed": round(p.last_commit, 3)}
               for n, p in self.partitions.items()}
        http = self._http.address if self._http is not None else None
        return {"active": active, "standby": [n for n in sorted(self.subscribed) if n not in self.partitions],
                "events": sum(p.events_in for p in self.partitions.values()),
                "stored": sum(p.stored_events for p in self.partitions.values()),
                "takeovers": self.takeovers, "lag": lag, "metrics": f"{http[0]}:{http[1]}" if http else None}

    async def _refresh_depths(self, connection: Any) -> None:
        from stackwatch.cluster.status import queue_states

        self.depths = {p.number: p.depth for p in await queue_states(connection, self.topology) if p.exists}

    async def _start_http(self) -> None:
        listen = self.settings.listen
        if listen.metrics is not None and listen.metrics_token is not None:
            from stackwatch.cluster.analyzer_http import AnalyzerHTTP

            self._http = AnalyzerHTTP(self, listen.metrics, listen.metrics_token.value)
            await self._http.start()
            log.info("analyzer %s: /metrics on %s:%d", self.member, *self._http.address)

    def healthy(self) -> bool:
        return (self._failed is None and self._connection is not None and not self._lost.is_set()
                and not self.given_up)


class _GiveUp(Exception):
    """A partition's commit cannot succeed (see ``Analyzer._commit_failed``); ``refused``: the
    store refused it (a permanent error), not the database away too long."""

    def __init__(self, reason: str, *, refused: bool = False) -> None:
        super().__init__(reason)
        self.refused = refused


def _dispatcher(settings: Settings) -> Dispatcher:
    from stackwatch.alerts.registry import create_sink
    from stackwatch.alerts.routing import Router
    from stackwatch.alerts.throttle import Throttle

    sinks = [create_sink(s) for s in settings.sinks]
    return Dispatcher(sinks, Router(settings.routing, [s.name for s in sinks]),
                      Throttle(float(settings.throttle.update_interval), settings.throttle.max_per_minute),
                      Path(settings.state_dir) / "dead-letter.jsonl")


async def serve_analyzer(settings: Settings, stop: asyncio.Event, prefer: list[int] | None = None) -> None:
    """Run the analyzer role until ``stop`` is set (SIGTERM/SIGINT)."""
    Path(settings.state_dir).mkdir(parents=True, exist_ok=True)
    await Analyzer(settings, prefer=prefer).run(stop)
