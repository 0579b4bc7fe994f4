"""Operator overrides of rules' ``enabled`` flag, set from the web UI or API.

Kept in ``rule-state.json`` in the data folder: ``{"<rule id>": {"enabled": false, "by": "alice",
"time": "..."}}``. The rule files stay untouched (built-in packs are package data). The
pipeline applies the overrides when it builds its engine (``apply_overrides``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from stackwatch.detect.model import Rule

STATE_FILE: Final = "rule-state.json"


class RuleState:
    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._memory: dict[str, dict[str, Any]] = {}

    @classmethod
    def in_data_dir(cls, data_dir: str | os.PathLike[str]) -> RuleState:
        return cls(Path(data_dir) / STATE_FILE)

    def overrides(self) -> dict[str, dict[str, Any]]:
        if self.path is None:
            return dict(self._memory)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def set_enabled(self, rule_id: str, enabled: bool, actor: str) -> None:
        with self._lock:
            data = self.overrides()
            data[rule_id] = {"enabled": enabled, "by": actor, "time": datetime.now(UTC).isoformat()}
            if self.path is None:
                self._memory = data
                return
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)  # atomic: a reader never sees half a file

    def enabled(self, rule: Rule) -> bool:
        override = self.overrides().get(rule.id)
        return bool(override["enabled"]) if override else rule.enabled


def apply_overrides(rules: Iterable[Rule], state: RuleState) -> list[Rule]:
    """The rules with the operator's enabled/disabled overrides applied."""
    overrides = state.overrides()
    out = []
    for rule in rules:
        override = overrides.get(rule.id)
        if override is not None and bool(override.get("enabled")) != rule.enabled:
            rule = dataclasses.replace(rule, enabled=bool(override.get("enabled")))
        out.append(rule)
    return out
