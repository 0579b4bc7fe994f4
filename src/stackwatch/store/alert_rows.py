"""What an alert row is, whichever backend holds it: its columns, sort orders, the engine's
status fold, and the conversion of stored rows back into StoredAlert / Evidence / Silence.

The SQLite and PostgreSQL alert modules differ only in their SQL (placeholders, locking,
upsert form); the columns they select and what the values mean are the same, so both build
their results here. Values are passed through ``int`` where PostgreSQL may hand back a
bigint of another type; for SQLite that is a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import orjson

from stackwatch.core.alert import ALERT_SEVERITIES, Alert, Evidence
from stackwatch.store.base import AlertChange, AlertQuery, Silence, StoredAlert
from stackwatch.store.rows import from_micros, to_micros
from stackwatch.store.scope import Scope

MAX_EVIDENCE: Final = 1000  # evidence rows kept per alert (the first ones; the count keeps growing)
ENGINE: Final = "stackwatch"  # the actor recorded for changes the engine makes

COLUMNS: Final = ("id, rule, key, title, category, severity, status, time, last_seen, count, host, summary, "
                  "source_ip, user_name, project, service, bridge, path, details, updated, assignee, "
                  "silence")
"""The columns every alert SELECT reads, in the order ``stored_alert`` unpacks."""

SILENCE_COLUMNS: Final = "id, rule, key, created, created_by, reason, ends, expired, expired_by"
"""The columns every silence SELECT reads, in the order ``silence`` unpacks."""

_SEVERITY_RANK: Final = "CASE severity " + " ".join(
    f"WHEN '{name}' THEN {rank}" for rank, name in enumerate(ALERT_SEVERITIES)) + " ELSE -1 END"
SORT_COLUMNS: Final = {"time": "last_seen", "severity": _SEVERITY_RANK, "rule": "title",
                       "host": "coalesce(host, '')"}
"""AlertQuery.sort -> the SQL it orders by (fixed expressions, never user text; valid in both dialects)."""


def refold_status(incoming: str, stored: str, last: int, stored_last: int) -> tuple[str, str | None]:
    """The status a stored alert gets when the engine reports it again, and the history comment
    for the change (None: no change). The engine may resolve an alert, and an alert resolved
    (by anyone) opens again when it fires after it was last seen; otherwise a person's triage
    status (acknowledged, resolved) stands."""
    if incoming == "resolved" and stored != "resolved":
        return "resolved", "resolved by the engine"
    if stored == "resolved" and incoming != "resolved" and last > stored_last:
        return "open", "fired again after it was resolved"
    return stored, None


def where(q: AlertQuery, mark: str,
          scoped: Callable[[Scope], tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    """The `` WHERE ...`` clause ('' for none) and its parameters for ``q``'s filters, in a
    dialect whose parameter is ``mark`` (``?`` or ``%s``); ``scoped``: the backend's condition
    for a tenant's scope (the one place alert lists are scoped)."""
    conditions: list[str] = []
    params: list[Any] = []
    for column, value in (("status", q.status), ("category", q.category), ("rule", q.rule),
                          ("severity", q.severity), ("host", q.host), ("source_ip", q.source_ip),
                          ("user_name", q.user), ("assignee", q.assignee)):
        if value is not None:
            conditions.append(f"{column} = {mark}")  # column names come from the fixed list above
            params.append(value)
    if q.since is not None:
        conditions.append(f"last_seen >= {mark}")
        params.append(to_micros(q.since))
    if q.until is not None:
        conditions.append(f"last_seen < {mark}")
        params.append(to_micros(q.until))
    if q.without_host_prefix:
        conditions.append(f"(host IS NULL OR NOT (host >= {mark} AND host < {mark}))")
        params += [q.without_host_prefix, q.without_host_prefix + "\U0010ffff"]
    if q.scope is not None:
        condition, scope_params = scoped(q.scope)
        conditions.append(condition)
        params.extend(scope_params)
    return (" WHERE " + " AND ".join(conditions)) if conditions else "", params


def page_sql(q: AlertQuery, where: str, mark: str) -> str:
    """The SELECT of one page of ``q``'s alerts (``where`` as ``where`` builds it): in ``q``'s
    order, the most recently seen first among equals; its last two parameters are ``q``'s limit
    and offset."""
    direction = "DESC" if q.descending else "ASC"
    order = SORT_COLUMNS[q.sort]  # a fixed expression, validated by AlertQuery
    return (f"SELECT {COLUMNS} FROM alerts{where} "  # noqa: S608 - fixed columns and expressions
            f"ORDER BY {order} {direction}, last_seen DESC, id DESC LIMIT {mark} OFFSET {mark}")


def evidence_by_alert(rows: Iterable[Sequence[Any]]) -> dict[int, list[Evidence]]:
    """``(alert_id, ref, raw, time)`` evidence rows, grouped by alert (in the rows' order)."""
    found: dict[int, list[Evidence]] = {}
    for alert_id, ref, raw, time in rows:
        found.setdefault(alert_id, []).append(evidence(ref, raw, time))
    return found


def assign_comment(assignee: str | None) -> str:
    """The history comment of an assignment."""
    return f"assigned to {assignee}" if assignee else "unassigned"


def evidence(ref: str, raw: bytes, time: int | None) -> Evidence:
    """One stored evidence row (``raw`` as stored: bytes, undecodable ones kept as surrogates)."""
    return Evidence(ref=ref, raw=bytes(raw).decode("utf-8", "surrogateescape"),
                    time=from_micros(time) if time is not None else None)


def change(time: int, actor: str, status: str, comment: str | None) -> AlertChange:
    """One stored alert_history row."""
    return AlertChange(time=from_micros(time), actor=actor, status=status, comment=comment)


def stored_alert(row: Sequence[Any], evidence: list[Evidence],
                 history: tuple[AlertChange, ...] = ()) -> StoredAlert:
    """A row of ``COLUMNS`` as the StoredAlert it is."""
    (alert_id, rule, key, title, category, severity, status, time, last_seen, count, host, summary,
     source_ip, user, project, service, bridge, path, details, updated, assignee, silence) = row
    alert = Alert(
        rule=rule, key=key, title=title, category=category, severity=severity, status=status,
        time=from_micros(time), last_seen=from_micros(last_seen), count=int(count), host=host,
        summary=summary, source_ip=source_ip, user=user, project=project, service=service, bridge=bridge,
        path=path, details=orjson.loads(details), evidence=evidence,
    )
    return StoredAlert(id=int(alert_id), alert=alert, updated=from_micros(updated), history=history,
                       assignee=assignee, silenced_by=silence)


def silence(row: Sequence[Any]) -> Silence:
    """A row of ``SILENCE_COLUMNS`` as the Silence it is."""
    silence_id, rule, key, created, created_by, reason, ends, expired, expired_by = row
    return Silence(id=int(silence_id), rule=rule, key=key, created=from_micros(created),
                   created_by=created_by, reason=reason, ends=from_micros(ends),
                   expired=from_micros(expired) if expired is not None else None, expired_by=expired_by)
