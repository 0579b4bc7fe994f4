"""Alerts in SQLite: upsert by (rule, key), status changes with history, queries.

Alerts are few (dedup folds repeats), so clarity wins over batching tricks here. Every
function runs inside the caller's transaction (the store opens and commits it).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import orjson

from stackwatch.core.alert import Alert, Evidence
from stackwatch.store import alert_rows, sqlite_silences
from stackwatch.store.base import AlertQuery, StoredAlert
from stackwatch.store.rows import clean_text, encode_json, raw_bytes, to_micros
from stackwatch.store.scope import Scope
from stackwatch.store.sqlite_scope import alert_condition


def _text(value: str | None) -> str | None:
    return clean_text(value) if value else value


def upsert_many(conn: sqlite3.Connection, alerts: Sequence[Alert], now: int) -> list[int]:
    return [upsert(conn, alert, now) for alert in alerts]


def upsert(conn: sqlite3.Connection, alert: Alert, now: int) -> int:
    """Insert ``alert`` or fold it into the stored one with the same (rule, key); returns the id."""
    found = conn.execute("SELECT id, status, time, last_seen, count FROM alerts WHERE rule = ? AND key = ?",
                         (alert.rule, alert.key)).fetchone()
    first, last = to_micros(alert.time), to_micros(alert.last_seen)
    silence = sqlite_silences.muting(conn, alert.rule, alert.key, now)
    fields = (_text(alert.title), _text(alert.category), _text(alert.severity), _text(alert.host),
              _text(alert.summary), _text(alert.source_ip), _text(alert.user), _text(alert.project),
              _text(alert.service), _text(alert.bridge), _text(alert.path), encode_json(alert.details))
    if found is None:
        alert_id: int = conn.execute(
            "INSERT INTO alerts (rule, key, title, category, severity, host, summary, source_ip, user_name, "
            "project, service, bridge, path, details, status, time, last_seen, count, updated, silence) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (_text(alert.rule), _text(alert.key), *fields, alert.status, first, last, alert.count, now,
             silence),
        ).fetchone()[0]
        _history(conn, alert_id, now, alert_rows.ENGINE, alert.status, "raised")
    else:
        alert_id, status, stored_first, stored_last, stored_count = found
        new_status, why = alert_rows.refold_status(alert.status, status, last, stored_last)
        if why is not None:
            _history(conn, alert_id, now, alert_rows.ENGINE, new_status, why)
        conn.execute(
            "UPDATE alerts SET title = ?, category = ?, severity = ?, host = ?, summary = ?, source_ip = ?, "
            "user_name = ?, project = ?, service = ?, bridge = ?, path = ?, details = ?, status = ?, "
            "time = ?, last_seen = ?, count = ?, updated = ?, silence = ? WHERE id = ?",
            (*fields, new_status, min(first, stored_first), max(last, stored_last),
             max(alert.count, stored_count), now, silence, alert_id),
        )
    _add_evidence(conn, alert_id, alert.evidence)
    return alert_id


def _add_evidence(conn: sqlite3.Connection, alert_id: int, evidence: Sequence[Evidence]) -> None:
    if not evidence:
        return
    room = alert_rows.MAX_EVIDENCE - conn.execute("SELECT count(*) FROM alert_evidence WHERE alert_id = ?",
                                       (alert_id,)).fetchone()[0]
    if room <= 0:
        return
    rows = [(alert_id, clean_text(item.ref), raw_bytes(item.raw),
             to_micros(item.time) if item.time is not None else None) for item in evidence]
    before = conn.total_changes
    for row in rows:  # one by one: stop exactly at the cap, duplicates (same ref) are ignored
        conn.execute("INSERT OR IGNORE INTO alert_evidence (alert_id, ref, raw, time) "
                     "VALUES (?, ?, ?, ?)", row)
        if conn.total_changes - before >= room:
            break


def _history(conn: sqlite3.Connection, alert_id: int, now: int, actor: str, status: str,
             comment: str | None) -> None:
    conn.execute("INSERT INTO alert_history (alert_id, time, actor, status, comment) VALUES (?, ?, ?, ?, ?)",
                 (alert_id, now, clean_text(actor), status, _text(comment)))


def set_status(conn: sqlite3.Connection, alert_id: int, status: str, actor: str, comment: str | None,
               now: int) -> bool:
    """Change the status (or only comment); False when there is no such alert."""
    cursor = conn.execute("UPDATE alerts SET status = ?, updated = ? WHERE id = ?", (status, now, alert_id))
    if cursor.rowcount == 0:
        return False
    _history(conn, alert_id, now, actor, status, comment)
    return True


def set_assignee(conn: sqlite3.Connection, alert_id: int, assignee: str | None, actor: str, now: int) -> bool:
    """Assign (None: unassign); recorded in the history. False when there is no such alert."""
    row = conn.execute("UPDATE alerts SET assignee = ?, updated = ? WHERE id = ? RETURNING status",
                       (_text(assignee), now, alert_id)).fetchone()
    if row is None:
        return False
    _history(conn, alert_id, now, actor, row[0], alert_rows.assign_comment(assignee))
    return True


def get(conn: sqlite3.Connection, alert_id: int, scope: Scope | None = None) -> StoredAlert | None:
    condition, params = alert_condition(scope) if scope is not None else ("1", [])
    row = conn.execute(f"SELECT {alert_rows.COLUMNS} FROM alerts WHERE id = ? AND {condition}",  # noqa: S608
                       (alert_id, *params)).fetchone()
    if row is None:
        return None
    history = tuple(
        alert_rows.change(*change) for change in conn.execute(
            "SELECT time, actor, status, comment FROM alert_history WHERE alert_id = ? ORDER BY id",
            (alert_id,))
    )
    return alert_rows.stored_alert(row, _evidence(conn, [alert_id]).get(alert_id, []), history)


def count(conn: sqlite3.Connection, q: AlertQuery) -> int:
    where, params = alert_rows.where(q, "?", alert_condition)
    return int(conn.execute(f"SELECT count(*) FROM alerts{where}", params).fetchone()[0])  # noqa: S608


def query(conn: sqlite3.Connection, q: AlertQuery) -> list[StoredAlert]:
    where, params = alert_rows.where(q, "?", alert_condition)
    rows = conn.execute(alert_rows.page_sql(q, where, "?"), (*params, q.limit, q.offset)).fetchall()
    evidence = _evidence(conn, [row[0] for row in rows]) if q.with_evidence else {}
    return [alert_rows.stored_alert(row, evidence.get(row[0], [])) for row in rows]


def _evidence(conn: sqlite3.Connection, ids: list[int]) -> dict[int, list[Evidence]]:
    if not ids:
        return {}
    return alert_rows.evidence_by_alert(conn.execute(
        "SELECT alert_id, ref, raw, time FROM alert_evidence WHERE alert_id IN "
        "(SELECT value FROM json_each(?)) ORDER BY alert_id, id", (orjson.dumps(ids).decode(),)))


def status_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT status, count(*) FROM alerts GROUP BY status").fetchall())
