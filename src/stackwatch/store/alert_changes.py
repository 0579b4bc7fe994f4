"""Alert triage changes (status, assignee) and their admin events, the same for every backend,
and ``TriageStore``: the Store's alert and silence methods around them.

Each backend passes its own row update (``set_status``/``set_assignee`` bound to its
connection) and its own admin outbox; this module holds what the change *means*: which
admin event each changed alert gets, with which details. It runs inside the backend's write
transaction, so a changed row and its admin event commit together (or neither does).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from stackwatch.core.alert import Alert
from stackwatch.core.event import Event
from stackwatch.store.admin import admin_event
from stackwatch.store.base import (
    ALERT_STATUSES,
    AlertQuery,
    NotFoundError,
    QueryError,
    Silence,
    Store,
    StoredAlert,
)
from stackwatch.store.rows import to_micros
from stackwatch.store.scope import Scope

T = TypeVar("T")


def check_status(status: str) -> None:
    """Refuse a status no alert can have, before anything is written."""
    if status not in ALERT_STATUSES:
        raise QueryError(f"status must be one of {ALERT_STATUSES}, got {status!r}")


def change_statuses(
    alert_ids: Sequence[int],
    status: str,
    *,
    actor: str,
    comment: str | None,
    set_status: Callable[[int], bool],
    queue_admin: Callable[[Event], None],
    now: Callable[[], datetime],
) -> list[int]:
    """Set ``status`` on each alert ``set_status`` finds; one ``alert.status`` admin event per
    changed alert. Returns the ids changed (unknown ids are left out, not an error here)."""
    done = []
    for alert_id in alert_ids:
        if set_status(alert_id):
            details: dict[str, Any] = {"alert_id": alert_id, "status": status}
            if comment is not None:
                details["comment"] = comment
            queue_admin(admin_event(actor, "alert.status", f"alert:{alert_id}", details, now=now()))
            done.append(alert_id)
    return done


def change_assignee(
    alert_id: int,
    assignee: str | None,
    *,
    actor: str,
    set_assignee: Callable[[], bool],
    queue_admin: Callable[[Event], None],
    now: Callable[[], datetime],
) -> list[int]:
    """Assign (or, with None, unassign) one alert; an ``alert.assign`` admin event if it exists.
    Returns ``[alert_id]`` when it was changed, else ``[]``."""
    if not set_assignee():
        return []
    queue_admin(admin_event(actor, "alert.assign", f"alert:{alert_id}",
                            {"alert_id": alert_id, "assignee": assignee}, now=now()))
    return [alert_id]


@dataclass(frozen=True)
class AlertSQL:
    """A backend's alert and silence statements, each run on the connection it is given inside
    the caller's transaction (``sqlite_alerts``/``sqlite_silences``, ``postgres/alerts``).
    Integers are microseconds since the epoch, as stored."""

    upsert_many: Callable[[Any, Sequence[Alert], int], list[int]]
    set_status: Callable[[Any, int, str, str, str | None, int], bool]
    set_assignee: Callable[[Any, int, str | None, str, int], bool]
    get: Callable[[Any, int, Scope | None], StoredAlert | None]
    count: Callable[[Any, AlertQuery], int]
    query: Callable[[Any, AlertQuery], list[StoredAlert]]
    create_silence: Callable[..., Silence]  # (conn, rule, key, *, ends, actor, reason, now)
    expire_silence: Callable[..., Silence | None]  # (conn, silence_id, *, actor, now)
    delete_silence: Callable[[Any, int], Silence | None]
    silences: Callable[[Any], list[Silence]]


class TriageStore(Store):
    """The alert, silence and admin-event methods of a Store, the same for every backend: a
    backend names its statements (``alert_sql``) and how it writes and reads; the locking,
    checks, admin events and not-found errors are here once."""

    alert_sql: ClassVar[AlertSQL]
    _lock: AbstractContextManager[Any]
    _clock: Any  # core.clock's SystemClock or FakeClock: now() -> datetime
    _conn: Any  # the writing connection

    @abstractmethod
    def _check_writable(self) -> None:
        """Before any change: the store is open and writable."""

    @abstractmethod
    def _write(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` in one write transaction on ``_conn`` (the lock held)."""

    @abstractmethod
    def _reading(self, work: Callable[[Any], T]) -> T:
        """Run ``work`` on a reading connection, under the lock, once the store is ready to read."""

    @abstractmethod
    def _queue_admin(self, event: Event) -> None:
        """Put an admin event in the outbox (inside the current write transaction)."""

    @abstractmethod
    def _drain_admin(self) -> int | None:
        """Move the outbox into the log now if this process can; the last id written, or None."""

    def _now(self) -> int:
        return to_micros(self._clock.now())

    def _check_alert_fence(self) -> None:
        """Inside the alerts' write transaction: raise ``PartitionFenced`` when this store writes
        for a cluster partition another analyzer has taken over since (alerts are upserted in a
        transaction of their own, so they are fenced like the partition's events). No-op otherwise."""

    def upsert_alerts(self, alerts: Iterable[Alert]) -> list[int]:
        batch = list(alerts)
        with self._lock:
            self._check_writable()
            now = self._now()

            def upsert() -> list[int]:
                if batch:
                    self._check_alert_fence()
                return self.alert_sql.upsert_many(self._conn, batch, now)  # type: ignore[no-any-return]

            ids: list[int] = self._write(upsert)
            return ids

    def set_alert_status(self, alert_id: int, status: str, *, actor: str,
                         comment: str | None = None) -> StoredAlert:
        changed = self.set_alerts_status([alert_id], status, actor=actor, comment=comment)
        if not changed:
            raise NotFoundError(f"no alert with id {alert_id}")
        return changed[0]

    def set_alerts_status(self, alert_ids: Sequence[int], status: str, *, actor: str,
                          comment: str | None = None) -> list[StoredAlert]:
        check_status(status)
        with self._lock:
            self._check_writable()
            now = self._now()

            def change() -> list[int]:
                return change_statuses(
                    alert_ids, status, actor=actor, comment=comment,
                    set_status=lambda alert_id: self.alert_sql.set_status(
                        self._conn, alert_id, status, actor, comment, now),
                    queue_admin=self._queue_admin, now=self._clock.now)

            return self._changed(self._write(change))

    def set_alert_assignee(self, alert_id: int, assignee: str | None, *, actor: str) -> StoredAlert:
        with self._lock:
            self._check_writable()
            now = self._now()

            def change() -> list[int]:
                return change_assignee(
                    alert_id, assignee, actor=actor,
                    set_assignee=lambda: self.alert_sql.set_assignee(
                        self._conn, alert_id, assignee, actor, now),
                    queue_admin=self._queue_admin, now=self._clock.now)

            changed = self._changed(self._write(change))
        if not changed:
            raise NotFoundError(f"no alert with id {alert_id}")
        return changed[0]

    def _changed(self, alert_ids: list[int]) -> list[StoredAlert]:
        """After a change: its admin events into the log, and the changed alerts as stored now."""
        if alert_ids:
            self._drain_admin()
        found = [self.alert_sql.get(self._conn, alert_id, None) for alert_id in alert_ids]
        return [a for a in found if a is not None]

    def record_admin(self, event: Event) -> int | None:
        """Put an admin event in the log (see ``admin.record_admin_action``): this process's,
        when it can write it now, else the next writer's."""
        with self._lock:
            self._check_writable()
            self._write(lambda: self._queue_admin(event))
            return self._drain_admin()

    def count_alerts(self, query: AlertQuery | None = None) -> int:
        return self._reading(lambda conn: self.alert_sql.count(conn, query or AlertQuery()))

    def get_alert(self, alert_id: int, *, scope: Scope | None = None) -> StoredAlert | None:
        return self._reading(lambda conn: self.alert_sql.get(conn, alert_id, scope))

    def alerts(self, query: AlertQuery | None = None) -> list[StoredAlert]:
        return self._reading(lambda conn: self.alert_sql.query(conn, query or AlertQuery()))

    # -- silences ----------------------------------------------------------------------------

    def create_silence(self, rule: str, key: str, *, ends: datetime, actor: str, reason: str) -> Silence:
        with self._lock:
            self._check_writable()
            now = self._now()
            made: Silence = self._write(lambda: self.alert_sql.create_silence(
                self._conn, rule, key, ends=to_micros(ends), actor=actor, reason=reason, now=now))
            return made

    def expire_silence(self, silence_id: int, *, actor: str) -> Silence:
        with self._lock:
            self._check_writable()
            now = self._now()
            found: Silence | None = self._write(lambda: self.alert_sql.expire_silence(
                self._conn, silence_id, actor=actor, now=now))
        if found is None:
            raise NotFoundError(f"no silence with id {silence_id}")
        return found

    def delete_silence(self, silence_id: int) -> Silence:
        with self._lock:
            self._check_writable()
            found: Silence | None = self._write(lambda: self.alert_sql.delete_silence(self._conn, silence_id))
        if found is None:
            raise NotFoundError(f"no silence with id {silence_id}")
        return found

    def silences(self) -> list[Silence]:
        return self._reading(self.alert_sql.silences)
