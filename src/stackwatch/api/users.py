"""Local users, API tokens and login sessions, in ``users.db`` in the data folder.

Passwords are hashed with argon2id (argon2-cffi's defaults: RFC 9106 low-memory profile).
API tokens and session ids are 256-bit random strings: only their SHA-256 (sessions: an
HMAC keyed with the session secret) is stored, so a copy of ``users.db`` lets nobody in.
Token format: ``swt_<id>_<secret>``; the id finds the row, the secret is compared in
constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from stackwatch.core.errors import StackwatchError

USERS_FILE: Final = "users.db"
ROLES: Final = ("viewer", "responder", "admin")
"""Roles, weakest first: a role may do everything the roles before it may."""
ROLE_RANK: Final = {role: rank for rank, role in enumerate(ROLES)}
MIN_PASSWORD: Final = 12
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}$")
_TOKEN = re.compile(r"^swt_([0-9a-f]{16})_([A-Za-z0-9_\-]{43})$")

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, password TEXT NOT NULL,
    created TEXT NOT NULL, updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    label TEXT NOT NULL, digest TEXT NOT NULL, role TEXT NOT NULL, created TEXT NOT NULL,
    expires TEXT, last_used TEXT);
CREATE TABLE IF NOT EXISTS sessions (
    digest TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    csrf TEXT NOT NULL, created TEXT NOT NULL, expires TEXT NOT NULL, source_ip TEXT);
"""


