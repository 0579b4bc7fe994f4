"""Alerts on PostgreSQL: shared by every writer, one row per identity ``(rule, key)``.

The UNIQUE constraint on ``(rule, key)`` is what keeps two analyzers from making two rows of
one alert: an upsert inserts with ``ON CONFLICT DO NOTHING``; when the row exists (or another
transaction is inserting it: the insert waits for that one to commit), the row is locked
(``FOR UPDATE``) and folded exactly as the embedded store folds (``sqlite_alerts.upsert``: the
status rules and history are the same). A batch is folded in (rule, key) order, so two
writers locking several alerts never wait on each other in a cycle. Every function runs
inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from stackwatch.core.alert import Alert, Evidence
from stackwatch.store import alert_rows
from stackwatch.store.base import AlertQuery, Silence, StoredAlert
from stackwatch.store.postgres.scope import alert_condition
from stackwatch.store.rows import clean_text, encode_json, raw_bytes, to_micros


def text(value: str | None) -> str | None:
    """A string PostgreSQL can hold: undecodable bytes and NUL (which text refuses) as U+FFFD."""
    return clean_text(value).replace("\x00", "\ufffd") if value else value


def _muting(conn: psycopg.Connection, rule: str, key: str, now: int) -> int | None:
    row = conn.execute(
        b"SELECT id FROM silences WHERE rule = %s AND key IN (%s, '') AND expired IS NULL AND ends > %s "
        b"ORDER BY id LIMIT 1", (rule, key, now)).fetchone()
    return int(row[0]) if row else None


def upsert_many(conn: psycopg.Connection, alerts: Sequence[Alert], now: int) -> list[int]:
    order = sorted(range(len(alerts)), key=lambda i: (text(alerts[i].rule), text(alerts[i].key)))
    ids = [0] * len(alerts)
    for i in order:
        ids[i] = upsert(conn, alerts[i], now)
    return ids


def upsert(conn: psycopg.Connection, alert: Alert, now: int) -> int:
    rule, key = text(alert.rule) or "", text(alert.key) or ""
    first, last = to_micros(alert.time), to_micros(alert.last_seen)
    silence = _muting(conn, rule, key, now)
    fields = (text(alert.title), text(alert.category), text(alert.severity), text(alert.host),
              text(alert.summary), text(alert.source_ip), text(alert.user), text(alert.project),
              text(alert.service), text(alert.bridge), text(alert.path), text(encode_json(alert.details)))
    row = conn.execute(
        b"INSERT INTO alerts (rule, key, title, category, severity, host, summary, source_ip, user_name, "
        b"project, service, bridge, path, details, status, time, last_seen, count, updated, silence) "
        b"VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        b"ON CONFLICT (rule, key) DO NOTHING RETURNING id",
        (rule, key, *fields, alert.status, first, last, alert.count, now, silence)).fetchone()
    if row is not None:
        alert_id = int(row[0])
        _history(conn, alert_id, now, alert_rows.ENGINE, alert.status, "raised")
    else:
        found = conn.execute(b"SELECT id, status, time, last_seen, count FROM alerts "
                             b"WHERE rule = %s AND key = %s FOR UPDATE", (rule, key)).fetchone()
        assert found is not None  # the conflicting row is committed (the insert waited for it)
        alert_id, status, stored_first, stored_last, stored_count = found
        new_status, why = alert_rows.refold_status(alert.status, status, last, stored_last)
        if why is not None:
            _history(conn, alert_id, now, alert_rows.ENGINE, new_status, why)
        conn.execute(
            b"UPDATE alerts SET title = %s, category = %s, severity = %s, host = %s, summary = %s, "
            b"source_ip = %s, user_name = %s, project = %s, service = %s, bridge = %s, path = %s, "
            b"details = %s, status = %s, time = %s, last_seen = %s, count = %s, updated = %s, silence = %s "
            b"WHERE id = %s",
            (*fields, new_status, min(first, stored_first), max(last, stored_last),
             max(alert.count, stored_count), now, silence, alert_id))
    _add_evidence(conn, alert_id, alert.evidence)
    return int(alert_id)


def _add_evidence(conn: psycopg.Connection, alert_id: int, evidence: Sequence[Evidence]) -> None:
    if not evidence:
        return
    row = conn.execute(b"SELECT count(*) FROM alert_evidence WHERE alert_id = %s", (alert_id,)).fetchone()
    room = alert_rows.MAX_EVIDENCE - (int(row[0]) if row else 0)
    for item in evidence:  # one by one: stop exactly at the cap, a ref already there is skipped
        if room <= 0:
            return
        added = conn.execute(
            b"INSERT INTO alert_evidence (alert_id, ref, raw, time) VALUES (%s, %s, %s, %s) "
            b"ON CONFLICT (alert_id, ref) DO NOTHING",
            (alert_id, text(item.ref) or "", raw_bytes(item.raw),
             to_micros(item.time) if item.time is not None else None)).rowcount
        room -= max(added, 0)


def _history(conn: psycopg.Connection, alert_id: int, now: int, actor: str, status: str,
             comment: str | None) -> None:
    conn.execute(b"INSERT INTO alert_history (alert_id, time, actor, status, comment) "
                 b"VALUES (%s, %s, %s, %s, %s)", (alert_id, now, text(actor) or "", status, text(comment)))


def set_status(conn: psycopg.Connection, alert_id: int, status: str, actor: str, comment: str | None,
               now: int) -> bool:
    done = conn.execute(b"UPDATE alerts SET status = %s, updated = %s WHERE id = %s",
                        (status, now, alert_id)).rowcount
    if not done:
        return False
    _history(conn, alert_id, now, actor, status, comment)
    return True


def set_assignee(conn: psycopg.Connection, alert_id: int, assignee: str | None, actor: str, now: int) -> bool:
    row = conn.execute(b"UPDATE alerts SET assignee = %s, updated = %s WHERE id = %s RETURNING status",
                       (text(assignee), now, alert_id)).fetchone()
    if row is None:
        return False
    _history(conn, alert_id, now, actor, row[0], alert_rows.assign_comment(assignee))
    return True


def get(conn: psycopg.Connection, alert_id: int, scope: Any = None) -> StoredAlert | None:
    condition, params = alert_condition(scope) if scope is not None else ("true", [])
    row = conn.execute(f"SELECT {alert_rows.COLUMNS} FROM alerts WHERE id = %s AND {condition}".encode(),  # noqa: S608
                       (alert_id, *params)).fetchone()
    if row is None:
        return None
    history = tuple(
        alert_rows.change(*change) for change in conn.execute(
            b"SELECT time, actor, status, comment FROM alert_history WHERE alert_id = %s ORDER BY id",
            (alert_id,)))
    return alert_rows.stored_alert(row, _evidence(conn, [alert_id]).get(alert_id, []), history)


def count(conn: psycopg.Connection, q: AlertQuery) -> int:
    where, params = alert_rows.where(q, "%s", alert_condition)
    row = conn.execute(f"SELECT count(*) FROM alerts{where}".encode(), params).fetchone()  # noqa: S608
    return int(row[0]) if row else 0


def query(conn: psycopg.Connection, q: AlertQuery) -> list[StoredAlert]:
    where, params = alert_rows.where(q, "%s", alert_condition)
    rows = conn.execute(alert_rows.page_sql(q, where, "%s").encode(), (*params, q.limit, q.offset)).fetchall()
    evidence = _evidence(conn, [row[0] for row in rows]) if q.with_evidence else {}
    return [alert_rows.stored_alert(row, evidence.get(row[0], [])) for row in rows]


def _evidence(conn: psycopg.Connection, ids: list[int]) -> dict[int, list[Evidence]]:
    if not ids:
        return {}
    return alert_rows.evidence_by_alert(conn.execute(
        b"SELECT alert_id, ref, raw, time FROM alert_evidence WHERE alert_id = ANY(%s) "
        b"ORDER BY alert_id, id", (ids,)))


def status_counts(conn: psycopg.Connection) -> dict[str, int]:
    return {s: int(n) for s, n in conn.execute(b"SELECT status, count(*) FROM alerts GROUP BY status")}


# -- silences -----------------------------------------------------------------------------------


def create_silence(conn: psycopg.Connection, rule: str, key: str, *, ends: int, actor: str, reason: str,
                   now: int) -> Silence:
    row = conn.execute(
        b"INSERT INTO silences (rule, key, created, created_by, reason, ends) "
        b"VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (text(rule), text(key) or "", now, text(actor), text(reason) or "", ends)).fetchone()
    assert row is not None
    silence_id = int(row[0])
    if ends > now:
        conn.execute(b"UPDATE alerts SET silence = %s WHERE rule = %s AND (key = %s OR %s = '') "
                     b"AND silence IS NULL", (silence_id, rule, key, key))
    found = get_silence(conn, silence_id)
    assert found is not None
    return found


def expire_silence(conn: psycopg.Connection, silence_id: int, *, actor: str, now: int) -> Silence | None:
    conn.execute(b"UPDATE silences SET expired = %s, expired_by = %s WHERE id = %s AND expired IS NULL",
                 (now, text(actor), silence_id))
    conn.execute(b"UPDATE alerts SET silence = NULL WHERE silence = %s", (silence_id,))
    return get_silence(conn, silence_id)


def delete_silence(conn: psycopg.Connection, silence_id: int) -> Silence | None:
    found = get_silence(conn, silence_id)
    if found is not None:
        conn.execute(b"DELETE FROM silences WHERE id = %s", (silence_id,))
        conn.execute(b"UPDATE alerts SET silence = NULL WHERE silence = %s", (silence_id,))
    return found


def get_silence(conn: psycopg.Connection, silence_id: int) -> Silence | None:
    row = conn.execute(f"SELECT {alert_rows.SILENCE_COLUMNS} FROM silences WHERE id = %s".encode(),  # noqa: S608
                       (silence_id,)).fetchone()
    return alert_rows.silence(row) if row else None


def silences(conn: psycopg.Connection) -> list[Silence]:
    rows = conn.execute(f"SELECT {alert_rows.SILENCE_COLUMNS} FROM silences ORDER BY id DESC".encode())  # noqa: S608
    return [alert_rows.silence(row) for row in rows]
