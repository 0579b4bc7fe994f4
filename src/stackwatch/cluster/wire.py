"""The wire format between collectors and analyzers: a batch of routed events, msgpack.

A collector parses records into events, asks the partition planner (``routing.py``) where each
event must go (routing buckets, each belonging to one partition), and publishes one ``Batch`` per
partition per cut. Every item of a batch is one copy of an event routed here: the rule ids this
copy must be evaluated for (the rules whose group-by keys routed it to this partition) and
whether this copy is the event's *home* copy, the one the analyzer stores. Every event has
exactly one home copy, so it is stored exactly once however many partitions evaluate it.

Rule ids repeat across the items of a batch (the events of one kind meet the same rules), so a
batch carries a table of rule sets and each item names its set by index: a batch of 2,000
failed logins carries the rule ids once, not 2,000 times.

msgpack strings are UTF-8, and an event's text may hold lone surrogates (undecodable input bytes,
kept with surrogateescape). Such an event travels with its ``raw`` as bytes, restored exactly on
decoding, and its other text fields cleaned as the store cleans them (each undecodable byte
becomes U+FFFD, ``store/rows.py``): what is stored is the same as in a single process.

Decoding checks the version, the sizes and every index, and raises ``WireError`` (a ``ValueError``)
that says what is wrong: an analyzer rejects such a batch as a whole (dead-lettered, counted)
rather than storing part of it.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from stackwatch.core.event import Event
from stackwatch.store.rows import clean_text, raw_bytes

WIRE_VERSION: Final = 1
"""Bumped on any incompatible change; a decoder refuses other versions."""
MAX_BATCH_BYTES: Final = 16 * 1024 * 1024
"""An encoded batch never exceeds this (RabbitMQ's own default limit is 128 MiB; staying far below
keeps a batch's memory on both sides small). The collector closes a batch before it gets there."""
MAX_BATCH_ITEMS: Final = 20_000
MAX_RULE_SETS: Final = 4096
MAX_NAME: Final = 255
CONTENT_TYPE: Final = "application/vnd.stackwatch.batch+msgpack"


class WireError(ValueError):
    """A batch that cannot be decoded or breaks a limit."""


class Item(msgspec.Struct, array_like=True, frozen=True):
    """One copy of an event in a batch."""

    event: Event
    rules: int  # index into Batch.rule_sets: the rules this copy is evaluated for
    home: bool  # this copy is the one stored (exactly one copy of every event is)
    raw: bytes | None = None  # the event's raw bytes when its text holds undecodable bytes (below)


class Batch(msgspec.Struct, frozen=True, kw_only=True):
    """A collector's batch for one partition (or, from older collectors, one routing bucket)."""

    version: int = WIRE_VERSION
    collector: str  # the collector's name (unique in a cluster)
    seq: int  # the collector's batch sequence number, strictly increasing per collector run
    epoch: str = ""  # the collector's run id: seq restarts from 1 when the collector restarts
    bucket: int = 0  # the routing bucket of an older collector's batch (consistent-hash exchange); -1: none
    sent: float = 0.0  # wall clock when published (lag metrics)
    partition: int = -1  # the partition the batch was published to (-1: an older collector's bucket batch)
    # the collector's event clock when it built the batch: the newest event time it routed, or, in
    # an idle batch (no items), where its clock has got to (cluster/reorder.py); 0: not given
    watermark: float = 0.0
    rule_sets: list[tuple[str, ...]] = msgspec.field(default_factory=list)
    items: list[Item] = msgspec.field(default_factory=list)

    def routed(self) -> list[tuple[Event, tuple[str, ...], bool]]:
        """(event, rule ids to evaluate, store it) for every item, in order."""
        sets = self.rule_sets
        return [(item.event, sets[item.rules], item.home) for item in self.items]


class BatchBuilder:
    """Collects the items of one bucket's next batch, interning rule sets."""

    __slots__ = ("_index", "bytes_hint", "items", "rule_sets")

    def __init__(self) -> None:
        self.items: list[Item] = []
        self.rule_sets: list[tuple[str, ...]] = []
        self._index: dict[tuple[str, ...], int] = {}
        self.bytes_hint = 0  # a cheap upper estimate of the encoded size (see _hint)

    def add(self, event: Event, rules: tuple[str, ...], home: bool) -> None:
        index = self._index.get(rules)
        if index is None:
            index = self._index[rules] = len(self.rule_sets)
            self.rule_sets.append(rules)
        self.items.append(Item(event, index, home))
        raw, message = event.raw, event.message  # _hint, inlined: this runs for every copy
        self.bytes_hint += (3 * (len(raw) if raw.isascii() else 4 * len(raw))
                            + (len(message) if message.isascii() else 4 * len(message)) + 200)

    def __len__(self) -> int:
        return len(self.items)

    def full(self, max_items: int, max_bytes: int) -> bool:
        return (len(self.items) >= max_items or self.bytes_hint >= max_bytes
                or len(self.rule_sets) >= MAX_RULE_SETS)

    def split(self) -> tuple[BatchBuilder, BatchBuilder]:
        """The items in two halves (in order), each with this builder's rule sets: for a batch
        the wire refused although the size estimate let it through."""
        half = len(self.items) // 2
        parts = (BatchBuilder(), BatchBuilder())
        for part, items in zip(parts, (self.items[:half], self.items[half:]), strict=True):
            part.items, part.rule_sets, part._index = items, self.rule_sets, self._index
            part.bytes_hint = self.bytes_hint // 2
        return parts

    def build(self, *, collector: str, seq: int, epoch: str, bucket: int = -1, sent: float,
              partition: int = -1, watermark: float = 0.0) -> Batch:
        return Batch(collector=collector, seq=seq, epoch=epoch, bucket=bucket, sent=sent,
                     partition=partition, watermark=watermark, rule_sets=self.rule_sets, items=self.items)


def _hint(raw: str, message: str) -> int:
    """An upper estimate of an item's encoded size, cheap enough for every copy. Text is counted
    in UTF-8 bytes at worst (4 a character unless it is ASCII: ``isascii`` reads a flag, it does
    not scan), and the parsed fields (attrs, initiator, target...) as up to twice the raw record
    they were taken from: counting characters of raw and message only, a batch of JSON records
    with non-ASCII fields encoded to twice MAX_BATCH_BYTES and stopped the collector, again on
    the same records after every restart."""
    raw_bytes = len(raw) if raw.isascii() else 4 * len(raw)
    message_bytes = len(message) if message.isascii() else 4 * len(message)
    return 3 * raw_bytes + message_bytes + 200


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Batch)


