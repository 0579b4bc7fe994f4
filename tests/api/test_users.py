"""users.db: argon2 passwords, hashed API tokens, sessions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from stackwatch.api.users import UserError, UserStore


@pytest.fixture()
def users(tmp_path: Path) -> UserStore:
    return UserStore(tmp_path / "users.db")


def test_passwords_are_stored_as_argon2_hashes(users: UserStore, tmp_path: Path) -> None:
    users.add("alice", "correct horse battery", "viewer")
    stored = sqlite3.connect(tmp_path / "users.db").execute("SELECT password FROM users").fetchone()[0]
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert (tmp_path / "users.db").stat().st_mode & 0o077 == 0


def test_verify_accepts_only_the_right_password(users: UserStore) -> None:
    users.add("alice", "correct horse battery", "viewer")
    assert users.verify("alice", "correct horse battery").role == "viewer"
    assert users.verify("alice", "wrong horse battery") is None
    assert users.verify("nobody", "correct horse battery") is None


@pytest.mark.parametrize(
    ("name", "password", "role"),
    [
        ("alice", "short", "viewer"),
        ("al ice", "long enough password", "viewer"),
        ("alice", "long enough password", "superuser"),
    ],
)
def test_bad_users_are_refused(users: UserStore, name: str, password: str, role: str) -> None:
    with pytest.raises(UserError):
        users.add(name, password, role)


def test_tokens_are_stored_hashed_and_checked(users: UserStore, tmp_path: Path) -> None:
    users.add("bob", "long enough password", "responder")
    token, info = users.create_token("bob", "ci")
    assert users.check_token(token)[0].name == "bob"
    digest = sqlite3.connect(tmp_path / "users.db").execute("SELECT digest FROM tokens").fetchone()[0]
    assert token.split("_")[-1] not in digest
    assert users.check_token(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    users.revoke_token(info.id)
    assert users.check_token(token) is None


def test_a_token_never_exceeds_its_users_role(users: UserStore) -> None:
    users.add("bob", "long enough password", "responder")
    with pytest.raises(UserError):
        users.create_token("bob", role="admin")
    token, _ = users.create_token("bob")
    users.set_role("bob", "viewer")
    assert users.check_token(token)[1] == "viewer"


def test_a_new_password_ends_every_session(users: UserStore) -> None:
    users.add("carol", "long enough password", "viewer")
    cookie, _ = users.open_session("carol", key="k", hours=1, source_ip="127.0.0.1")
    assert users.session(cookie, key="k").user.name == "carol"
    assert users.session(cookie, key="other key") is None
    users.set_password("carol", "another long password")
    assert users.session(cookie, key="k") is None


def test_deleting_a_user_removes_their_tokens(users: UserStore) -> None:
    users.add("dave", "long enough password", "admin")
    token, _ = users.create_token("dave")
    users.delete("dave")
    assert users.check_token(token) is None and users.all() == []
