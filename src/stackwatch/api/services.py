"""What the web app works with, passed in explicitly (no globals): the store, the users,
the audit log, the rule catalogue, and the optional integrity and approvals providers."""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackwatch.api.audit import AuditLog
from stackwatch.api.integrity import IntegrityStatus, _plain, integrity_for
from stackwatch.api.users import UserStore
from stackwatch.detect.loader import RuleSet, builtin_rules, load_rules
from stackwatch.detect.model import Rule
from stackwatch.detect.overrides import RuleState
from stackwatch.detect.vectors import VectorResult, run_vectors
from stackwatch.store.base import Store

Approvals = Callable[[], list[dict[str, Any]]]


class RuleCatalog:
    """The rules the pipeline runs (built-in packs plus extra paths), with overrides."""

    def __init__(self, state: RuleState, extra_paths: Sequence[str | os.PathLike[str]] = ()) -> None:
        self.state = state
        self.extra_paths = [Path(p) for p in extra_paths]
        self._rules: RuleSet | None = None
        self._lock = threading.Lock()

    def ruleset(self) -> RuleSet:
        with self._lock:
            if self._rules is None:
                rules = builtin_rules()
                if self.extra_paths:
                    rules.extend(load_rules(self.extra_paths))
                self._rules = rules
            return self._rules

    def rules(self) -> list[tuple[Rule, bool]]:
        """Every rule with its effective enabled flag, by category then title."""
        overrides = self.state.overrides()
        out = []
        for rule in sorted(self.ruleset(), key=lambda r: (r.category, r.title)):
            override = overrides.get(rule.id)
            out.append((rule, bool(override["enabled"]) if override else rule.enabled))
        return out

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self.ruleset() if r.id == rule_id), None)

    def test(self, rule_id: str | None = None) -> list[VectorResult]:
        rules = [r for r in self.ruleset() if rule_id is None or r.id == rule_id]
        results, _ = run_vectors(rules, require=False)
        return results


def approvals_for(data_dir: Path | None) -> Approvals:
    """Responses awaiting approval, when ``stackwatch.respond.approvals`` exists: its
    ``ApprovalQueue.open(data_dir).list_pending()`` (items with ``to_dict()``), read only when
    the queue file exists (the web never creates it). Absent: always an empty list."""

    def none() -> list[dict[str, Any]]:
        return []

    try:
        if (
            importlib.util.find_spec("stackwatch.respond") is None
            or importlib.util.find_spec("stackwatch.respond.approvals") is None
        ):
            return none
        module = importlib.import_module("stackwatch.respond.approvals")
    except ImportError:
        return none
    queue_class = getattr(module, "ApprovalQueue", None)
    queue_path = getattr(module, "queue_path", None)
    if queue_class is None or queue_path is None or data_dir is None:
        return none

    def pending() -> list[dict[str, Any]]:
        if not Path(queue_path(data_dir)).exists():
            return []
        with queue_class.open(data_dir) as queue:
            return [
                item.to_dict() if hasattr(item, "to_dict") else _plain(item) for item in queue.list_pending()
            ]

    return pending


@dataclass
class Services:
    store: Store
    users: UserStore
    audit: AuditLog
    rules: RuleCatalog
    data_dir: Path | None = None
    integrity: IntegrityStatus | None = None
    approvals: Approvals | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.integrity is None:
            self.integrity = integrity_for(self.store)
        if self.approvals is None:
            self.approvals = approvals_for(self.data_dir)

    @classmethod
    def for_data_dir(
        cls, data_dir: str | os.PathLike[str], *, rule_paths: Sequence[str | os.PathLike[str]] = ()
    ) -> Services:
        """Everything over one data folder: the store, users.db, rule-state.json."""
        from stackwatch.store import open_store

        path = Path(data_dir)
        return cls(
            store=open_store(path),
            users=UserStore.in_data_dir(path),
            audit=AuditLog.for_data_dir(path),
            rules=RuleCatalog(RuleState.in_data_dir(path), rule_paths),
            data_dir=path,
        )

    def close(self) -> None:
        self.store.close()
        self.users.close()
