"""The one path from decoded events to committed events and alerts, shared by ``analyze``
(pipeline/analyze.py), ``serve`` (pipeline/runner.py) and the cluster's analyzer role
(cluster/analyzer.py):

1. ``clamp`` — an event stamped too far past its receipt is judged at its receive time;
2. the engine (``process``, or ``process_only`` for a routed copy) — its output, with the
   engine's word on which alerts it created, kept as alert changes by ``AlertChanges`` (new,
   update, resolved), one snapshot per alert per batch;
3. ``commit`` — events appended, alerts upserted (identity: rule and key), a cluster
   partition's checkpoint staged, then one flush; what a caller acknowledges or dispatches
   comes only after ``commit`` returned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from stackwatch.core.alert import Alert
from stackwatch.core.event import Event, replace

if TYPE_CHECKING:
    from stackwatch.store.base import Store


def clamp_future(event: Event, tolerance: timedelta) -> Event:
    """``event`` at its receive time when its own time is more than ``tolerance`` past it (a
    wrong clock or a forged stamp must not move detection's clock forward); the claimed time is
    kept in ``attrs.future_time`` and the raw record is unchanged."""
    if event.time - event.received <= tolerance:
        return event
    return replace(event, time=event.received, attrs={**event.attrs, "future_time": event.time.isoformat()})


def clamp(events: list[Event], tolerance: timedelta) -> None:
    """``clamp_future`` over ``events``, in place (received <= now: only events stamped past
    now + tolerance can be too far ahead of their receipt, so most lists cost one compare each)."""
    latest = datetime.now(UTC) + tolerance
    for index, event in enumerate(events):
        if event.time > latest:
            events[index] = clamp_future(event, tolerance)


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One alert as a batch leaves it: the snapshot that is stored and delivered, what
    happened to it, and whether it is delivered."""

    snapshot: Alert
    change: str  # new | update | resolved
    dispatch: bool


class AlertChanges:
    """The changes for the next commit: one per alert object, the latest snapshot. Whether an
    alert is new is its producer's word (``DetectionEngine.created`` for the engine's), not
    guessed here: an engine restored from a snapshot (a cluster takeover) updates alerts it did
    not create since, and those are updates."""

    def __init__(self) -> None:
        # id(alert) -> (the live alert, kept so its id is not reused within the batch; its change)
        self.pending: dict[int, tuple[Alert, AlertChange]] = {}

    def add(self, alerts: Sequence[Alert], created: Sequence[bool], dispatch: bool = True) -> None:
        """``alerts`` as they stand now; ``created[i]``: whether ``alerts[i]`` was created by the
        call that returned it (else updated, or resolved)."""
        pending = self.pending
        for alert, new in zip(alerts, created, strict=True):
            if alert.status == "resolved":
                change = "resolved"
            elif new:
                change = "new"
            else:
                previous = pending.get(id(alert))
                # created and updated within one batch: still news
                change = "new" if previous is not None and previous[1].change == "new" else "update"
            snapshot = msgspec.structs.replace(alert, evidence=list(alert.evidence),
                                               details=dict(alert.details))
            pending[id(alert)] = (alert, AlertChange(snapshot, change, dispatch))

    def take(self) -> list[AlertChange]:
        """The changes since the last take, in the order they were first seen."""
        taken = [change for _, change in self.pending.values()]
        self.pending = {}
        return taken


@dataclass(frozen=True, slots=True)
class Committed:
    """What the store made of a batch's alerts: their ids, stored statuses, and whether a
    silence mutes each (stored, marked, not delivered)."""

    ids: list[int]
    statuses: list[str]
    silenced: list[bool]


def commit(store: Store, events: Sequence[Event], alerts: Sequence[Alert], *,
           appended: Callable[[], None] | None = None,
           partition: tuple[str, dict[str, Any], bytes | None] | None = None,
           statuses: bool = True) -> Committed:
    """Append ``events``, upsert ``alerts``, stage ``partition`` (name, position, detection
    state) and flush: on return, all of it is committed. ``appended`` is called once the store
    holds the events (a retry after a failed flush must not append them again). Alerts are
    upserted before the flush that commits the events and the checkpoint: a crash between the
    two leaves alerts that a replay of the batch from the older checkpoint upserts again, to the
    same values, under the same (rule, key). ``statuses``: read back each alert's stored status
    and silence (serve's delivery needs them; analyze does not)."""
    if events:
        store.append_events(events)
        if appended is not None:
            appended()
    ids = store.upsert_alerts(alerts) or []
    if partition is not None:
        store.stage_partition_state(*partition)
    store.flush()
    found_statuses: list[str] = []
    silenced: list[bool] = []
    if statuses:
        for alert_id in ids:
            stored = store.get_alert(alert_id) if alert_id is not None else None
            found_statuses.append(stored.alert.status if stored is not None else "open")
            silenced.append(stored is not None and stored.silenced_by is not None)
    return Committed(list(ids), found_statuses, silenced)
