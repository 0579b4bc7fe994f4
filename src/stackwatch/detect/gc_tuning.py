"""Garbage-collector settings for a long-running detection process.

CPython's cyclic GC runs a young collection every 700 net allocations of container
objects, and a full one whenever the objects that survived since the last full one
reach a quarter of all long-lived objects. The engine's window state is exactly such a
population: hundreds of thousands of small per-key records that live for minutes. With
the default thresholds a stream of events spends a quarter of its time traversing them
(measured: keystone rules, 100k distinct source addresses: 9.0 s -> 6.8 s with this
tuning), although detection creates almost no reference cycles.

``tune_gc()`` is for the owner of the process (``stackwatch analyze`` / ``serve``): call
it once after start-up, when the rules are loaded and the engine is built. It moves
everything alive into the permanent generation (``gc.freeze``: the rule set, compiled
conditions and imported modules are never traversed again) and raises the thresholds, so
collections are rarer and young ones cover more allocations. Cycles are still collected,
only later. Not called by the engine itself: a library must not change process-wide
settings behind its caller's back (tests, embedding applications).
"""

from __future__ import annotations

import gc
from typing import Final

GEN0: Final = 50_000
"""Net container allocations between two young collections (CPython default: 700)."""
GEN1: Final = 20
"""Young collections between two middle ones (default: 10)."""
GEN2: Final = 100
"""Middle collections before a full one may run (default: 10; the 25 % rule still applies)."""


def tune_gc(gen0: int = GEN0, gen1: int = GEN1, gen2: int = GEN2) -> tuple[int, int, int]:
    """Freeze what start-up created and raise the GC thresholds; returns the previous
    thresholds (``gc.set_threshold(*previous)`` and ``gc.unfreeze()`` undo it)."""
    previous: tuple[int, int, int] = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(gen0, gen1, gen2)
    return previous
