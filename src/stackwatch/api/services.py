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

from stackwatch.api.audit import SPOOL_FILE, AuditLog
from stackwatch.api.integrity import IntegrityStatus, _plain, integrity_for
from stackwatch.api.users import UserStore
from stackwatch.core.errors import StackwatchError
from stackwatch.detect.loader import RuleSet, builtin_rules, load_rules
from stackwatch.detect.model import Rule
from stackwatch.detect.overrides import RuleState
from stackwatch.detect.vectors import VectorResult, run_vectors
from stackwatch.store.base import Store


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


HISTORY_LIMIT = 200


class ApprovalUnavailable(LookupError):
    """No such queued action (or no approval queue at all)."""


class ApprovalConflict(RuntimeError):
    """The action exists but can no longer be decided (it is not pending any more)."""


class ApprovalDesk:
    """The web's view of ``stackwatch.respond.approvals``: calling it gives the actions awaiting
    approval (``to_dict()`` items); ``history()``, ``approve()`` and ``reject()`` work on the
    same queue. The queue file is only read when it exists: the web never creates it.

    Decisions are made on a queue opened *without* a store, so the queue appends no
    ``kind: response`` event of its own: the route records the decision once, as an audit
    event (``response.approve`` / ``response.reject``) through the services' AuditLog, which
    copes with another process holding the store's append lock (api/audit.py)."""

    def __init__(self, queue_class: Any = None, queue_path: Callable[[Path], Any] | None = None,
                 data_dir: Path | None = None) -> None:
        self._queue_class = queue_class
        self._queue_path = queue_path
        self.data_dir = data_dir

    @property
    def available(self) -> bool:
        return self._queue_class is not None and self._queue_path is not None and self.data_dir is not None

    def _exists(self) -> bool:
        return self.available and Path(self._queue_path(self.data_dir)).exists()  # type: ignore[misc, arg-type]

    def __call__(self) -> list[dict[str, Any]]:
        if not self._exists():
            return []
        with self._queue_class.open(self.data_dir) as queue:  # type: ignore[union-attr]
            return [_as_dict(item) for item in queue.list_pending()]

    def history(self, limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
        """Decided and finished actions (everything not pending), most recent first."""
        if not self._exists():
            return []
        with self._queue_class.open(self.data_dir) as queue:  # type: ignore[union-attr]
            items = [_as_dict(item) for item in queue.actions() if item.status != "pending"]
        return items[::-1][:limit]

    def get(self, action_id: int) -> dict[str, Any] | None:
        if not self._exists():
            return None
        with self._queue_class.open(self.data_dir) as queue:  # type: ignore[union-attr]
            item = queue.get(action_id)
        return _as_dict(item) if item is not None else None

    def approve(self, action_id: int, actor: str) -> dict[str, Any]:
        return self._decide(action_id, lambda queue: queue.approve(action_id, actor))

    def reject(self, action_id: int, actor: str, reason: str) -> dict[str, Any]:
        return self._decide(action_id, lambda queue: queue.reject(action_id, actor, reason))

    def _decide(self, action_id: int, decide: Callable[[Any], Any]) -> dict[str, Any]:
        """Run ``decide`` on the queue; ApprovalUnavailable for an unknown id, ApprovalConflict
        when the action is no longer pending (checked again by the queue's own conditional
        UPDATE, so two operators deciding at once cannot both win)."""
        if not self._exists():
            raise ApprovalUnavailable(f"no queued action with id {action_id}")
        with self._queue_class.open(self.data_dir) as queue:  # type: ignore[union-attr]
            current = queue.get(action_id)
            if current is None:
                raise ApprovalUnavailable(f"no queued action with id {action_id}")
            if current.status != "pending":
                raise ApprovalConflict(f"action {action_id} is {current.status}, not pending")
            try:
                return _as_dict(decide(queue))
            except StackwatchError as exc:  # the queue's ApprovalError: e.g. lost a race
                after = queue.get(action_id)
                if after is not None and after.status != "pending":
                    raise ApprovalConflict(f"action {action_id} is {after.status}, not pending") from exc
                raise


def _as_dict(item: Any) -> dict[str, Any]:
    return item.to_dict() if hasattr(item, "to_dict") else _plain(item)


def approvals_for(data_dir: Path | None) -> ApprovalDesk:
    """The approval queue of ``data_dir``, when ``stackwatch.respond.approvals`` exists
    (``ApprovalQueue`` and ``queue_path``); otherwise a desk that is always empty."""
    try:
        if (
            importlib.util.find_spec("stackwatch.respond") is None
            or importlib.util.find_spec("stackwatch.respond.approvals") is None
        ):
            return ApprovalDesk()
        module = importlib.import_module("stackwatch.respond.approvals")
    except ImportError:
        return ApprovalDesk()
    queue_class = getattr(module, "ApprovalQueue", None)
    queue_path = getattr(module, "queue_path", None)
    if queue_class is None or queue_path is None or data_dir is None:
        return ApprovalDesk()
    return ApprovalDesk(queue_class, queue_path, Path(data_dir))


@dataclass
class Services:
    store: Store
    users: UserStore
    audit: AuditLog
    rules: RuleCatalog
    data_dir: Path | None = None
    integrity: IntegrityStatus | None = None
    approvals: ApprovalDesk | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.integrity is None:
            self.integrity = integrity_for(self.store)
        if self.approvals is None:
            self.approvals = approvals_for(self.data_dir)

    @classmethod
    def for_data_dir(
        cls, data_dir: str | os.PathLike[str], *, rule_paths: Sequence[str | os.PathLike[str]] = (),
        read_only: bool = False, store: str | None = None,
    ) -> Services:
        """Everything over one data folder: the store (``read_only``: opened without writing
        or indexing, beside the process that does), users.db, rule-state.json. ``store``: the
        store's URL when it is not the folder's own (a shared postgresql:// store)."""
        from stackwatch.store import open_store

        path = Path(data_dir)
        opened = open_store(store or path, read_only=read_only)
        # a shared store takes the audit events into its log (through its outbox: some writer
        # commits them); the embedded store's are appended to the folder's store
        queue = getattr(opened, "queue_admin_events", None) if store else None
        return cls(
            store=opened,
            users=UserStore.in_data_dir(path),
            audit=AuditLog(queue, path / SPOOL_FILE) if queue is not None else AuditLog.for_data_dir(path),
            rules=RuleCatalog(RuleState.in_data_dir(path), rule_paths),
            data_dir=path,
        )

    def close(self) -> None:
        self.store.close()
        self.users.close()
