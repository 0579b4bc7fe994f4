"""``match``: every event that satisfies the condition fires (dedup folds repeats)."""

from __future__ import annotations

from typing import Any

from stackwatch.core.event import Event
from stackwatch.detect.kinds.base import Detector, Firing
from stackwatch.detect.state import evidence_of
from stackwatch.detect.yaml_locations import LocDict

FIELDS: tuple[str, ...] = ()


def parse_params(doc: LocDict, file: str) -> Any:
    return None


class MatchDetector(Detector):
    def on_event(self, event: Event, ts: float) -> Firing | None:
        return Firing(self.key_of(event), ts, event, evidence=[evidence_of(event)])
