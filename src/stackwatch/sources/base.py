"""What every live source shares: its common settings, its bounded record queue, its
counters, its rate limit, and the contract with the runner.

A source reads records (a syslog message, a log line, a notification) and puts them on its
own bounded ``RecordQueue``. Backpressure sources (TCP, file, AMQP) ``await put`` and so stop
reading while the queue is full; UDP uses ``offer`` and counts what it cannot queue. The
runner's worker takes records fairly from every queue and calls ``decode`` (parsing happens
there, so its CPU cost is scheduled fairly too). After the events of a batch are committed to
the store the runner calls ``commit(checkpoint())``: AMQP acknowledges, file tailing saves
offsets. Nothing is acknowledged before it is stored.
"""


from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, NamedTuple

from stackwatch.config.schema import ByteSize, setting
from stackwatch.core.event import Event, replace
from stackwatch.parsers.base import (
    MAX_PARSE_BYTES,
    ParseContext,
    RecordParser,
    is_multiline,
    parse_record,
    unparsed_event,
)
from stackwatch.parsers.framing import choose_parser
from stackwatch.parsers.registry import record_parser, record_parsers


@dataclass(frozen=True, kw_only=True)
class SourceSettings:
    """Settings every source type has (each type's Settings extends this)."""

    type: str = setting(help="the source type")
    name: str = setting("", "unique name, used in metrics and event origins (default: the type)")
    host: str = setting("", "host name for records that carry none (default: the sender's address)")
    service: str = setting("", "service name for records that carry none")
    max_message_bytes: ByteSize = setting(
        ByteSize(65536), "longer records are truncated to this size and flagged (attrs.truncated)"
    )
    rate_limit: float = setting(
        0.0,
        "records per second this source may deliver (0: no limit); "
        "TCP/file/AMQP are slowed down, UDP drops the excess (counted)",
    )
    burst: int = setting(0, "records allowed above the rate in a burst (default: one second's worth)")
    queue_size: int = setting(0, "records waiting for the pipeline (0: limits.queue_size)")

    def validate(self) -> None:
        if self.max_message_bytes < 64:
            raise ValueError("max_message_bytes must be at least 64")
        if self.rate_limit < 0 or self.burst < 0 or self.queue_size < 0:
            raise ValueError("rate_limit, burst and queue_size must not be negative")


class Record(NamedTuple):
    """One record as read: its text, when it arrived, who sent it, a source-specific
    locator (file offsets, an AMQP message) and its size before truncation (0: intact)."""

    text: str
    received: float  # wall clock, seconds
    peer: str
    meta: Any = None
    original_size: int = 0


@dataclass(slots=True)
class SourceCounters:
    received: int = 0  # records accepted into the queue
    bytes: int = 0
    dropped_queue_full: int = 0  # UDP only: the queue was full
    dropped_rate: int = 0  # UDP only: over the rate limit
    dropped_kernel: int = 0  # UDP only: the socket's receive buffer was full (the kernel's count)
    truncated: int = 0
    events: int = 0  # events decoded
    committed: int = 0  # events committed to the store
    unparsed: int = 0
    duplicates: int = 0  # redelivered records recognised as already stored (skipped)
    connections: int = 0  # open connections (TCP)
    errors: int = 0  # connection / read errors

    @property
    def dropped(self) -> int:
        return self.dropped_queue_full + self.dropped_rate + self.dropped_kernel


class RecordQueue:
    """A bounded FIFO of records shared by one source and the runner's worker."""

    def __init__(self, capacity: int, wake: asyncio.Event | None = None) -> None:
        self.capacity = max(1, capacity)
        self._items: deque[Record] = deque()
        self._space = asyncio.Event()
        self._space.set()
        self.wake = wake or asyncio.Event()  # set whenever records arrive (the worker waits on it)
        self.oldest: float | None = None

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, record: Record) -> bool:
        """Queue without waiting; False (nothing queued) when full."""
        if len(self._items) >= self.capacity:
            return False
        self._items.append(record)
        self.wake.set()
        return True

    async def put(self, record: Record) -> None:
        """Queue, waiting while the queue is full (this is the backpressure)."""
        while len(self._items) >= self.capacity:
            self._space.clear()
            await self._space.wait()
        self._items.append(record)
        self.wake.set()

    async def put_many(self, records: list[Record]) -> None:
        for record in records:
            if len(self._items) >= self.capacity:
                await self.put(record)
            else:
                self._items.append(record)
        if records:
            self.wake.set()

    def take(self, limit: int) -> list[Record]:
        items = self._items
        count = min(limit, len(items))
        out = [items.popleft() for _ in range(count)]
        if count and len(items) < self.capacity:
            self._space.set()
        return out

    def oldest_received(self) -> float | None:
        return self._items[0].received if self._items else None


