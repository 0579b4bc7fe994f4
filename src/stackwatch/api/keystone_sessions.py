"""Dashboard sessions of keystone users, in ``users.db`` beside the local sessions.

A session holds the user's keystone token, so every request is checked against keystone
(through KeystoneAuth's cache) and the session dies with the token: it expires at the
token's expiry at the latest, and a token revoked in keystone ends it within the cache time.

The token is stored encrypted (AES-GCM) under a key derived from the session cookie, which
only the browser holds (the table keeps an HMAC of the cookie, as for local sessions): a copy
of ``users.db`` yields no usable keystone token.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keystone_sessions (
    digest TEXT PRIMARY KEY, name TEXT NOT NULL, csrf TEXT NOT NULL, token BLOB NOT NULL,
    created TEXT NOT NULL, expires TEXT NOT NULL, source_ip TEXT);
"""


@dataclass(frozen=True, slots=True)
class KeystoneSession:
    name: str
    token: str
    csrf: str
    expires: datetime


class KeystoneSessions:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    def open(self, name: str, token: str, *, key: str, expires: datetime,
             source_ip: str | None) -> tuple[str, KeystoneSession]:
        """A session for a keystone token; returns the cookie value and the session."""
        cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self._lock:
            self._conn.execute("DELETE FROM keystone_sessions WHERE expires < ?", (now.isoformat(),))
            self._conn.execute(
                "INSERT INTO keystone_sessions VALUES (?, ?, ?, ?, ?, ?, ?)",
                (_keyed(key, cookie), name, csrf, _seal(cookie, token), now.isoformat(), expires.isoformat(),
                 source_ip))
        return cookie, KeystoneSession(name, token, csrf, expires)

    def get(self, cookie: str, *, key: str) -> KeystoneSession | None:
        if not cookie or len(cookie) > 128:
            return None
        with self._lock:
            row = self._conn.execute(
                "SELECT name, csrf, token, expires FROM keystone_sessions WHERE digest = ?",
                (_keyed(key, cookie),)).fetchone()
        if row is None:
            return None
        expires = datetime.fromisoformat(row[3])
        token = _open(cookie, row[2])
        if expires <= datetime.now(UTC) or token is None:
            return None
        return KeystoneSession(row[0], token, row[1], expires)

    def close_session(self, cookie: str, *, key: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM keystone_sessions WHERE digest = ?", (_keyed(key, cookie),))


def session_expiry(token_expires: datetime, hours: float) -> datetime:
    """A session never outlives its token."""
    return min(token_expires, datetime.now(UTC) + timedelta(hours=hours))


def _keyed(key: str, cookie: str) -> str:
    return hmac.new(key.encode(), cookie.encode(), hashlib.sha256).hexdigest()


def _box_key(cookie: str) -> bytes:
    return hashlib.sha256(b"stackwatch keystone session\0" + cookie.encode()).digest()


def _seal(cookie: str, token: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(_box_key(cookie)).encrypt(nonce, token.encode(), None)


def _open(cookie: str, sealed: bytes) -> str | None:
    try:
        return AESGCM(_box_key(cookie)).decrypt(sealed[:12], sealed[12:], None).decode()
    except (InvalidTag, ValueError):
        return None
