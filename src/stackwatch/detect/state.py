"""Bounded, keyed window state shared by the stateful kinds.

Every stateful kind keeps one keyed store per rule: a mapping key -> small per-key record.
Two bounds keep memory flat whatever the input:

* **expiry**: a key untouched for ``ttl`` seconds (event time) is dropped by ``sweep``;
* **LRU cap**: past ``max_keys`` the least recently used key is evicted (and counted), so
  1M distinct source IPs cost at most ``max_keys`` records per rule.

``CompactState`` is what the hot kinds use. Its records are plain lists whose first two
items are ``[mark, last_use, key, ...]`` (the kind owns the rest), in a plain dict, their
order of placement in a deque: one small object per key, no per-key OrderedDict node, no
second dict of times, and a touch costs one store (``rec[LAST] = ts``), no reordering.
Eviction and expiry are lazy "second chance" passes from the oldest insertion: a record
touched since it was placed (``last_use > mark``) is moved to the back (``mark =
last_use``) instead of dropped. Each move pays for a touch, so both are O(1) amortised,
and the order is LRU up to touches within one pass. ``KeyedState`` (exact LRU, any value
type) serves the low-volume users (explained_by memory, new_value).

Keys are the rule's ``group_by`` values: the value itself for one field (a str: one object
less per key than a 1-tuple), a tuple for several (``key_func`` in kinds/base.py). So the
stream can later be partitioned across workers by key without changing any kind.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from stackwatch.core.alert import Evidence
from stackwatch.core.event import Event

V = TypeVar("V")
Key = tuple[str, ...]
StateKey = Hashable  # str (one group_by field) or tuple[str, ...]

EVIDENCE_PER_KEY = 5
"""Evidence records kept per key while a window is open (alerts keep up to 10)."""
MAX_RAW = 2000
"""Evidence keeps at most this many characters of a record's raw text."""
MARK: Final = 0
"""Record slot: the time the record was (re)placed at its position in the store."""
LAST: Final = 1
"""Record slot: the time the key was last used."""
KEY: Final = 2
"""Record slot: the record's key."""
SWEEP_EVERY: Final = 4096
"""Events between two expiry passes of a kind's store."""

_last_evidence: tuple[Event | None, Evidence | None] = (None, None)


def evidence_of(event: Event) -> Evidence:
    """The evidence record of ``event``. Every rule an event reaches shares one (Evidence
    is immutable): one allocation per event instead of one per rule, and one object per
    event in memory however many windows keep it. One cached pair, swapped atomically."""
    global _last_evidence
    cached = _last_evidence
    if cached[0] is event:
        return cached[1]  # type: ignore[return-value]
    raw = event.raw if len(event.raw) <= MAX_RAW else event.raw[:MAX_RAW] + "…"
    found = Evidence(ref=event.ref, raw=raw, time=event.time)
    _last_evidence = (event, found)
    return found


def pushed(items: tuple[Evidence, ...], event: Event, cap: int = EVIDENCE_PER_KEY) -> tuple[Evidence, ...]:
    """``items`` with ``event``'s evidence added: the first ``cap - 1`` records and the latest one
    (how it started, where it is). A tuple: records keep tuples, no per-key list."""
    if len(items) >= cap:
        return (*items[:-1], evidence_of(event))
    return (*items, evidence_of(event))


@dataclass(slots=True)
class StateStats:
    keys: int = 0
    evicted: int = 0  # dropped by the LRU cap (state lost early)
    expired: int = 0  # dropped because their window ended