class TokenBucket:
    """``rate`` records per second with ``burst`` headroom; rate 0 means unlimited."""

    def __init__(self, rate: float, burst: int = 0) -> None:
        self.rate = rate
        self.capacity = float(burst or max(1, int(rate)))
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self, count: int = 1) -> bool:
        if not self.rate:
            return True
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= count:
            self.tokens -= count
            return True
        return False

    async def wait(self, count: int = 1) -> None:
        """Take ``count`` tokens, sleeping until they are there (backpressure sources).

        A batch larger than the burst is taken a burst at a time: the bucket never holds more
        than ``capacity`` tokens, so waiting for all of them at once would never return."""
        if not self.rate:
            return
        step = max(1, int(self.capacity))
        remaining = count
        while remaining > 0:
            chunk = min(remaining, step)
            while not self.take(chunk):
                await asyncio.sleep(max(0.001, (chunk - self.tokens) / self.rate))
            remaining -= chunk


class Source(ABC):
    """A live source. Subclasses set ``Settings`` and implement start/stop/decode."""

    Settings: ClassVar[type[SourceSettings]] = SourceSettings
    origin_prefix: ClassVar[str] = ""

    def __init__(self, settings: Any, context: SourceContext) -> None:
        self.settings = settings
        self.name: str = settings.name
        self.context = context
        self.counters = SourceCounters()
        self.queue = RecordQueue(settings.queue_size or context.queue_size, context.wake)
        self.bucket = TokenBucket(settings.rate_limit, settings.burst)
        self.max_bytes = int(settings.max_message_bytes)

    @abstractmethod
    async def start(self) -> None:
        """Bind / connect / open; errors here stop ``serve`` (they are configuration errors)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop reading new records (already queued ones are still decoded and committed)."""

    @abstractmethod
    def decode(self, records: list[Record]) -> list[Event]:
        """Events of these records (runs in the worker; never raises for bad input)."""

    def taken_undecoded(self, records: list[Record]) -> None:  # noqa: B027 - optional hook
        """``decode`` raised on these records (a bug): the runner keeps them raw, so the next
        ``checkpoint`` must cover them (a source that acknowledges each record: every one of them,
        not only those ``decode`` got to)."""

    def checkpoint(self) -> Any:
        """What ``commit`` needs to acknowledge everything decoded so far."""
        return None

    async def commit(self, token: Any) -> None:  # noqa: B027 - optional hook, most sources have nothing to ack
        """Everything up to ``token`` is in the store: acknowledge / save offsets."""

    def delivery_delay(self) -> float:
        """Longest a record may wait, once written, before this source hands it to the pipeline
        beyond the network and the sender's own batching (a poll period, a multi-line record held
        open): a collector's idle watermark stays this far behind the wall clock
        (cluster/collector.py ``idle_watermark``). Sources that read as records arrive: 0."""
        return 0.0

    def idle(self, now: float) -> list[Event]:
        """Events held back waiting for more input (a multi-line record) that should be let go."""
        return []

    def refresh_counters(self) -> None:  # noqa: B027 - optional hook
        """Bring counters kept outside the process (the kernel's) up to date; called before
        they are reported or alerted on."""

    def truncate(self, data: bytes) -> tuple[str, int]:
        """Decode ``data``, cut to ``max_message_bytes``; returns (text, original size or 0)."""
        if len(data) > self.max_bytes:
            self.counters.truncated += 1
            return data[: self.max_bytes].decode("utf-8", "surrogateescape"), len(data)
        return data.decode("utf-8", "surrogateescape"), 0


