"""Taking records from the live sources in fair turns, the same for every process that reads
them (serve's runner, the cluster's collector).

Each turn starts at the next source round-robin (``start``) and takes at most ``quantum``
records from each source with records queued, again and again, until ``budget`` is spent or
the queues are empty: a busy source cannot starve a quiet one, and one turn is bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from stackwatch.core.event import Event
from stackwatch.sources.base import Source


def take_fair(sources: Sequence[Source], start: int, quantum: int,
              budget: int) -> list[tuple[Source, list[Any]]]:
    """``(source, records)`` taken this turn, in the order taken (a source may recur)."""
    active = [s for s in [*sources[start:], *sources[:start]] if len(s.queue)]
    out = []
    while budget > 0 and active:
        still = []
        for source in active:
            records = source.queue.take(min(quantum, budget))
            if records:
                out.append((source, records))
                budget -= len(records)
            if len(source.queue) and budget > 0:
                still.append(source)
        active = still
    return out


class FairTurns:
    """Where each turn over one process's sources starts: the next source round-robin."""

    def __init__(self) -> None:
        self.round = 0

    def take(self, sources: Sequence[Source], quantum: int, budget: int) -> list[tuple[Source, list[Any]]]:
        """One turn (``take_fair``), starting one source further than the last."""
        if not sources:
            return []
        self.round = (self.round + 1) % len(sources)
        return take_fair(sources, self.round, quantum, budget)


def release_idle(sources: Sequence[Source], now: float,
                 route: Callable[[Source, list[Event]], None]) -> None:
    """Hand ``route`` the events each source held back for more input that it lets go at
    ``now`` (``float("inf")``: all of them, at shutdown)."""
    for source in sources:
        held = source.idle(now)
        if held:
            route(source, held)
