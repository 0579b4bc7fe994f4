"""Keyed window state: LRU cap with eviction counted, expiry on event time."""

from __future__ import annotations

from stackwatch.detect.state import KeyedState


def test_lru_cap_evicts_the_least_recently_used_key() -> None:
    state: KeyedState[list[int]] = KeyedState(max_keys=2, ttl=0)
    state.get(("a",), 0, list)
    state.get(("b",), 1, list)
    state.get(("a",), 2, list)  # a is now the most recent
    state.get(("c",), 3, list)
    assert ("b",) not in state and ("a",) in state and ("c",) in state
    assert state.stats.evicted == 1


def test_sweep_drops_keys_untouched_for_the_ttl() -> None:
    state: KeyedState[list[int]] = KeyedState(max_keys=10, ttl=60)
    state.get(("old",), 0, list)
    state.get(("new",), 100, list)
    assert state.sweep(130) == 1
    assert len(state) == 1 and state.stats.expired == 1
