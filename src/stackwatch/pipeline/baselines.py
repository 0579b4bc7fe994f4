"""The spike rules' learned baselines across restarts of the live service.

A ``spike`` rule (detect/kinds/spike.py) learns each key's normal rate over days; held only in
memory, every restart of ``serve`` would put every project back into its learning day, when
only the absolute ``learning_threshold`` fires. Like the orphan ledger (respond/ledger.py),
the records are written to ``state_dir`` (``detect/baselines.json``), atomically, every
``limits.baselines_interval`` (5 minutes) and at a clean stop, and read back when the live engine is built.

The file is bounded by the rules' own ``max_keys`` (one small row per key, no evidence) and
refused past ``MAX_BYTES``. A file that is not ours, of another version, corrupt or too large
is logged and set aside (renamed ``*.refused``, for an operator to look at) and every spike
rule learns again: a bad file never stops the service. A rule whose window, baseline or
group_by changed since the snapshot relearns alone (its numbers meant something else);
rules no longer loaded are dropped. Deleting the file while serve is stopped resets them all.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import msgspec

from stackwatch.core.atomic import atomic_write
from stackwatch.core.types import DetectionEngine
from stackwatch.detect.kinds.spike import SpikeDetector, ordered

log = logging.getLogger(__name__)

BASELINES_FILE: Final = "detect/baselines.json"
FORMAT: Final = "stackwatch-spike-baselines"
VERSION: Final = 1
MAX_BYTES: Final = 512 * 1024 * 1024
"""Largest snapshot read back (100k keys of two rules take about 17 MB: docs/usage-hardware.md)."""


def baselines_path(state_dir: str | os.PathLike[str]) -> Path:
    return Path(state_dir) / BASELINES_FILE


def _spikes(engine: DetectionEngine) -> dict[str, SpikeDetector]:
    return {rule.id: det for rule, det in engine.detectors() if isinstance(det, SpikeDetector)}


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Building or decoding 100k+ small lists triggers the cyclic collector over the whole heap
    again and again (1 s instead of 0.1 s for 200k keys, on the service's loop); none of them is
    part of a cycle."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def snapshot(engine: DetectionEngine) -> dict[str, Any] | None:
    """The engine's spike baselines as a document of plain data, None when the engine has no
    spike rule. Take it on the thread that runs the engine (the event loop): the rows are
    copies, so the document can then be encoded and written by another thread (``write``)
    while the engine goes on changing its records."""
    spikes = _spikes(engine)
    if not spikes:
        return None
    with _collector_paused():
        rules = {rule_id: det.snapshot() for rule_id, det in spikes.items()}
    return {"format": FORMAT, "version": VERSION, "saved": time.time(), "rules": rules}


def write(doc: dict[str, Any], state_dir: str | os.PathLike[str]) -> int:
    """Write a ``snapshot`` to ``state_dir`` atomically (core.atomic); returns the number of
    keys written. Safe off the event loop: it reads only ``doc``."""
    for rule in doc["rules"].values():
        ordered(rule)
    atomic_write(baselines_path(state_dir), _encoded(doc))
    return sum(len(rule["keys"]) for rule in doc["rules"].values())


ROWS_PER_CHUNK: Final = 5000
"""Key rows encoded per call. msgspec holds the GIL for a whole encode (about 0.3 s for 200k
keys): in pieces, the thread writing a snapshot lets the event loop in between them."""


def _encoded(doc: dict[str, Any]) -> Iterator[bytes]:
    """``doc`` as the JSON ``msgspec.json.encode(doc)`` makes, in pieces of ROWS_PER_CHUNK rows."""
    encode = msgspec.json.encode
    head = {name: value for name, value in doc.items() if name != "rules"}
    yield encode(head)[:-1] + (b',' if head else b'') + b'"rules":{'
    for number, (rule_id, rule) in enumerate(doc["rules"].items()):
        shape = {name: value for name, value in rule.items() if name != "keys"}
        yield ((b"," if number else b"") + encode(rule_id) + b":" + encode(shape)[:-1]
               + (b"," if shape else b"") + b'"keys":[')
        rows = rule["keys"]
        for start in range(0, len(rows), ROWS_PER_CHUNK):
            yield (b"," if start else b"") + encode(rows[start:start + ROWS_PER_CHUNK])[1:-1]
        yield b"]}"
    yield b"}}"


def save(engine: DetectionEngine, state_dir: str | os.PathLike[str]) -> int:
    """``snapshot`` then ``write`` in the calling thread (at stop, and in tools); returns the
    number of keys written. Nothing is written when the engine has no spike rule."""
    doc = snapshot(engine)
    return 0 if doc is None else write(doc, state_dir)


def load(engine: DetectionEngine, state_dir: str | os.PathLike[str], now: float | None = None) -> int:
    """Give the engine's spike rules back their baselines; returns the number of keys restored.
    A missing file is a first start (0); a bad one is refused (see the module's docstring).
    ``now``: the restart's time (the wall clock), see SpikeDetector.restore."""
    now = time.time() if now is None else now
    spikes = _spikes(engine)
    target = baselines_path(state_dir)
    if not spikes or not target.exists():
        return 0
    try:
        size = target.stat().st_size
        if size > MAX_BYTES:
            raise ValueError(f"{size} bytes, more than the {MAX_BYTES} a snapshot may have")
        with _collector_paused():
            doc = msgspec.json.decode(target.read_bytes())
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError("not a stackwatch spike baselines snapshot")
        if doc.get("version") != VERSION:
            raise ValueError(f"snapshot version {doc.get('version')!r}, this stackwatch reads {VERSION}")
        rules = doc.get("rules")
        if not isinstance(rules, dict):
            raise ValueError("no rules")
    except (OSError, ValueError, msgspec.DecodeError) as exc:
        _refuse(target, exc)
        return 0
    restored = 0
    for rule_id, det in spikes.items():
        if rule_id not in rules:
            continue
        try:
            with _collector_paused():
                restored += det.restore(rules[rule_id], now)
        except ValueError as exc:
            # restore checks every row before taking any: nothing half-restored stays
            log.warning("spike baselines of rule %s not restored (%s): it learns again", rule_id, exc)
    log.info("spike baselines: %d keys restored from %s", restored, target)
    return restored


def _refuse(target: Path, exc: Exception) -> None:
    aside = target.with_name(target.name + ".refused")
    try:
        os.replace(target, aside)
    except OSError:
        aside = target
    log.error("spike baselines %s refused (%s); kept as %s; every spike rule learns again",
              target, exc, aside)
