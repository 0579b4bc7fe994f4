"""Silences in SQLite: mute a rule (and key) for a while. Every function runs inside the
caller's transaction, like ``sqlite_alerts``."""

from __future__ import annotations

import sqlite3

from stackwatch.store import alert_rows
from stackwatch.store.base import Silence
from stackwatch.store.rows import clean_text


def muting(conn: sqlite3.Connection, rule: str, key: str, now: int) -> int | None:
    """The id of the oldest silence in force at ``now`` for ``(rule, key)``, or None."""
    row = conn.execute(
        "SELECT id FROM silences WHERE rule = ? AND key IN (?, '') AND expired IS NULL AND ends > ? "
        "ORDER BY id LIMIT 1", (rule, key, now)).fetchone()
    return int(row[0]) if row else None


def create(conn: sqlite3.Connection, rule: str, key: str, *, ends: int, actor: str, reason: str,
           now: int) -> Silence:
    """Store a silence and mark the alerts it matches as silenced by it (when not already)."""
    silence_id = conn.execute(
        "INSERT INTO silences (rule, key, created, created_by, reason, ends) VALUES (?, ?, ?, ?, ?, ?) "
        "RETURNING id", (clean_text(rule), clean_text(key), now, clean_text(actor), clean_text(reason), ends),
    ).fetchone()[0]
    if ends > now:
        conn.execute("UPDATE alerts SET silence = ? WHERE rule = ? AND (key = ? OR ? = '') "
                     "AND silence IS NULL", (silence_id, rule, key, key))
    found = get(conn, silence_id)
    assert found is not None
    return found


def expire(conn: sqlite3.Connection, silence_id: int, *, actor: str, now: int) -> Silence | None:
    """End a silence now; its alerts are no longer marked. None for an unknown id."""
    conn.execute("UPDATE silences SET expired = ?, expired_by = ? WHERE id = ? AND expired IS NULL",
                 (now, clean_text(actor), silence_id))
    _unmark(conn, silence_id)
    return get(conn, silence_id)


def delete(conn: sqlite3.Connection, silence_id: int) -> Silence | None:
    found = get(conn, silence_id)
    if found is not None:
        conn.execute("DELETE FROM silences WHERE id = ?", (silence_id,))
        _unmark(conn, silence_id)
    return found


def _unmark(conn: sqlite3.Connection, silence_id: int) -> None:
    conn.execute("UPDATE alerts SET silence = NULL WHERE silence = ?", (silence_id,))


def get(conn: sqlite3.Connection, silence_id: int) -> Silence | None:
    row = conn.execute(f"SELECT {alert_rows.SILENCE_COLUMNS} FROM silences WHERE id = ?",  # noqa: S608
                       (silence_id,)).fetchone()
    return alert_rows.silence(row) if row else None


def every(conn: sqlite3.Connection) -> list[Silence]:
    return [alert_rows.silence(row) for row in conn.execute(
        f"SELECT {alert_rows.SILENCE_COLUMNS} FROM silences ORDER BY id DESC")]  # noqa: S608 - fixed columns
