"""A detection engine's state as bytes, and back: what a partition's analyzer checkpoints with
its position so a standby that takes the partition over resumes its windows (cluster/).

The engine itself cannot be pickled (its rules are compiled closures), and need not be: the
standby builds the same engine from the same settings and loads only what events changed —
each detector's keyed windows (``state.CompactState`` / ``KeyedState``) and timer heaps, the
explainers' memory, the correlation stage's held groups, the orphan detector's resource ledger,
and the engine's open alerts, clock and next tick. Detectors are matched by rule id; a rule the
snapshot does not know starts empty, and state of a rule no longer loaded is dropped.

The bytes are a pickle read with an allow-list of classes (``_Unpickler``): a snapshot comes
from our own store, but a row in a database must not be able to run code in the analyzer.
"""

from __future__ import annotations

import io
import pickle
from typing import Any, Final

from stackwatch.core.errors import StackwatchError
from stackwatch.core.types import OrphanAware
from stackwatch.detect.engine import Engine
from stackwatch.detect.state import CompactState, KeyedState

FORMAT: Final = 1
_DETECTOR_ATTRS: Final = ("heap", "evidence", "_declared_done")
"""Detector attributes beside ``state`` that events change (timer heaps: threshold and
absence kinds; spike's evidence; absence's declared sources)."""
_ALLOWED: Final = {
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "tuple"), ("builtins", "list"),
    ("builtins", "dict"),
    ("collections", "OrderedDict"), ("collections", "deque"),
    ("datetime", "datetime"), ("datetime", "timezone"), ("datetime", "timedelta"),
    ("copyreg", "_reconstructor"), ("builtins", "object"),
    ("msgspec._utils", "rebuild"),  # calls a class, itself looked up through this list
}
_ALLOWED_MODULES: Final = ("stackwatch.core.event", "stackwatch.core.alert", "stackwatch.detect.correlate",
                            "stackwatch.respond.ledger")


class SnapshotError(StackwatchError):
    """A checkpoint that cannot be read back (another format, or classes it may not name)."""


def capture(engine: Engine) -> bytes:
    """The state of ``engine`` as bytes (one pickle, so objects shared between windows,
    alerts and held groups stay shared once loaded)."""
    detectors: dict[str, dict[str, Any]] = {}
    for rule, detector in engine.detectors():
        found: dict[str, Any] = {}
        state = getattr(detector, "state", None)
        if state is not None:
            found["state"] = _state_of(state)
        for name in _DETECTOR_ATTRS:
            if hasattr(detector, name):
                found[name] = getattr(detector, name)
        detectors[rule.id] = found
    explainers = {rule.id: _state_of(slot_explainer.state)
                  for rule, slot_explainer in _explainers(engine)}
    correlator = engine.correlator
    held = None
    if correlator is not None:
        held = (correlator.pending, correlator.by_request, correlator.by_ip, correlator.not_found)
    # respond/orphans.OrphanAwareEngine: the resource ledger
    owned = engine.orphans.state() if isinstance(engine, OrphanAware) else None
    snapshot = {
        "format": FORMAT,
        "orphans": owned,
        "engine": (engine._open, engine._alerts, engine._now, engine._next_tick, engine._held_rules,
                   engine._copies, engine.ctx.started, engine.ctx.declared_from),
        "detectors": detectors,
        "explainers": explainers,
        "correlator": held,
    }
    return pickle.dumps(snapshot, protocol=5)


def restore(engine: Engine, blob: bytes) -> None:
    """Load ``blob`` (from ``capture`` of an engine with the same rules) into ``engine``, a
    freshly built one."""
    snapshot = _loads(blob)
    if not isinstance(snapshot, dict) or snapshot.get("format") != FORMAT:
        raise SnapshotError("not a detection-state snapshot of this version")
    (opened, alerts, now, next_tick, held_rules, copies, started, declared_from) = snapshot["engine"]
    engine._open = opened
    engine._alerts = alerts
    engine._now = now
    engine._next_tick = next_tick
    engine._held_rules = held_rules
    engine._copies = copies
    engine.ctx.started = started
    if declared_from is not None:
        engine.ctx.declared_from = declared_from
    saved = snapshot["detectors"]
    for rule, detector in engine.detectors():
        found = saved.get(rule.id)
        if found is None:
            continue
        if "state" in found:
            _load_state(detector.state, found["state"])  # type: ignore[attr-defined]
        for name in _DETECTOR_ATTRS:
            if name in found and hasattr(detector, name):
                current = getattr(detector, name)
                if isinstance(current, list):  # in place: the kinds may hold references to them
                    current[:] = found[name]
                elif isinstance(current, dict):
                    current.clear()
                    current.update(found[name])
                else:
                    setattr(detector, name, found[name])
    for rule, explainer in _explainers(engine):
        if rule.id in snapshot["explainers"]:
            _load_state(explainer.state, snapshot["explainers"][rule.id])
    if isinstance(engine, OrphanAware) and snapshot.get("orphans") is not None:
        engine.orphans.load_state(snapshot["orphans"])
    correlator = engine.correlator
    if correlator is not None and snapshot["correlator"] is not None:
        pending, by_request, by_ip, not_found = snapshot["correlator"]
        correlator.pending = pending
        correlator.by_request = by_request
        correlator.by_ip = by_ip
        correlator.not_found = not_found


def _explainers(engine: Engine) -> list[tuple[Any, Any]]:
    return [(slot.rule, slot.explainer) for slot in engine._slots if slot.explainer is not None]


def _state_of(state: Any) -> tuple[Any, ...]:
    if isinstance(state, CompactState):
        return ("compact", state.data, state._order)
    if isinstance(state, KeyedState):
        return ("keyed", state._data, state._last)
    raise SnapshotError(f"unknown window state {type(state).__name__}")


def _load_state(state: Any, saved: tuple[Any, ...]) -> None:
    """Into the detector's own containers (the sequence kind holds a reference to its dict)."""
    kind = saved[0]
    if kind == "compact" and isinstance(state, CompactState):
        state.data.clear()
        state.data.update(saved[1])
        state._order.clear()
        state._order.extend(saved[2])
    elif kind == "keyed" and isinstance(state, KeyedState):
        state._data.clear()
        state._data.update(saved[1])
        state._last.clear()
        state._last.update(saved[2])
    else:
        raise SnapshotError(f"window state {kind!r} does not fit {type(state).__name__}")


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        # of our own modules only the classes they define: any name of them let a stream reach
        # what they import ('stackwatch.respond.ledger' + 'os.system': a protocol 4 name is a
        # dotted path), and so run a command in the analyzer from a row of the store
        if module in _ALLOWED_MODULES and name.isidentifier():
            found = super().find_class(module, name)
            if isinstance(found, type) and found.__module__ == module:
                return found
        raise SnapshotError(f"a detection-state snapshot may not name {module}.{name}")


def _loads(blob: bytes) -> Any:
    try:
        return _Unpickler(io.BytesIO(blob)).load()
    except SnapshotError:
        raise
    except Exception as exc:  # truncated or corrupt: the caller starts empty and says so
        raise SnapshotError(f"unreadable detection-state snapshot: {exc}") from exc
