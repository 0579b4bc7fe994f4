"""stackwatch's own audit trail: failed logins and every administrative action become events
in the store, so the same rules that watch the cloud watch stackwatch.

The events: ``service: stackwatch``, ``kind: stackwatch_audit``, ``action`` one of
``authenticate`` (outcome ``failure`` / ``success``), ``alert.acknowledge``,
``alert.resolve``, ``alert.reopen``, ``alert.comment``, ``alert.assign``, ``silence.create``,
``silence.expire``, ``silence.delete``, ``rule.enable``, ``rule.disable``, ``user.create``,
``user.delete``, ``user.password``, ``user.role``, ``token.create``, ``token.revoke``,
``response.approve``, ``response.reject``;
``initiator.name`` the acting (or attempted) user, ``initiator.source_ip`` the client.

Only one process may append to a store at a time (store/sqlite.py), and the collector may be
that process. The recorder therefore opens the store just for the append and closes it at
once (releasing the append lock); when another process holds the lock, the event goes to
``stackwatch-audit.jsonl`` in the data folder (one JSON event per line), which the
collector can ingest like any other log, so nothing is lost.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from stackwatch.core.errors import StoreError
from stackwatch.core.event import Event, Initiator, Target, to_json
from stackwatch.store.admin import AUDIT_SPOOL

AUDIT_KIND: Final = "stackwatch_audit"
AUDIT_SERVICE: Final = "stackwatch"
SPOOL_FILE: Final = AUDIT_SPOOL

Appender = Callable[[Sequence[Event]], None]


def audit_event(
    action: str,
    *,
    actor: str | None,
    source_ip: str | None = None,
    outcome: str = "success",
    message: str = "",
    target_type: str | None = None,
    target_id: str | None = None,
    target_name: str | None = None,
    user_agent: str | None = None,
    attrs: dict[str, Any] | None = None,
    severity: str | None = None,
    now: datetime | None = None,
) -> Event:
    """One audit event (see the module docstring for the vocabulary)."""
    when = now or datetime.now(UTC)
    ref = f"stackwatch-audit:{uuid.uuid4()}"
    return Event(
        time=when,
        received=when,
        host=socket.gethostname(),
        service=AUDIT_SERVICE,
        severity=severity or ("warning" if outcome == "failure" else "notice"),
        message=message or f"{actor or '-'} {action} {outcome}",
        kind=AUDIT_KIND,
        action=action,
        outcome=outcome,
        initiator=Initiator(name=actor, source_ip=source_ip, user_agent=user_agent),
        target=Target(type=target_type, id=target_id, name=target_name),
        observer="stackwatch",
        attrs=dict(attrs or {}),
        raw=message,
        origin="stackwatch:audit",
        ref=ref,
    )


class AuditLog:
    """Appends audit events through ``append``; when that fails with a StoreError (another
    process is appending), spools them to ``spool`` as JSON lines."""

    def __init__(self, append: Appender, spool: Path | None = None) -> None:
        self._append = append
        self.spool = spool
        self._lock = threading.Lock()

    @classmethod
    def for_data_dir(cls, data_dir: str | os.PathLike[str]) -> AuditLog:
        from stackwatch.store import open_store

        def append(events: Sequence[Event]) -> None:
            with open_store(data_dir, background_index=False) as store:
                store.append_events(events)

        return cls(append, Path(data_dir) / SPOOL_FILE)

    def record(self, event: Event) -> None:
        self.record_all([event])

    def record_all(self, events: Sequence[Event]) -> None:
        """Several events in one append (a bulk change: one audit event per alert)."""
        if not events:
            return
        with self._lock:
            try:
                self._append(events)
            except StoreError:
                if self.spool is None:
                    raise
                with open(self.spool, "ab") as out:
                    out.write(b"".join(to_json(event) + b"\n" for event in events))
