"""Keystone login attempts correlated at ingest on the shared PostgreSQL store
(store/postgres/attempts.py): the report summed from them equals a full recount of the stored
login events over any range, with several writers (each writes its own rows, reads sum over
all), and a writer that crashed takes back the attempts it held."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from stackwatch.cli.analyze import run_analyze
from stackwatch.scenario import demo_dataset
from stackwatch.store.postgres import open_store
from tests.pgdb import fresh_database
from tests.store.test_sqlite_attempts import _login, _ranges, _same

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def _schema(url: str, request: pytest.FixtureRequest) -> str:
    """Each test its own schema of the module's database."""
    return f"{url}?schema=a_{request.node.name[-30:].lower()}_{os.getpid()}"


def test_the_report_of_analyze_equals_a_full_recount_over_any_range(database: str, tmp_path: Path,
                                                                      request: pytest.FixtureRequest) -> None:
    url = _schema(database, request)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        run_analyze([str(demo_dataset(tmp_path / "logs", seed=7))], data=url)
    with open_store(url, read_only=True) as store:
        whole = _same(store)
        assert whole.total > 100 and whole.failures and whole.successes
        assert {s.classification for s in whole.ips} >= {"brute_force", "spraying"}
        for since, until in _ranges(store):
            _same(store, since=since, until=until)
        _same(store, accounts=[a.account for a in whole.accounts[:3]])
        _same(store, since=_ranges(store)[2][0], accounts=["admin", "nobody"])


def test_two_writers_rows_are_summed(database: str, request: pytest.FixtureRequest) -> None:
    """Two writers append attempts of the same address and account in the same minutes (5 s
    apart: two attempts, never one): each writes its own minute rows, the report sums."""
    url = _schema(database, request)
    t0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    with open_store(url, writer="w1", batch_size=5) as one, open_store(url, writer="w2", batch_size=5) as two:
        for i in range(0, 240, 20):
            one.append_events([_login(i, "oslo_log", t0, name="alice")])
            two.append_events([_login(i + 10, "oslo_log", t0, name="alice")])
    with open_store(url, read_only=True) as store:
        report = _same(store)
        assert report.total == 24
        assert [(a.account, a.failures) for a in report.accounts] == [("alice", 24)]
        for since, until in _ranges(store):
            _same(store, since=since, until=until)
    with psycopg.connect(database) as conn:
        schema = url.rpartition("schema=")[2]
        rows = conn.execute(f'SELECT writer, sum(n)::int, count(*) FROM "{schema}".attempt_minutes '
                            "GROUP BY 1 ORDER BY 1").fetchall()
        assert rows == [(0, 12, 2), (1, 12, 2)]  # each writer's own rows: 2 minutes each


CRASHING_WRITER = textwrap.dedent("""
    import os, sys
    from datetime import UTC, datetime
    sys.path[:0] = sys.argv[2:]
    from stackwatch.store.postgres import open_store
    from tests.store.test_sqlite_attempts import _login
    t0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    store = open_store(sys.argv[1], writer="crashing")
    # the log lines of attempts 0 and 1 committed, their CADF copies come after the crash;
    # attempt 2 has no other copy: only the held seqs written down can bring it back
    store.append_events([_login(0, "oslo_log", t0), _login(1, "oslo_log", t0),
                         _login(2, "oslo_log", t0, name="carol")])
    store.flush()
    os._exit(0)  # no close: the correlator's held attempts die with the process
""")


