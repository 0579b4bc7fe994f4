"""``store attempts --data postgresql://...``: each writer's stored login attempts against a
recount of its events; a login two writers stored (counted once) agrees, a deleted or altered
row or minute is found, a writer still writing is named and not checked."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import psycopg
from click.testing import CliRunner

from stackwatch.cli.main import cli
from stackwatch.store.postgres import open_store
from tests.store.test_sqlite_attempts import _login

T0 = datetime(2026, 5, 1, 8, 0, 30, tzinfo=UTC)


def _two_writers(pg_database: str) -> str:
    """Two writers, the same CADF copies of two logins, a log-line copy and a third login."""
    url = f"{pg_database}?schema=chk_{secrets.token_hex(4)}"
    with open_store(url, writer="w1") as one, open_store(url, writer="w2") as two:
        one.append_events([_login(0, "cadf", T0, name="alice"), _login(20, "cadf", T0, name="bob")])
        one.flush()
        two.append_events([_login(0, "cadf", T0, name="alice"), _login(20, "oslo_log", T0),
                           _login(20, "cadf", T0, name="bob"), _login(40, "cadf", T0, name="carol")])
    return url


def _attempts(url: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["store", "attempts", "--data", url])


def _sql(url: str, statement: str) -> None:
    schema = url.rpartition("schema=")[2]
    with psycopg.connect(url.partition("?")[0], autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema}")
        conn.execute(statement)


def test_a_recount_agrees_with_what_the_writers_stored(pg_database: str) -> None:
    url = _two_writers(pg_database)
    done = _attempts(url)
    assert done.exit_code == 0, done.output
    assert "writer w1: 2 login attempts match" in done.output
    # w1 committed alice's login first, w2 bob's (both stored its CADF copy) and carol's: once each
    assert "writer w2: 3 login attempts match" in done.output
    with open_store(url, read_only=True) as store:
        assert not store.check_login_attempts().problems


def test_a_deleted_or_altered_attempt_or_minute_is_found(pg_database: str) -> None:
    url = _two_writers(pg_database)
    _sql(url, "DELETE FROM login_attempts WHERE account = 'carol'")  # only w2 stored carol's login
    done = _attempts(url)
    assert done.exit_code == 1 and "writer w2: login_attempts: 3 recounted, 1 of them missing" in done.output
    assert "writer w1: 2 login attempts match" in done.output
    url = _two_writers(pg_database)
    # alice's login: both stored it, w1 counted it; deleted, no one counts it: both say so
    _sql(url, "DELETE FROM login_attempts WHERE account = 'alice'")
    done = _attempts(url)
    assert "writer w1: login_attempts: 2 recounted, 1 of them missing" in done.output
    assert "writer w2: login_attempts: 3 recounted, 1 of them missing" in done.output
    url = _two_writers(pg_database)
    _sql(url, "UPDATE login_attempts SET ip = 'x' || ip WHERE writer = 1")
    assert "2 stored otherwise" in _attempts(url).output
    url = _two_writers(pg_database)
    _sql(url, "UPDATE attempt_minutes SET n = n + 1 WHERE writer = 1")
    done = _attempts(url)
    assert done.exit_code == 1 and "writer w2: attempt_minutes" in done.output, done.output
    url = _two_writers(pg_database)
    _sql(url, "INSERT INTO login_attempts SELECT id + 100, writer, time, ip, account, project, outcome, "
              "hash, host, kind, ref || 'x', agent FROM login_attempts WHERE writer = 1")
    assert "2 stored that the recount does not make" in _attempts(url).output


def test_a_writer_writing_now_is_named_not_checked(pg_database: str) -> None:
    url = _two_writers(pg_database)
    with open_store(url, writer="w1") as live:
        live.append_events([_login(50, "cadf", T0, name="dave")])
        live.flush()
        done = _attempts(url)
    assert done.exit_code == 1 and "writer w1: not checked: it is writing now" in done.output, done.output
    assert "writer w2: 3 login attempts match" in done.output
    assert _attempts(url).exit_code == 0  # closed cleanly: it released dave's attempt
