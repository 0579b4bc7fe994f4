"""Rule kinds: one module each. ``REGISTRY`` names each kind's detector class; the kind's module
(the one defining that class) carries ``FIELDS`` and ``parse_params``. A kind is imported when a
rule asks for it (``DETECTORS[kind]`` / ``MODULES[kind]``, read-only mappings over the registry)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from types import ModuleType
from typing import Final

from stackwatch.core.registry import Registry
from stackwatch.detect.kinds.base import Detector, Firing, KindContext

REGISTRY: Final[Registry[type[Detector]]] = Registry("rule kind", {
    "match": "stackwatch.detect.kinds.match:MatchDetector",
    "threshold": "stackwatch.detect.kinds.threshold:ThresholdDetector",
    "cardinality": "stackwatch.detect.kinds.cardinality:CardinalityDetector",
    "sequence": "stackwatch.detect.kinds.sequence:SequenceDetector",
    "new_value": "stackwatch.detect.kinds.new_value:NewValueDetector",
    "absence": "stackwatch.detect.kinds.absence:AbsenceDetector",
    "level_drop": "stackwatch.detect.kinds.level_drop:LevelDropDetector",
    "spike": "stackwatch.detect.kinds.spike:SpikeDetector",
})


def _module_of(detector: type[Detector]) -> ModuleType:
    return sys.modules[detector.__module__]  # imported: loading the class imported it


DETECTORS: Final[Mapping[str, type[Detector]]] = REGISTRY.view()
MODULES: Final[Mapping[str, ModuleType]] = REGISTRY.view(_module_of)

COUNTING: Final = frozenset({"match", "threshold", "cardinality", "sequence", "new_value", "spike"})
"""Kinds that count security events: they skip events the correlator marked as duplicates.
absence / level_drop measure a source's traffic, so they see every event."""

__all__ = ["COUNTING", "DETECTORS", "MODULES", "REGISTRY", "Detector", "Firing", "KindContext"]
