"""Rule kinds: one module each. The table below is the registry the loader and the
engine use (kind name -> module with ``FIELDS``, ``parse_params`` and a detector)."""

from __future__ import annotations

from types import ModuleType
from typing import Final

from stackwatch.detect.kinds import (
    absence,
    cardinality,
    level_drop,
    match,
    new_value,
    sequence,
    spike,
    threshold,
)
from stackwatch.detect.kinds.base import Detector, Firing, KindContext

MODULES: Final[dict[str, ModuleType]] = {
    "match": match,
    "threshold": threshold,
    "cardinality": cardinality,
    "sequence": sequence,
    "new_value": new_value,
    "absence": absence,
    "level_drop": level_drop,
    "spike": spike,
}

DETECTORS: Final[dict[str, type[Detector]]] = {
    "match": match.MatchDetector,
    "threshold": threshold.ThresholdDetector,
    "cardinality": cardinality.CardinalityDetector,
    "sequence": sequence.SequenceDetector,
    "new_value": new_value.NewValueDetector,
    "absence": absence.AbsenceDetector,
    "level_drop": level_drop.LevelDropDetector,
    "spike": spike.SpikeDetector,
}

COUNTING: Final = frozenset({"match", "threshold", "cardinality", "sequence", "new_value", "spike"})
"""Kinds that count security events: they skip events the correlator marked as duplicates.
absence / level_drop measure a source's traffic, so they see every event."""

__all__ = ["COUNTING", "DETECTORS", "MODULES", "Detector", "Firing", "KindContext"]
