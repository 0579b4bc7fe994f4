"""Bounded, keyed window state shared by the stateful kinds.

Every kind keeps one ``KeyedState`` per rule: a mapping key -> small per-key record,
ordered by last use. Two bounds keep memory flat whatever the input:

* **expiry**: a key untouched for ``ttl`` seconds (event time) is dropped by ``sweep``;
* **LRU cap**: past ``max_keys`` the least recently used key is evicted (and counted), so
  1M distinct source IPs cost at most ``max_keys`` records per rule.

Keys are tuples of the rule's ``group_by`` values, so the stream can later be partitioned
across workers by key without changing any kind.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from stackwatch.core.alert import Evidence
from stackwatch.core.event import Event

V = TypeVar("V")
Key = tuple[str, ...]

EVIDENCE_PER_KEY = 5
"""Evidence records kept per key while a window is open (alerts keep up to 10)."""
MAX_RAW = 2000
"""Evidence keeps at most this many characters of a record's raw text."""


def evidence_of(event: Event) -> Evidence:
    raw = event.raw if len(event.raw) <= MAX_RAW else event.raw[:MAX_RAW] + "…"
    return Evidence(ref=event.ref, raw=raw, time=event.time)


def push_evidence(items: list[Evidence], event: Event, cap: int = EVIDENCE_PER_KEY) -> None:
    """Keep the first ``cap - 1`` records and the latest one (how it started, where it is)."""
    if len(items) >= cap:
        items[-1] = evidence_of(event)
    else:
        items.append(evidence_of(event))


@dataclass(slots=True)
class StateStats:
    keys: int = 0
    evicted: int = 0  # dropped by the LRU cap (state lost early)
    expired: int = 0  # dropped because their window ended


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
