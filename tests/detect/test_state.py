"""Keyed window state: LRU cap with eviction counted, expiry on event time."""

from __future__ import annotations

import gc

import pytest
from detect_helpers import ev, rule_from_yaml

from stackwatch.detect.engine import Engine
from stackwatch.detect.gc_tuning import tune_gc
from stackwatch.detect.state import LAST, CompactState, KeyedState, evidence_of


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


# ---------------------------------------------------------------------------- CompactState


def _record(state: CompactState, key: str, now: float) -> list[object]:
    rec: list[object] = [now, now, key]
    state.add(key, rec)
    return rec


def test_compact_state_never_holds_more_than_max_keys() -> None:
    state = CompactState(max_keys=3, ttl=0)
    for i in range(10):
        _record(state, f"k{i}", float(i))
    assert len(state) == 3 and state.stats.evicted == 7
    assert set(state.data) == {"k7", "k8", "k9"}


def test_compact_state_evicts_a_key_unused_since_placed_before_a_used_one() -> None:
    state = CompactState(max_keys=2, ttl=0)
    a = _record(state, "a", 0.0)
    _record(state, "b", 1.0)
    a[LAST] = 2.0  # "a" is used again: it gets a second chance
    _record(state, "c", 3.0)
    assert set(state.data) == {"a", "c"} and state.stats.evicted == 1


def test_compact_state_sweep_drops_only_expired_keys() -> None:
    state = CompactState(max_keys=10, ttl=60)
    _record(state, "old", 0.0)
    used = _record(state, "used", 10.0)
    _record(state, "new", 100.0)
    used[LAST] = 120.0
    assert state.sweep(130.0) == 1
    assert set(state.data) == {"used", "new"} and state.stats.expired == 1


def test_compact_state_skips_records_popped_or_replaced() -> None:
    state = CompactState(max_keys=2, ttl=0)
    _record(state, "a", 0.0)
    state.pop("a")
    _record(state, "a", 1.0)  # a fresh record under the same key
    _record(state, "b", 2.0)
    _record(state, "c", 3.0)  # evicts the oldest live record: the fresh "a"
    assert set(state.data) == {"b", "c"} and state.stats.evicted == 1


def test_evidence_of_one_event_is_one_shared_record() -> None:
    first, second = ev(0), ev(1)
    assert evidence_of(first) is evidence_of(first)
    assert evidence_of(second) is not evidence_of(first)
    assert evidence_of(first) == evidence_of(ev(0))  # same content, another event object


@pytest.mark.parametrize("kind", ["threshold", "cardinality", "sequence"])
def test_many_distinct_keys_stay_under_the_cap(kind: str) -> None:
    """200k distinct source addresses through a rule capped at 50k keys: the state never
    holds more than the cap, and every key beyond it is counted as evicted."""
    params = {"threshold": "threshold: 3\n", "cardinality": "threshold: 3\nfield: initiator.name\n",
              "sequence": "steps:\n  - {condition: {outcome: failure}, count: 2}\n"
                          "  - {condition: {outcome: success}}\n"}[kind]
    rule = rule_from_yaml(f"kind: {kind}\ncondition: {{action: authenticate}}\n"
                          f"group_by: [initiator.source_ip]\nwindow: 1h\nmax_keys: 50000\n{params}")
    engine = Engine([rule], correlate=False)
    held = 0
    for i in range(200_000):
        ip = f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}"
        engine.process(ev(i * 0.001, action="authenticate", outcome="failure",
                          initiator={"source_ip": ip, "name": f"u{i}"}))
        if i % 10_000 == 0:
            held = max(held, engine.state_stats()[rule.id]["keys"])
    stats = engine.state_stats()[rule.id]
    assert max(held, stats["keys"]) <= 50_000
    assert stats["keys"] == 50_000 and stats["evicted"] == 150_000


def test_tune_gc_freezes_startup_objects_and_raises_thresholds() -> None:
    previous = tune_gc(gen0=12_345)
    try:
        assert gc.get_threshold()[0] == 12_345
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*previous)