class CompactState:
    """Per-key list records ``[mark, last_use, key, ...]`` with a lazy LRU cap and lazy expiry.

    Use: ``rec = state.data.get(key)``; a new record goes in with ``state.add(key, rec)``
    (``rec[MARK] == rec[LAST] == now``, ``rec[KEY] == key``); a touch sets ``rec[LAST] = now``.
    The order of placement is a deque of the records themselves (not the dict's order: a
    plain dict walks the holes its deletions leave at the front, which made eviction
    quadratic); a record no longer in the dict is a stale deque entry, skipped when met."""

    __slots__ = ("_countdown", "_order", "data", "max_keys", "stats", "ttl")

    def __init__(self, max_keys: int, ttl: float) -> None:
        self.data: dict[Any, list[Any]] = {}
        self._order: deque[list[Any]] = deque()
        self.max_keys = max_keys
        self.ttl = ttl
        self.stats = StateStats()
        self._countdown = SWEEP_EVERY

    def __len__(self) -> int:
        return len(self.data)

    def __contains__(self, key: object) -> bool:
        return key in self.data

    def add(self, key: Any, rec: list[Any]) -> None:
        data = self.data
        if len(data) >= self.max_keys and key not in data:
            self._evict()  # before inserting: the new record is never the one evicted
        data[key] = rec
        self._order.append(rec)

    def _evict(self) -> None:
        data, order = self.data, self._order
        while order:
            rec = order.popleft()
            key = rec[KEY]
            if data.get(key) is not rec:  # stale: popped or replaced since
                continue
            if rec[LAST] > rec[MARK]:  # used since placed: second chance, to the back
                rec[MARK] = rec[LAST]
                order.append(rec)
                continue
            del data[key]
            self.stats.evicted += 1
            return

    def tick(self, now: float) -> None:
        """Count one event; every SWEEP_EVERY events run the expiry pass."""
        self._countdown -= 1
        if self._countdown <= 0:
            self._countdown = SWEEP_EVERY
            self.sweep(now)

    def sweep(self, now: float) -> int:
        """Drop records unused for ``ttl`` seconds (oldest first); stops at the first live
        record that was not used since it was placed (everything after it is younger)."""
        if self.ttl <= 0:
            return 0
        data, order, limit = self.data, self._order, now - self.ttl
        dropped = 0
        while order:
            rec = order[0]
            key = rec[KEY]
            if data.get(key) is not rec:
                order.popleft()
            elif rec[LAST] <= limit:
                order.popleft()
                del data[key]
                dropped += 1
            elif rec[LAST] > rec[MARK]:
                order.popleft()
                rec[MARK] = rec[LAST]
                order.append(rec)
            else:
                break
        self.stats.expired += dropped
        return dropped

    def pop(self, key: Any) -> list[Any] | None:
        return self.data.pop(key, None)

    def current_stats(self) -> StateStats:
        self.stats.keys = len(self.data)
        return self.stats


class KeyedState(Generic[V]):
    """An LRU mapping of per-key records with expiry on event time."""

    __slots__ = ("_data", "_last", "max_keys", "stats", "ttl")

    def __init__(self, max_keys: int, ttl: float) -> None:
        self._data: OrderedDict[Key, V] = OrderedDict()
        self._last: dict[Key, float] = {}
        self.max_keys = max_keys
        self.ttl = ttl
        self.stats = StateStats()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Key) -> bool:
        return key in self._data

    def get(self, key: Key, now: float, factory: Callable[[], V]) -> V:
        """The record for ``key`` (created when missing), marked as used at ``now``."""
        data = self._data
        value = data.get(key)
        if value is None:
            value = factory()
            data[key] = value
            if len(data) > self.max_keys:
                old, _ = data.popitem(last=False)
                self._last.pop(old, None)
                self.stats.evicted += 1
        else:
            data.move_to_end(key)
        self._last[key] = now
        return value

    def peek(self, key: Key) -> V | None:
        return self._data.get(key)

    def pop(self, key: Key) -> V | None:
        self._last.pop(key, None)
        return self._data.pop(key, None)

    def sweep(self, now: float) -> int:
        """Drop keys untouched for ``ttl`` seconds (oldest first; stops at the first live one)."""
        if self.ttl <= 0:
            return 0
        data, last, limit = self._data, self._last, now - self.ttl
        dropped = 0
        while data:
            key = next(iter(data))
            if last.get(key, now) > limit:
                break
            data.popitem(last=False)
            last.pop(key, None)
            dropped += 1
        self.stats.expired += dropped
        return dropped

    def items(self) -> Iterator[tuple[Key, V]]:
        return iter(list(self._data.items()))

    def last_used(self, key: Key) -> float | None:
        return self._last.get(key)
