"""Streams of lines: the plumbing between the scenario's episodes and the files.

A *stream* is a generator of *episodes*; an episode is a list of ``(t_ms, path, text)``
lines that belong together (a token request seen by Apache and keystone; an instance
build across nova-api, nova-compute, ovs and the notification bus). Episodes come in
order of their first line, their lines may spread over minutes and over several files.
``ordered`` turns one stream into time-ordered lines with a small heap, and the
generator merges all streams by time, so every file is written in time order while
holding only the episodes still open in memory.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

Line = tuple[int, str, str]  # (t_ms, '<host>/<file>', text); text may hold '\n' (AIDE report)
Episode = list[Line]


@dataclass(slots=True)
class Gate:
    """Which episodes of a stream survive: host down-times, a source that goes silent,
    a log level raised to WARNING after some time."""

    pauses: list[tuple[int, int]] = field(default_factory=list)  # [start, end) windows
    stop_at: int | None = None  # nothing from this time on

    def allows(self, t: int) -> bool:
        if self.stop_at is not None and t >= self.stop_at:
            return False
        return all(not (a <= t < b) for a, b in self.pauses)


def ordered(
    episodes: Iterable[Episode],
    end_ms: int,
    gate: Gate | None = None,
    line_filter: Callable[[Line], bool] | None = None,
) -> Iterator[Line]:
    """Lines of a stream in time order (ties keep their generation order)."""
    heap: list[tuple[int, int, str, str]] = []
    seq = 0
    push, pop = heapq.heappush, heapq.heappop
    for episode in episodes:
        if not episode:
            continue
        first = min(line[0] for line in episode)
        while heap and heap[0][0] <= first:
            t, _, path, text = pop(heap)
            yield t, path, text
        if gate is not None and not gate.allows(first):
            continue
        for line in episode:
            if line[0] >= end_ms or (gate is not None and not gate.allows(line[0])):
                continue
            if line_filter is not None and not line_filter(line):
                continue
            seq += 1
            push(heap, (line[0], seq, line[1], line[2]))
    while heap:
        t, _, path, text = pop(heap)
        yield t, path, text


def arrivals(rng: random.Random, t0: int, t1: int, count: float) -> Iterator[int]:
    """Poisson arrival times (ms) with ``count`` expected events in [t0, t1)."""
    if count <= 0 or t1 <= t0:
        return
    mean_gap = (t1 - t0) / count
    t = t0 + rng.expovariate(1.0) * mean_gap
    while t < t1:
        yield int(t)
        t += rng.expovariate(1.0) * mean_gap


def ticks(rng: random.Random, t0: int, t1: int, count: float, jitter_ms: int = 400) -> Iterator[int]:
    """Periodic times (a timer, a periodic task): ``count`` ticks evenly spread, jittered."""
    if count <= 0 or t1 <= t0:
        return
    period = (t1 - t0) / count
    jitter_ms = min(jitter_ms, int(period) // 2)
    t = t0 + rng.random() * period
    last = -1
    while t < t1:
        last = max(last + 1, int(t) + rng.randrange(jitter_ms + 1))
        yield last
        t += period
