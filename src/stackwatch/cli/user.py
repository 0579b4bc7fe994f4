"""``stackwatch user add|passwd|role|token|revoke|list|delete``: local users of the web UI and
API, kept in users.db in the data folder. Every change is recorded in the store as a
``stackwatch_audit`` event (actor ``cli:<unix user>``)."""

from __future__ import annotations

import getpass
import sys

import click

from stackwatch.cli.analyze import DEFAULT_DATA

data_option = click.option("--data", default=DEFAULT_DATA, show_default=True, help="Data folder (users.db).")


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _record(data: str, action: str, name: str, message: str) -> None:
    from stackwatch.api.audit import AuditLog, audit_event

    AuditLog.for_data_dir(data).record(
        audit_event(action, actor=_actor(), target_type="user", target_name=name, message=message)
    )


def _password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _users(data: str):  # type: ignore[no-untyped-def]
    from stackwatch.api.users import UserStore

    return UserStore.in_data_dir(data)


@click.group("user")
def user_group() -> None:
    """Manage the local users of the web UI and API."""


def _run(action):  # type: ignore[no-untyped-def]
    from stackwatch.api.users import UserError

    try:
        return action()
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc


@user_group.command("add")
@click.argument("name")
@click.option(
    "--role", type=click.Choice(["viewer", "responder", "admin"]), default="viewer", show_default=True
)
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (one line).")
@data_option
def add_command(name: str, role: str, password_stdin: bool, data: str) -> None:
    """Create user NAME (asks for a password, at least 12 characters)."""
    users = _users(data)
    _run(lambda: users.add(name, _password(password_stdin), role))
    _record(data, "user.create", name, f"{_actor()} created user {name} with role {role}")
    click.echo(f"user {name} created ({role})")


@user_group.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (one line).")
@data_option
def passwd_command(name: str, password_stdin: bool, data: str) -> None:
    """Set a new password for NAME (ends the user's sessions)."""
    users = _users(data)
    _run(lambda: users.set_password(name, _password(password_stdin)))
    _record(data, "user.password", name, f"{_actor()} changed the password of {name}")
    click.echo(f"password of {name} changed")


@user_group.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(["viewer", "responder", "admin"]))
@data_option
def role_command(name: str, role: str, data: str) -> None:
    """Change the role of NAME."""
    _run(lambda: _users(data).set_role(name, role))
    _record(data, "user.role", name, f"{_actor()} gave {name} the role {role}")
    click.echo(f"{name} is now {role}")


@user_group.command("token")
@click.argument("name")
@click.option("--label", default="", help="What the token is for.")
@click.option(
    "--role",
    type=click.Choice(["viewer", "responder", "admin"]),
    default=None,
    help="Token role (at most the user's; default the user's).",
)
@click.option("--days", type=float, default=None, help="Expire after this many days.")
@data_option
def token_command(name: str, label: str, role: str | None, days: float | None, data: str) -> None:
    """Create an API token for NAME and print it (shown once; only its hash is kept)."""
    token, info = _run(lambda: _users(data).create_token(name, label, role=role, days=days))
    _record(data, "token.create", name, f"{_actor()} created API token {info.id} ({info.role}) for {name}")
    click.echo(token)


@user_group.command("revoke")
@click.argument("token_id")
@data_option
def revoke_command(token_id: str, data: str) -> None:
    """Revoke the API token with id TOKEN_ID (see `user list --tokens`)."""
    _run(lambda: _users(data).revoke_token(token_id))
    _record(data, "token.revoke", token_id, f"{_actor()} revoked API token {token_id}")
    click.echo(f"token {token_id} revoked")


@user_group.command("list")
@click.option("--tokens", is_flag=True, help="Also list API tokens.")
@data_option
def list_command(tokens: bool, data: str) -> None:
    """List users (and their tokens)."""
    users = _users(data)
    for user in users.all():
        click.echo(f"{user.name:<24} {user.role:<10} created {user.created:%Y-%m-%d %H:%M}")
    if tokens:
        for t in users.tokens():
            expires = f"expires {t.expires:%Y-%m-%d}" if t.expires else "no expiry"
            used = f"last used {t.last_used:%Y-%m-%d %H:%M}" if t.last_used else "never used"
            click.echo(f"token {t.id} {t.user:<16} {t.role:<10} {expires}, {used}  {t.label}")


@user_group.command("delete")
@click.argument("name")
@data_option
def delete_command(name: str, data: str) -> None:
    """Delete user NAME (and their tokens and sessions)."""
    _run(lambda: _users(data).delete(name))
    _record(data, "user.delete", name, f"{_actor()} deleted user {name}")
    click.echo(f"user {name} deleted")