class UserError(StackwatchError, ValueError):
    """A user operation was refused (unknown user, weak password, bad role or name)."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: str
    created: datetime


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    user: str
    label: str
    role: str
    created: datetime
    expires: datetime | None
    last_used: datetime | None


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf: str
    expires: datetime


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def check_role(role: str) -> str:
    if role not in ROLE_RANK:
        raise UserError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
    return role


class UserStore:
    """Users, tokens and sessions. Thread-safe; one short transaction per call."""

    def __init__(self, path: str | os.PathLike[str], *, hasher: PasswordHasher | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        if fresh:
            os.chmod(self.path, 0o600)  # password hashes: readable by the service account only
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._hasher = hasher or PasswordHasher()
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    @classmethod
    def in_data_dir(cls, data_dir: str | os.PathLike[str]) -> UserStore:
        return cls(Path(data_dir) / USERS_FILE)

    def close(self) -> None:
        self._conn.close()

    # -- users -------------------------------------------------------------------------------

    def add(self, name: str, password: str, role: str) -> User:
        if not _NAME.match(name):
            raise UserError("user names are 1-64 letters, digits, '.', '_', '-', '@'")
        check_role(role)
        self._check_password(password)
        now = _iso(_now())
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT INTO users VALUES (?, ?, ?, ?, ?)",
                    (name, role, self._hasher.hash(password), now, now),
                )
            except sqlite3.IntegrityError:
                raise UserError(f"user {name!r} already exists") from None
        user = self.get(name)
        assert user is not None
        return user

    def get(self, name: str) -> User | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT name, role, created FROM users WHERE name = ?", (name,)
            ).fetchone()
        return User(row[0], row[1], datetime.fromisoformat(row[2])) if row else None

    def all(self) -> list[User]:
        with self._lock:
            rows = self._conn.execute("SELECT name, role, created FROM users ORDER BY name").fetchall()
        return [User(n, r, datetime.fromisoformat(c)) for n, r, c in rows]

    def set_password(self, name: str, password: str) -> None:
        self._check_password(password)
        with self._lock:
            changed = self._conn.execute(
                "UPDATE users SET password = ?, updated = ? WHERE name = ?",
                (self._hasher.hash(password), _iso(_now()), name),
            ).rowcount
            # A new password ends every session of the account (someone may have stolen one).
            self._conn.execute("DELETE FROM sessions WHERE user = ?", (name,))
        if not changed:
            raise UserError(f"no user {name!r}")

    def set_role(self, name: str, role: str) -> None:
        check_role(role)
        with self._lock:
            if not self._conn.execute(
                "UPDATE users SET role = ?, updated = ? WHERE name = ?", (role, _iso(_now()), name)
            ).rowcount:
                raise UserError(f"no user {name!r}")

    def delete(self, name: str) -> None:
        with self._lock:
            if not self._conn.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount:
                raise UserError(f"no user {name!r}")

    def verify(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs, else None. Unknown names cost a hash check
        too, so timing does not reveal which accounts exist."""
        with self._lock:
            row = self._conn.execute("SELECT password FROM users WHERE name = ?", (name,)).fetchone()
        stored = row[0] if row else self._dummy
        try:
            self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if self._hasher.check_needs_rehash(stored):
            with self._lock:
                self._conn.execute(
                    "UPDATE users SET password = ? WHERE name = ?", (self._hasher.hash(password), name)
                )
        return self.get(name)

    @staticmethod
    def _check_password(password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise UserError(f"passwords need at least {MIN_PASSWORD} characters")

    # -- API tokens --------------------------------------------------------------------------

    def create_token(
        self, name: str, label: str = "", *, role: str | None = None, days: float | None = None
    ) -> tuple[str, TokenInfo]:
        """A new token for user ``name`` (role at most the user's). Returns the token text,
        shown once, and its description."""
        user = self.get(name)
        if user is None:
            raise UserError(f"no user {name!r}")
        role = check_role(role or user.role)
        if ROLE_RANK[role] > ROLE_RANK[user.role]:
            raise UserError(f"a token cannot have more rights ({role}) than its user ({user.role})")
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        now = _now()
        expires = now + timedelta(days=days) if days else None
        with self._lock:
            self._conn.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                (token_id, name, label, _digest(secret), role, _iso(now), _iso(expires)),
            )
        return f"swt_{token_id}_{secret}", TokenInfo(token_id, name, label, role, now, expires, None)

    def tokens(self, name: str | None = None) -> list[TokenInfo]:
        sql = "SELECT id, user, label, role, created, expires, last_used FROM tokens"
        with self._lock:
            rows = self._conn.execute(
                sql + (" WHERE user = ?" if name else "") + " ORDER BY created", (name,) if name else ()
            ).fetchall()
        return [
            TokenInfo(i, u, lab, r, datetime.fromisoformat(c), _dt(e), _dt(lu))
            for i, u, lab, r, c, e, lu in rows
        ]

    def revoke_token(self, token_id: str) -> None:
        with self._lock:
            if not self._conn.execute("DELETE FROM tokens WHERE id = ?", (token_id,)).rowcount:
                raise UserError(f"no token {token_id!r}")

    def check_token(self, token: str) -> tuple[User, str] | None:
        """(user, token role) for a valid, unexpired token; None otherwise."""
        match = _TOKEN.match(token)
        if match is None:
            return None
        with self._lock:
            row = self._conn.execute(
                "SELECT t.digest, t.role, t.expires, u.name, u.role, u.created FROM tokens AS t "
                "JOIN users AS u ON u.name = t.user WHERE t.id = ?",
                (match.group(1),),
            ).fetchone()
        if row is None or not hmac.compare_digest(row[0], _digest(match.group(2))):
            return None
        now = _now()
        if row[2] and datetime.fromisoformat(row[2]) <= now:
            return None
        with self._lock:
            self._conn.execute("UPDATE tokens SET last_used = ? WHERE id = ?", (_iso(now), match.group(1)))
        user = User(row[3], row[4], datetime.fromisoformat(row[5]))
        # A user demoted after the token was made: the token never exceeds the user's role.
        role = min(row[1], user.role, key=lambda r: ROLE_RANK.get(r, -1))
        return user, role

    # -- sessions ----------------------------------------------------------------------------

    def open_session(
        self, name: str, *, key: str, hours: float, source_ip: str | None
    ) -> tuple[str, Session]:
        """A new login session: returns the cookie value and the session."""
        user = self.get(name)
        if user is None:
            raise UserError(f"no user {name!r}")
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = _now()
        expires = now + timedelta(hours=hours)
        with self._lock:
            self._conn.execute("DELETE FROM sessions WHERE expires < ?", (_iso(now),))
            self._conn.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)",
                (_keyed(key, token), name, csrf, _iso(now), _iso(expires), source_ip),
            )
        return token, Session(user, csrf, expires)

    def session(self, token: str, *, key: str) -> Session | None:
        if not token or len(token) > 128:
            return None
        with self._lock:
            row = self._conn.execute(
                "SELECT s.csrf, s.expires, u.name, u.role, u.created FROM sessions AS s "
                "JOIN users AS u ON u.name = s.user WHERE s.digest = ?",
                (_keyed(key, token),),
            ).fetchone()
        if row is None:
            return None
        expires = datetime.fromisoformat(row[1])
        if expires <= _now():
            return None
        return Session(User(row[2], row[3], datetime.fromisoformat(row[4])), row[0], expires)

    def close_session(self, token: str, *, key: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM sessions WHERE digest = ?", (_keyed(key, token),))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _keyed(key: str, token: str) -> str:
    return hmac.new(key.encode(), token.encode(), hashlib.sha256).hexdigest()