class RecentRefs:
    """The refs of the newest records, at most ``limit`` (the oldest forgotten first): how a
    source whose sender sends again what was not acknowledged (RELP, AMQP) recognises what is
    stored already."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._refs: OrderedDict[str, None] = OrderedDict()

    def seed(self, context: SourceContext, prefix: str) -> None:
        """Remember the refs starting with ``prefix`` among the newest stored events (when the
        runner knows them: a restart recognises what was stored but not acknowledged)."""
        if context.recent_refs is not None:
            for ref in context.recent_refs(prefix):
                self.remember(ref)

    def remember(self, ref: str) -> bool:
        """True when ``ref`` is new (and remember it)."""
        refs = self._refs
        if ref in refs:
            return False
        refs[ref] = None
        if len(refs) > self.limit:
            refs.popitem(last=False)
        return True


@dataclass(slots=True)
class SourceContext:
    """What the runner gives every source."""

    queue_size: int
    wake: asyncio.Event
    state_dir: str
    hostname: str
    recent_refs: Any = None  # callable(origin_prefix) -> set[str]: refs of the newest stored events


def mark_truncated(event: Event, original_size: int) -> Event:
    return replace(event, attrs={**event.attrs, "truncated": True, "original_bytes": original_size})


class MessageDecoder:
    """Turns one self-contained message (a syslog frame, a datagram) into events: the syslog
    parser first, then any record parser that recognises it, else ``unparsed`` (raw kept)."""

    def __init__(self, origin: str, host: str = "", service: str = "") -> None:
        self.ctx = ParseContext(host=host, origin=origin, service=service, live=True)
        self.default_host = host
        self.origin = origin
        self.parsers: tuple[RecordParser, ...] = record_parsers()
        self.preferred: RecordParser | None = record_parser("syslog")
        self.count = 0
        self.unparsed = 0

    def decode(self, record: Record, ref: str = "") -> list[Event]:
        """``ref``: the events' ref when the source has a stable one (RELP's digest, which
        recognises a message sent again); default ``<origin>:<count>``."""
        ctx = self.ctx
        ctx.received = datetime.fromtimestamp(record.received, UTC)
        ctx.host = self.default_host or record.peer
        self.count += 1
        ctx.ref = ref or f"{self.origin}:{self.count}"
        text = record.text.rstrip("\r\n")
        lines = [text]
        parser = choose_parser(text, self.preferred, self.parsers) if len(text) <= MAX_PARSE_BYTES else None
        own_ref = ""
        if parser is not None and "\n" in text and is_multiline(parser):
            # A multi-line record in one frame (an AIDE report sent whole, a traceback): its
            # lines as the file reader hands them, so it gives the file form's events. Events of
            # the lines below the first get refs below the message's (``<ref>/line:<n>``): a
            # message's ref is a counter whose next value is the next message's.
            lines = text.split("\n")
            own_ref, ctx.ref = ctx.ref, ctx.ref + "/line:0"
        if parser is None:
            events = [
                unparsed_event(lines, ctx, "no parser recognised the record" if text else "empty record")
            ]
        else:  # the framing's rule for a record its parser refuses or finds nothing in
            events, _ = parse_record(parser, lines, ctx)
        if own_ref:
            events = [replace(e, ref=own_ref) if e.ref == ctx.ref else e for e in events]
            ctx.ref = own_ref
        if events[0].kind == "unparsed":
            self.unparsed += 1
        if record.original_size:
            events = [mark_truncated(event, record.original_size) for event in events]
        ctx.last_time = events[-1].time
        return events


class MessageSource(Source):
    """A source of self-contained syslog messages (UDP datagrams, TCP frames): each record is
    decoded by ``self.decoder`` (set by the subclass), which counts what no parser knew."""

    decoder: MessageDecoder

    def decode(self, records: list[Record]) -> list[Event]:
        out: list[Event] = []
        decode = self.decoder.decode
        for record in records:
            out.extend(decode(record))
        self.counters.unparsed = self.decoder.unparsed
        return out
