"""An analyzer partition's records in event-time order across collectors (a watermark).

Each collector publishes its records roughly in time order, but two collectors' batches reach a
partition side by side: one collector's cut spans its ``batch_delay`` of records, and a batch
of collector B can arrive after a batch of collector A holding newer records. Taken as they
arrive, a partition's clock would run ahead of B's records: an explanation window closed too
early, a keystone login's copies correlated apart, a learning period judged on the wrong
record. So copies wait here until every collector that is sending to the partition has sent a
record at least as new (bounded out-of-orderness, as a stream processor's watermark):

* each collector's clock is the newest event time of its batches here, or the watermark its
  batches carry, if newer: a collector stamps every batch with its own event clock (the newest
  event time it routed, to any partition) and sends a partition that got none of its records in
  a cut an empty batch with it, and while idle its clock advanced by the wall time it has been
  idle (cluster/collector.py). So a partition knows how far each live collector got at every
  cut (``batch_delay``), not only when that collector next has records for it;
* the watermark is the oldest clock of the collectors heard from in the last ``QUIET``
  seconds (a collector that went quiet, or died, holds nothing back longer than that);
* ``release`` gives the held copies at or before the watermark, and those held ``QUIET``
  seconds already, in event-time order, ties by host as ``analyze`` takes them
  (pipeline/ties.py; stable: one host's records keep their order). The
  second bound keeps alerts live when one collector is far behind the others (catching up a
  backlog of old files): the live collectors' records wait a second, not for the backlog.

The held copies are part of the partition's checkpoint (``pack``/``unpack``): a standby that
takes over resumes with them, as their batches are acknowledged with that checkpoint.
"""

from __future__ import annotations

import bisect
import time
from collections import OrderedDict
from operator import attrgetter
from typing import Any, Final, NamedTuple

import msgspec

from stackwatch.cluster.wire import MAX_BATCH_BYTES, MAX_BATCH_ITEMS, BatchBuilder, decode_batch, encode_batch
from stackwatch.core.event import Event

QUIET: Final = 1.0
"""Seconds after its last batch here that a collector stops holding the watermark back."""
STABLE_ORIGINS: Final = ("file:", "relp:", "amqp:")
"""Origins whose refs name the record itself (a file's inode and offset, a RELP message's
digest, an AMQP message id): a record read or sent again carries the same ref. Other refs
(``<origin>:<count>``) are counters of one collector run."""
MAX_STORED_REFS: Final = 200_000
"""Stable refs of stored records remembered per partition (about 100 bytes each), to recognise
a record a killed collector had published and its successor sends again: far more than a
collector has unacknowledged (``max_unconfirmed``)."""
_FORMAT: Final = "sw-partition-1"


class Copy(NamedTuple):
    event: Event
    rules: tuple[str, ...]
    dispatch: bool  # False: a batch replayed from the checkpoint, its alerts delivered already