def encode_batch(batch: Batch) -> bytes:
    """The batch as msgpack; ``WireError`` if it breaks a limit (a collector bug: it splits first)."""
    _check(batch)
    try:
        data = _encoder.encode(batch)
    except UnicodeEncodeError:  # rare: some event holds undecodable bytes
        batch = msgspec.structs.replace(batch, items=[_wire_safe(item) for item in batch.items])
        data = _encoder.encode(batch)
    if len(data) > MAX_BATCH_BYTES:
        raise WireError(f"batch {batch.collector}#{batch.seq} is {len(data)} bytes, over {MAX_BATCH_BYTES}")
    return data


def decode_batch(data: bytes | bytearray | memoryview) -> Batch:
    """A batch from its msgpack bytes, checked; ``WireError`` says why it is refused."""
    size = len(data)
    if size > MAX_BATCH_BYTES:
        raise WireError(f"batch of {size} bytes is over the limit of {MAX_BATCH_BYTES}")
    if size == 0:
        raise WireError("empty message: not a batch")
    try:
        batch = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        # a different version may have a different shape: say the version when it can be read
        version = _peek_version(data)
        if version is not None and version != WIRE_VERSION:
            raise WireError(
                f"batch version {version} is not supported (this is version {WIRE_VERSION})") from None
        raise WireError(f"malformed batch: {exc}") from None
    except msgspec.DecodeError as exc:
        raise WireError(f"not a msgpack batch: {exc}") from None
    _check(batch)
    if any(item.raw is not None for item in batch.items):
        batch = msgspec.structs.replace(batch, items=[_restored(item) for item in batch.items])
    return batch


def _wire_safe(item: Item) -> Item:
    try:
        _encoder.encode(item.event)
        return item
    except UnicodeEncodeError:
        pass
    event = item.event
    raw = raw_bytes(event.raw)
    fields = _clean(msgspec.to_builtins(msgspec.structs.replace(event, raw="")))
    return Item(msgspec.convert(fields, Event), item.rules, item.home, raw)


def _restored(item: Item) -> Item:
    if item.raw is None:
        return item
    raw = item.raw.decode("utf-8", "surrogateescape")
    return Item(msgspec.structs.replace(item.event, raw=raw), item.rules, item.home)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _check(batch: Batch) -> None:
    if batch.version != WIRE_VERSION:
        raise WireError(f"batch version {batch.version} is not supported (this is version {WIRE_VERSION})")
    if not batch.collector or len(batch.collector) > MAX_NAME:
        raise WireError(f"batch collector name must be 1..{MAX_NAME} characters")
    if batch.seq < 1:
        raise WireError(f"batch seq must be positive, got {batch.seq}")
    if len(batch.items) > MAX_BATCH_ITEMS:
        raise WireError(f"batch has {len(batch.items)} items, over {MAX_BATCH_ITEMS}")
    if len(batch.rule_sets) > MAX_RULE_SETS:
        raise WireError(f"batch has {len(batch.rule_sets)} rule sets, over {MAX_RULE_SETS}")
    count = len(batch.rule_sets)
    for position, item in enumerate(batch.items):
        if not 0 <= item.rules < count:
            raise WireError(f"batch item {position} names rule set {item.rules}, the batch has {count}")


class _Version(msgspec.Struct):
    version: int = 0


def _peek_version(data: bytes | bytearray | memoryview) -> int | None:
    try:
        return msgspec.msgpack.decode(data, type=_Version).version
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
