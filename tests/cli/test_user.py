"""``stackwatch user``: users and tokens in users.db, changes recorded in the store."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from stackwatch.api.users import UserStore
from stackwatch.cli.main import cli
from stackwatch.store import open_store
from stackwatch.store.base import EventQuery


def invoke(data: Path, *args: str, password: str | None = None) -> str:
    result = CliRunner().invoke(cli, ["user", *args, "--data", str(data)], input=password)
    assert result.exit_code == 0, result.output
    return result.output


def test_add_token_passwd_delete(tmp_path: Path) -> None:
    invoke(
        tmp_path, "add", "ops", "--role", "responder", "--password-stdin", password="a long password here\n"
    )
    users = UserStore.in_data_dir(tmp_path)
    assert users.verify("ops", "a long password here").role == "responder"
    token = invoke(tmp_path, "token", "ops", "--label", "ci").strip()
    assert users.check_token(token)[0].name == "ops"
    invoke(tmp_path, "passwd", "ops", "--password-stdin", password="another long password\n")
    assert users.verify("ops", "another long password") is not None
    assert "ops" in invoke(tmp_path, "list", "--tokens")
    invoke(tmp_path, "delete", "ops")
    assert users.all() == [] and users.check_token(token) is None
    with open_store(tmp_path) as store:
        actions = [
            s.event.action
            for s in store.search_events(EventQuery(kind="stackwatch_audit", newest_first=False))
        ]
    assert actions == ["user.create", "token.create", "user.password", "user.delete"]


def test_a_short_password_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["user", "add", "ops", "--password-stdin", "--data", str(tmp_path)], input="short\n"
    )
    assert result.exit_code != 0 and "12 characters" in result.output


def test_the_password_prompt_asks_twice(tmp_path: Path) -> None:
    invoke(tmp_path, "add", "vi", password="a long password here\na long password here\n")
    assert UserStore.in_data_dir(tmp_path).verify("vi", "a long password here") is not None