class Reorder:
    def __init__(self) -> None:
        self.held: list[Copy] = []
        self._arrived: list[float] = []  # monotonic time each held copy came in (non-decreasing)
        self._clocks: dict[str, list[float]] = {}  # collector -> [newest event time, monotonic seen]
        self._newest_held = float("-inf")  # the newest event time held (or newer): see release

    def push(self, collector: str, copies: list[Copy], now: float | None = None,
             watermark: float = 0.0) -> None:
        """A batch's copies (maybe none: an idle batch) and the collector's watermark it carried."""
        if not copies and not watermark:
            return
        newest = max(c.event.time for c in copies).timestamp() if copies else 0.0
        if newest > self._newest_held:
            self._newest_held = newest
        newest = max(newest, watermark)
        seen = time.monotonic() if now is None else now
        clock = self._clocks.get(collector)
        if clock is None:
            self._clocks[collector] = [newest, seen]
        else:
            clock[0], clock[1] = max(clock[0], newest), seen
        if copies:
            self.held += copies
            self._arrived += [seen] * len(copies)

    def restore(self, held: list[Copy]) -> None:
        """The held copies of a checkpoint (they count as arrived now)."""
        self.held = list(held)
        self._arrived = [time.monotonic()] * len(held)
        self._newest_held = max(c.event.time for c in held).timestamp() if held else float("-inf")

    def watermark(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        live = [newest for newest, seen in self._clocks.values() if now - seen < QUIET]
        return min(live) if live else float("inf")

    def release(self, now: float | None = None, *, everything: bool = False) -> list[Copy]:
        """The held copies at or before the watermark (all of them with ``everything``), oldest first."""
        if not self.held:
            return []
        now = time.monotonic() if now is None else now
        mark = float("inf") if everything else self.watermark(now)
        if mark >= self._newest_held:  # every held copy is due (one live collector: the usual case)
            out, self.held, self._arrived = self.held, [], []
            self._newest_held = float("-inf")
        else:
            # held too long: a prefix (copies are held in the order they arrived)
            waited = bisect.bisect_right(self._arrived, now - QUIET)
            out, keep, arrived = self.held[:waited], [], []
            for copy, came in zip(self.held[waited:], self._arrived[waited:], strict=True):
                if copy.event.time.timestamp() <= mark:
                    out.append(copy)
                else:
                    keep.append(copy)
                    arrived.append(came)
            if not out:
                return out
            self.held, self._arrived = keep, arrived
        out.sort(key=_TIE_ORDER)  # ties as analyze orders them (pipeline/ties.py), a C key
        return out


_TIE_ORDER = attrgetter("event.time", "event.host")
"""``pipeline.ties.tie_key`` of a copy's event (time, then host), as one C-level key."""


class StoredRefs:
    """The stable refs of the records this partition stored, the newest MAX_STORED_REFS."""

    def __init__(self, refs: list[str] | None = None) -> None:
        self._refs: OrderedDict[str, None] = OrderedDict.fromkeys(refs or ())

    @staticmethod
    def key(event: Event) -> str | None:
        """The record's identity when its source gives a stable one, else None."""
        if event.origin.startswith(STABLE_ORIGINS):
            return event.origin + "\x1f" + event.ref
        return None

    def first_time(self, key: str) -> bool:
        """Whether ``key`` is new here (it is remembered from now on)."""
        if key in self._refs:
            return False
        self._refs[key] = None
        if len(self._refs) > MAX_STORED_REFS:
            self._refs.popitem(last=False)
        return True

    def dump(self) -> list[str]:
        return list(self._refs)


def pack(engine_state: bytes, held: list[Copy], refs: StoredRefs) -> bytes:
    """The partition's checkpoint: the engine's snapshot, the held copies (as wire batches,
    which carry any event exactly) and the stored refs."""
    chunks = []
    builder = BatchBuilder()
    for copy in held:
        builder.add(copy.event, copy.rules, copy.dispatch)  # "home" carries the dispatch flag
        # cut by size as well as count: 20,000 copies of 1.4 KB events were over the wire's byte
        # limit, encode_batch refused the checkpoint and the partition retried it forever
        if builder.full(MAX_BATCH_ITEMS, MAX_BATCH_BYTES // 2):
            chunks.append(_held_chunk(builder))
            builder = BatchBuilder()
    if len(builder):
        chunks.append(_held_chunk(builder))
    return msgspec.msgpack.encode({"format": _FORMAT, "engine": engine_state, "held": chunks,
                                   "refs": refs.dump()})


def _held_chunk(builder: BatchBuilder) -> bytes:
    return encode_batch(builder.build(collector="held", seq=1, epoch="", bucket=0, sent=0.0))


def unpack(blob: bytes) -> tuple[bytes, list[Copy], StoredRefs]:
    """(engine snapshot, held copies, stored refs); a checkpoint of the engine alone (written
    before these were kept) has none of the others."""
    try:
        found: Any = msgspec.msgpack.decode(blob)
    except msgspec.DecodeError:
        found = None
    if not isinstance(found, dict) or found.get("format") != _FORMAT:
        return blob, [], StoredRefs()
    held = [Copy(event, rules, home)
            for chunk in found["held"] for event, rules, home in decode_batch(chunk).routed()]
    return bytes(found["engine"]), held, StoredRefs(list(found["refs"]))
