"""The orphan detector: a deletion in keystone with resources still alive raises
``identity.orphaned_resources``.

Every event feeds the ledger; ``deleted.project`` / ``deleted.user`` / ``deleted.domain`` (the
action both keystone formats map to; ``attrs.event_type`` ``identity.<kind>.deleted`` as a
fallback) with a successful or unknown outcome looks up what that owner still has. A project
that is only disabled arrives as ``updated.project`` and is never a deletion.

``OrphanDetector`` has the Engine interface (``process``/``finish``/``alerts``) on its own;
``OrphanAwareEngine`` is the detection Engine with the detector riding along, which is what
``pipeline.engine.build_engine`` returns, so ``analyze`` and ``serve`` both run it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import msgspec

from stackwatch.core.alert import Alert, Evidence
from stackwatch.core.atomic import atomic_write
from stackwatch.core.event import Event
from stackwatch.core.types import OrphanAware
from stackwatch.detect.engine import Engine
from stackwatch.detect.model import Rule
from stackwatch.respond.ledger import DEFAULT_CAP, Ledger, Resource

RULE_ID: Final = "5d0c6f0e-7a43-4c35-9a8e-0c1f2b7d9e41"
"""Stable id of the built-in orphaned-resources detection (alerts' ``rule``)."""
CATEGORY: Final = "identity.orphaned_resources"
MAX_INVENTORY: Final = 1000
"""Most resources listed in one alert's details (the counts are always complete)."""
LEDGER_FILE: Final = "respond/ledger.json"

_DELETIONS: Final = {"deleted.project": "project", "deleted.user": "user", "deleted.domain": "domain"}
_EVENT_TYPES: Final = {f"identity.{kind}.deleted": kind for kind in ("project", "user", "domain")}


def ledger_path(data_dir: str | os.PathLike[str]) -> Path:
    """Where the live service keeps its ledger snapshot inside the data folder."""
    return Path(data_dir) / LEDGER_FILE


def _deletion_type(event: Event) -> str | None:
    """The owner kind an ``identity.<kind>.deleted`` event_type names (the fallback when the
    action is not one of ``_DELETIONS``)."""
    event_type = event.attrs.get("event_type")
    return _EVENT_TYPES.get(str(event_type)) if event_type else None


def deletion_of(event: Event) -> tuple[str, str] | None:
    """(owner kind, owner id) when ``event`` says keystone deleted a project, user or domain."""
    kind = _DELETIONS.get(event.action or "") or _deletion_type(event)
    if kind is None:
        return None
    if event.outcome == "failure":  # a failed delete leaves the owner in place
        return None
    owner = event.target.id or event.attrs.get("resource_info")
    return (kind, str(owner)) if owner else None


def inventory(resources: list[Resource]) -> dict[str, Any]:
    """The alert details for these resources: counts per type and the listing."""
    counts: dict[str, int] = {}
    for resource in resources:
        counts[resource.type] = counts.get(resource.type, 0) + 1
    return {"counts": counts, "resources": [r.to_dict() for r in resources[:MAX_INVENTORY]],
            "truncated": len(resources) > MAX_INVENTORY}


def _describe(counts: dict[str, int]) -> str:
    names = {"instance": "instance", "volume": "volume", "floatingip": "floating IP", "port": "port",
             "image": "image"}
    parts = []
    for type_, count in counts.items():
        name = names.get(type_, type_)
        parts.append(f"{count} {name}{'' if count == 1 else 's'}")
    return ", ".join(parts)


class OrphanDetector:
    """Feeds a Ledger and raises one alert per deleted owner that still has resources."""

    def __init__(self, ledger: Ledger | None = None, *, keep_alerts: bool = True) -> None:
        self.ledger = ledger if ledger is not None else Ledger()
        self.keep_alerts = keep_alerts
        self._alerts: list[Alert] = []
        self.deletions = 0  # owner deletions seen
        self._watched = self.ledger.actions | frozenset(_DELETIONS)

    @property
    def watched(self) -> frozenset[str]:
        """The actions whose events it reads (owner deletions are also recognised by their
        ``event_type``): the prefilter keeps their records parsed (detect/prefilter.py)."""
        return self._watched

    def state(self) -> tuple[Any, ...]:
        """What events changed (the ledger's, its alerts, the deletions counted), for a
        partition's checkpoint (detect/snapshot.py)."""
        return (*self.ledger.state(), self._alerts, self.deletions)

    def load_state(self, state: tuple[Any, ...]) -> None:
        """Take back ``state`` (from ``state`` of a detector like this one, freshly made)."""
        *ledger, self._alerts, self.deletions = state
        self.ledger.load_state(tuple(ledger))

    @classmethod
    def open(cls, data_dir: str | os.PathLike[str], cap: int = DEFAULT_CAP) -> OrphanDetector:
        """A detector over the ledger snapshot of a data folder (the live service)."""
        return cls(Ledger.load(ledger_path(data_dir), cap))

    def save(self, data_dir: str | os.PathLike[str]) -> None:
        self.ledger.save(ledger_path(data_dir))

    def snapshot(self) -> bytes:
        """The ledger's snapshot bytes, taken on the thread that feeds the detector; ``write``
        them from any thread (the live service's periodic save, off its event loop)."""
        return self.ledger.snapshot()

    @staticmethod
    def write(snapshot: bytes, data_dir: str | os.PathLike[str]) -> None:
        atomic_write(ledger_path(data_dir), snapshot)

    def process(self, event: Event) -> list[Alert]:
        # Every event of analyze and serve comes through here: one set lookup settles those
        # about neither a tracked resource nor an owner deletion (nearly all of them).
        if event.action not in self._watched:
            event_type = event.attrs.get("event_type")  # _deletion_type, inlined: no call
            if not event_type or str(event_type) not in _EVENT_TYPES:
                return []
        if self.ledger.apply(event):
            return []
        deleted = deletion_of(event)
        if deleted is None:
            return []
        self.deletions += 1
        kind, owner = deleted
        resources = self.ledger.owned_by(kind, owner)
        if not resources:
            return []
        alert = self._alert(event, kind, owner, resources)
        if self.keep_alerts:
            self._alerts.append(alert)
        return [alert]

    def finish(self) -> list[Alert]:
        return []

    def alerts(self) -> list[Alert]:
        return list(self._alerts)

    @staticmethod
    def _alert(event: Event, kind: str, owner: str, resources: list[Resource]) -> Alert:
        details = inventory(resources)
        counts: dict[str, int] = details["counts"]
        running = counts.get("instance", 0)
        details.update({
            "owner": {"type": kind, "id": owner},
            "deleted_by": {k: v for k, v in (("name", event.initiator.name), ("id", event.initiator.id),
                                             ("source_ip", event.initiator.source_ip)) if v},
            "events": 1,
        })
        if kind == "project":
            entities: dict[str, Any] = {"project": owner}
        elif kind == "user":
            entities = {"user": owner}
        else:
            entities = {}
        return Alert(
            rule=RULE_ID,
            title=f"Resources left behind by a deleted {kind}",
            category=CATEGORY,
            severity="high" if running else "medium",
            time=event.time,
            last_seen=event.time,
            key=f"{kind}:{owner}",
            host=event.host or None,
            service=event.service or None,
            summary=f"{kind} {owner} deleted while {_describe(counts)} still exist",
            evidence=[Evidence(event.ref, event.raw, event.time)],
            details=details,
            **entities,
        )


class OrphanAwareEngine(Engine):
    """The detection Engine plus an OrphanDetector: same interface, alerts from both."""

    def __init__(self, rules: Iterable[Rule], *, orphans: OrphanDetector | None = None,
                 **options: Any) -> None:
        super().__init__(rules, **options)
        self.orphans = orphans if orphans is not None else OrphanDetector(keep_alerts=self.keep_alerts)

    def process(self, event: Event) -> list[Alert]:
        out = super().process(event)
        found = self.orphans.process(event)
        if found:
            self.stats.alerts += len(found)
            self._join_created(out, found)  # a new alert per owner deletion
        return out

    def process_only(self, event: Event, rule_ids: frozenset[str]) -> list[Alert]:
        """A routed copy (cluster/): the orphan detector runs when the copy names its rule id
        (the collector routes resource notifications to one partition for it)."""
        out = super().process_only(event, rule_ids)
        if RULE_ID in rule_ids:
            found = self.orphans.process(event)
            if found:
                self.stats.alerts += len(found)
                self._join_created(out, found)
        return out

    def alerts(self) -> list[Alert]:
        return super().alerts() + self.orphans.alerts()


OrphanAware.register(OrphanAwareEngine)  # detect/ finds its ledger through core/types.OrphanAware


@dataclass(slots=True)
class Orphan:
    """An owner (project, user or domain) that is gone and the resources it left behind.
    ``source``: ``notification`` (from an alert) or ``sweep`` (found through the API)."""

    owner_kind: str
    owner_id: str
    resources: list[Resource] = field(default_factory=list)
    source: str = "notification"
    confirmed: bool = False
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.owner_kind}:{self.owner_id}"

    @classmethod
    def from_alert(cls, alert: Alert) -> Orphan | None:
        """The orphan an ``identity.orphaned_resources`` alert describes (None for other alerts)."""
        if alert.category != CATEGORY:
            return None
        owner = alert.details.get("owner")
        if not isinstance(owner, dict) or not owner.get("type") or not owner.get("id"):
            return None
        listed = alert.details.get("resources")
        items = listed if isinstance(listed, list) else []
        resources = [msgspec.convert(item, Resource) for item in items if isinstance(item, dict)]
        return cls(str(owner["type"]), str(owner["id"]), resources)

    def to_alert(self, when: datetime, host: str | None = None) -> Alert:
        """An alert for an orphan found by the sweep (same rule and key as the detector's, so the
        store folds the two together)."""
        details = inventory(self.resources)
        details.update({"owner": {"type": self.owner_kind, "id": self.owner_id}, "found_by": self.source,
                        "events": 0})
        entities: dict[str, Any] = {"project": self.owner_id} if self.owner_kind == "project" else (
            {"user": self.owner_id} if self.owner_kind == "user" else {})
        return Alert(rule=RULE_ID, title=f"Resources left behind by a deleted {self.owner_kind}",
                     category=CATEGORY, severity="high" if details["counts"].get("instance") else "medium",
                     time=when, last_seen=when, key=self.key, host=host,
                     summary=f"{self.owner_kind} {self.owner_id} no longer exists but "
                             f"{_describe(details['counts'])} still exist (found by the API sweep)",
                     details=details, **entities)