def test_attempts_held_by_a_writer_that_crashed_are_taken_back(database: str,
                                                               request: pytest.FixtureRequest) -> None:
    url = _schema(database, request)
    subprocess.run([sys.executable, "-c", CRASHING_WRITER, url, str(ROOT / "src"), str(ROOT)],
                   check=True, timeout=120)
    with open_store(url, read_only=True) as store:
        attempts = store.login_attempts()
        assert attempts.totals(attempts_scope()) == []  # the crash: nothing written yet, all held
    t0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    with open_store(url, writer="crashing") as store:
        store.append_events([_login(0, "cadf", t0, name="alice"), _login(1, "cadf", t0, name="bob"),
                             _login(40, "oslo_log", t0)])
    with open_store(url, read_only=True) as store:
        report = _same(store)
        assert report.total == 4  # two attempts of two copies each, two of one
        assert {a.account for a in report.accounts} == {"alice", "bob", "carol"}


def test_a_store_of_the_previous_schema_folds_its_stored_logins(database: str,
                                                                 request: pytest.FixtureRequest) -> None:
    """A store made before the attempts' tables: its writer folds its stored logins at its next
    append (and the schema is upgraded when a writer opens it)."""
    url = _schema(database, request)
    t0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    with open_store(url, writer="old") as store:
        store.append_events([_login(i, "oslo_log", t0, name="dave") for i in range(0, 60, 6)])
    schema = url.rpartition("schema=")[2]
    with psycopg.connect(database, autocommit=True) as conn:  # back to schema version 1
        conn.execute(f'DROP TABLE "{schema}".login_attempts, "{schema}".attempt_minutes, '
                     f'"{schema}".attempt_state, "{schema}".attempt_refs')
        conn.execute(f"UPDATE \"{schema}\".meta SET value = '1' WHERE name = 'schema_version'")
    with open_store(url, writer="old") as store:
        store.append_events([_login(100, "oslo_log", t0, name="dave")])
    with open_store(url, read_only=True) as store:
        assert _same(store).total == 11


def attempts_scope():  # type: ignore[no-untyped-def]
    from stackwatch.store.attempt_fold import AttemptScope

    return AttemptScope()


def test_a_lost_connection_neither_loses_nor_doubles_attempts(database: str,
                                                              request: pytest.FixtureRequest) -> None:
    """A batch whose commit is lost with the connection (dead before the transaction began) keeps
    its attempts for the retry on the new connection: none lost, none counted twice."""
    from stackwatch.core.errors import StoreError
    from tests.store.test_postgres_connect import _kill_sessions

    url = _schema(database, request)
    t0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    with open_store(url, writer="w", batch_size=1000) as store:
        store.append_events([_login(i, "oslo_log", t0, name="erin") for i in range(0, 40, 4)])
        store.flush()
        store.append_events([_login(i, "oslo_log", t0, name="erin") for i in range(40, 80, 4)])
        _kill_sessions(database)
        with pytest.raises(StoreError):
            store.flush()
        store.append_events([_login(i, "oslo_log", t0, name="erin") for i in range(80, 120, 4)])
    with open_store(url, read_only=True) as store:
        assert _same(store).total == 30


def test_another_record_under_a_ref_already_stored_is_another_login(database: str,
                                                                     request: pytest.FixtureRequest) -> None:
    """A ref names a record only until it is reused: line refs (``ctl1/keystone.log:12``) repeat
    when the next day's rotated file of the same name is analyzed, counter refs of a stream
    source when its process restarts. The claims matched copies by (host, ref) alone, so every
    login of the new file on a line number seen before was taken for the old one and not
    counted (20 logins, 10 in the report); the embedded store counts them all."""
    from datetime import timedelta

    url = _schema(database, request)
    t0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    with open_store(url, writer="w1") as store:
        store.append_events([_login(i, "oslo_log", t0, name="alice") for i in range(10)])
    with open_store(url, writer="w1") as store:  # the next day: the same file name, new records
        store.append_events([_login(i, "oslo_log", t0 + timedelta(days=1), name="bob") for i in range(10)])
    with open_store(url, read_only=True) as store:
        report = _same(store)
        assert report.total == 20
        assert sorted((a.account, a.failures) for a in report.accounts) == [("alice", 10), ("bob", 10)]
        assert not store.check_login_attempts().problems
