"""The keystone login attempts the store correlates at ingest (store/sqlite_attempts.py): the
keystone report summed from them equals a full recount of the stored events (the demo and a
bigger generated corpus through ``analyze``), over any range, after re-ingestion, across a
crash, retention and backup/restore, in both record formats (format 2 reads the events back
from its blocks), and across ``store migrate`` from one to the other."""

from __future__ import annotations

import contextlib
import io
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stackwatch.api.analytics import (
    KeystoneReport,
    attempt_row,
    build_report,
    login_events,
    report_dict,
    rollup_report,
)
from stackwatch.cli.analyze import run_analyze
from stackwatch.scenario import demo_dataset, generate
from stackwatch.store.backup import backup, restore
from stackwatch.store.keys import init_store
from stackwatch.store.migrate import migrate_store
from stackwatch.store.retention import expire
from stackwatch.store.seal import parse_initial_key
from stackwatch.store.sqlite import FORMAT_ENV, SQLiteStore, open_store, stored_format
from stackwatch.testing import make_event

PRIVILEGED = ("admin",)


@pytest.fixture(scope="module", params=[1, 2], ids=["format1", "format2"])
def store_format(request: pytest.FixtureRequest) -> Iterator[int]:
    """The record format of the stores a test creates (``analyze`` creates in the format of
    $STACKWATCH_STORE_FORMAT, so it is set here too); the tests open them with ``open_store``."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv(FORMAT_ENV, str(request.param))
        yield request.param


def _created(data: Path, fmt: int) -> Path:
    assert stored_format(data) == fmt  # the format asked for, not the default
    return data


def _analyze(logs: Path, data: Path) -> Any:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return run_analyze([str(logs)], data=str(data))


def _recount(store: SQLiteStore, **scope: Any) -> KeystoneReport:
    """The report recounted from every stored login event (correlated here, in store order)."""
    events, truncated = login_events(store, None, None, max_events=10_000_000)
    assert not truncated
    return build_report(events, privileged=PRIVILEGED, **scope)


def _same(store: SQLiteStore, **scope: Any) -> KeystoneReport:
    summed = rollup_report(store, privileged=PRIVILEGED, **scope)
    recounted = _recount(store, **scope)
    assert summed is not None and summed.at_ingest
    assert report_dict(summed) == report_dict(recounted)
    for ip in [s.ip for s in recounted.ips[:5]]:
        assert ([attempt_row(a) for a in summed.timeline(ip=ip, limit=5000)]
                == [attempt_row(a) for a in recounted.timeline(ip=ip, limit=5000)])
    for account in [a.account for a in recounted.accounts[:5]]:
        assert ([attempt_row(a) for a in summed.timeline(account=account, limit=5000)]
                == [attempt_row(a) for a in recounted.timeline(account=account, limit=5000)])
    return summed


def _ranges(store: SQLiteStore) -> list[tuple[datetime, datetime]]:
    """Ranges cutting minutes anywhere: inside one minute, across a few, most of the data."""
    times = [e.time for e in login_events(store, None, None, 10_000_000)[0]]
    first, last = times[0], times[-1]
    span = last - first
    return [(first + span * a + timedelta(seconds=7.25), first + span * b + timedelta(seconds=b * 41.5))
            for a, b in ((0.0, 0.0001), (0.1, 0.13), (0.2, 0.9), (0.5, 0.5003), (0.0, 1.0))]


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory, store_format: int) -> Path:
    root = tmp_path_factory.mktemp("attempts-demo")
    _analyze(demo_dataset(root / "logs", seed=7), root / "data")
    return _created(root / "data", store_format)


@pytest.fixture(scope="module")
def corpus_store(tmp_path_factory: pytest.TempPathFactory, store_format: int) -> Path:
    """A generated corpus of 60k lines over 6 hours (every incident, the benchmarks' generator)."""
    root = tmp_path_factory.mktemp("attempts-corpus")
    generate(root / "logs", seed=11, lines=60_000, duration=timedelta(hours=6))
    _analyze(root / "logs", root / "data")
    return _created(root / "data", store_format)


@pytest.mark.parametrize("which", ["demo_store", "corpus_store"])
def test_the_report_equals_a_full_recount_over_any_range(which: str, store_format: int,
                                                          request: pytest.FixtureRequest) -> None:
    data = request.getfixturevalue(which)  # in ``store_format``
    with open_store(data, read_only=True) as store:
        whole = _same(store)
        assert whole.total > 100 and whole.failures and whole.successes
        assert {s.classification for s in whole.ips} >= {"brute_force", "spraying"}
        for since, until in _ranges(store):
            _same(store, since=since, until=until)
        _same(store, accounts=[a.account for a in whole.accounts[:3]])
        _same(store, since=_ranges(store)[2][0], accounts=["admin", "nobody"])


def test_a_second_analyze_of_the_same_logs_counts_nothing_twice(tmp_path: Path, store_format: int) -> None:
    logs = demo_dataset(tmp_path / "logs", seed=3)
    _analyze(logs, tmp_path / "data")
    _created(tmp_path / "data", store_format)
    with open_store(tmp_path / "data", read_only=True) as store:
        before = report_dict(_same(store))
    again = _analyze(logs, tmp_path / "data")
    assert again.already_stored and not again.stored
    with open_store(tmp_path / "data", background_index=False) as store:
        assert report_dict(_same(store)) == before
        assert store.check_login_attempts() == []


def _login(i: int, kind: str, t0: datetime, **initiator: Any) -> Any:
    return make_event(service="keystone", action="authenticate", outcome="failure", kind=kind,
                      time=t0 + timedelta(seconds=i * 0.5),
                      initiator={"source_ip": "203.0.113.7", **initiator},
                      attrs={"partial_password_hash": f"h{i}"}, ref=f"{kind}:{i}", origin=f"file:{kind}")


CRASHING_WRITER = textwrap.dedent("""
    import os, sys
    from datetime import UTC, datetime
    sys.path[:0] = sys.argv[3:]
    from stackwatch.store.sqlite import open_store
    from tests.store.test_sqlite_attempts import _login
    t0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    store = open_store(sys.argv[1], format=int(sys.argv[2]), background_index=False)
    # the log lines of attempts 0 and 1 committed, their CADF copies come after the crash;
    # attempt 2 has no other copy: only the held seqs written down can bring it back
    store.append_events([_login(0, "oslo_log", t0), _login(1, "oslo_log", t0),
                         _login(2, "oslo_log", t0, name="carol")])
    store.flush()
    os._exit(0)  # no close: the correlator's held attempts die with the process
""")


def test_attempts_held_by_a_writer_that_crashed_are_taken_back(tmp_path: Path, store_format: int) -> None:
    data = tmp_path / "data"
    paths = [str(Path(__file__).parents[2] / "src"), str(Path(__file__).parents[2])]
    subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(data), str(store_format), *paths],
                   check=True, timeout=120)
    _created(data, store_format)
    with sqlite3.connect(data / "stackwatch.db") as conn:  # the crash: nothing written yet, both held
        assert conn.execute("SELECT count(*) FROM login_attempts").fetchone()[0] == 0
    t0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    with open_store(data, background_index=False) as store:
        store.append_events([_login(0, "cadf", t0, name="alice"), _login(1, "cadf", t0, name="bob"),
                             _login(40, "oslo_log", t0)])
    with open_store(data, background_index=False) as store:
        report = _same(store)
        assert report.total == 4  # two attempts of two copies each, two of one
        assert {a.account for a in report.accounts} == {"alice", "bob", "carol"}
        assert store.check_login_attempts() == []


def test_retention_takes_the_expired_attempts_out(tmp_path: Path, store_format: int) -> None:
    data = tmp_path / "data"
    init_store(data, background_index=False, format=store_format)
    t0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    with open_store(_created(data, store_format), background_index=False) as store:
        store.append_events([_login(i, "cadf", t0, name=f"u{i % 7}") for i in range(300)])
    with open_store(data, background_index=False) as store:
        total = _same(store).total
        expired = expire(store, max_age=timedelta(days=-1))  # everything received is past the cut-off
        assert expired.pruned_to > 0
        after = _same(store)
        assert after.total < total
        assert store.check_login_attempts() == []


def test_backup_and_restore_rebuild_the_attempts_from_the_verified_events(demo_store: Path, tmp_path: Path,
                                                                          store_format: int) -> None:
    data = tmp_path / "data"
    result = init_store(data, background_index=False, format=store_format)
    _analyze(demo_store.parent / "logs", data)
    with open_store(data, read_only=True) as store:
        before = report_dict(_same(store))
    backup(data, tmp_path / "b.tar")
    with sqlite3.connect(data / "stackwatch.db") as conn:  # a derived table is not covered by the chain
        conn.execute("UPDATE attempt_minutes SET n = n + 1000")
    backup(data, tmp_path / "tampered.tar")
    for name in ("b.tar", "tampered.tar"):
        restore(tmp_path / name, tmp_path / f"r-{name}", initial_keys=[parse_initial_key(result.initial_key)])
        with open_store(_created(tmp_path / f"r-{name}", store_format), background_index=False) as store:
            assert report_dict(_same(store)) == before


def test_a_store_upgraded_from_the_previous_schema_counts_its_stored_logins(demo_store: Path, tmp_path: Path,
                                                                          store_format: int) -> None:
    data = tmp_path / "data"
    _analyze(demo_store.parent / "logs", data)
    _created(data, store_format)
    with sqlite3.connect(data / "stackwatch.db", isolation_level=None) as conn:  # as version 6 left it
        conn.execute("DROP TABLE login_attempts")
        conn.execute("DROP TABLE attempt_minutes")
        conn.execute("DELETE FROM meta WHERE name LIKE 'attempts_%'")
        conn.execute("PRAGMA user_version = 6")
    with open_store(data, background_index=False) as store:
        assert _same(store).total > 100
        assert store.check_login_attempts() == []


def test_store_attempts_checks_and_recounts_them(demo_store: Path, tmp_path: Path, store_format: int) -> None:
    from click.testing import CliRunner

    from stackwatch.cli.main import cli

    data = tmp_path / "data"
    _analyze(demo_store.parent / "logs", data)
    _created(data, store_format)
    run = CliRunner()
    ok = run.invoke(cli, ["store", "attempts", "--data", str(data)])
    assert ok.exit_code == 0 and "match" in ok.output, ok.output
    with sqlite3.connect(data / "stackwatch.db") as conn:
        conn.execute("DELETE FROM login_attempts WHERE seq = (SELECT max(seq) FROM login_attempts)")
    bad = run.invoke(cli, ["store", "attempts", "--data", str(data)])
    assert bad.exit_code == 1 and "differ" in bad.output, bad.output
    fixed = run.invoke(cli, ["store", "attempts", "--rebuild", "--data", str(data)])
    assert fixed.exit_code == 0 and "recounted" in fixed.output, fixed.output
    assert run.invoke(cli, ["store", "attempts", "--data", str(data)]).exit_code == 0


def test_store_migrate_keeps_the_attempts_and_takes_back_the_held_ones(tmp_path: Path) -> None:
    """A format 1 store converted to format 2 (``store migrate``): the attempts it counted are
    kept, and the attempts its crashed writer held are taken back by the format 2 writer, read
    from the blocks; everything then agrees with a recount."""
    data = tmp_path / "data"
    result = init_store(data, background_index=False, format=1)
    t0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    with SQLiteStore(data, background_index=False) as store:
        store.append_events([_login(i, "cadf", t0, name=f"u{i % 5}") for i in range(100, 160)])
    paths = [str(Path(__file__).parents[2] / "src"), str(Path(__file__).parents[2])]
    subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(data), "1", *paths], check=True, timeout=120)
    with sqlite3.connect(data / "stackwatch.db") as conn:
        counted = conn.execute("SELECT * FROM login_attempts ORDER BY seq").fetchall()
        assert len(counted) >= 30 and conn.execute("SELECT value FROM meta WHERE name = 'attempts_pending'"
                                                   ).fetchone()[0] != "[]"
    migrate_store(data, initial_keys=[parse_initial_key(result.initial_key)])
    with sqlite3.connect(data / "stackwatch.db") as conn:
        assert conn.execute("SELECT * FROM login_attempts ORDER BY seq").fetchall() == counted
    with open_store(_created(data, 2), background_index=False) as store:
        store.append_events([_login(0, "cadf", t0, name="alice"), _login(1, "cadf", t0, name="bob"),
                             _login(200, "oslo_log", t0, name="dan")])
    with open_store(data, background_index=False) as store:
        report = _same(store)
        assert {"alice", "bob", "carol", "dan"} <= {a.account for a in report.accounts}
        assert store.check_login_attempts() == []


def test_the_same_record_stored_twice_counts_one_attempt(tmp_path: Path, store_format: int) -> None:
    """One record (one host, one ref) appended twice makes two groups in the correlator; the
    minute sums counted both while ``login_attempts`` kept one row (keyed by the seq both
    resolved to): now one attempt in both, so a range's whole and partial minutes agree."""
    from stackwatch.store.attempt_fold import AttemptScope

    data = tmp_path / "data"
    t0 = datetime(2026, 5, 1, 8, 0, 30, tzinfo=UTC)
    again = _login(3, "oslo_log", t0, name="frank")
    with open_store(data, background_index=False, format=store_format) as store:
        store.append_events([_login(0, "oslo_log", t0, name="gina"), again, again])
    with open_store(_created(data, store_format), background_index=False) as store:
        attempts = store.login_attempts()
        whole = {row[1]: row[3] for row in attempts.totals(AttemptScope())}
        assert whole == {"gina": 1, "frank": 1}
        minute = int(t0.replace(second=0).timestamp() * 1e6)
        partial = {row[1]: row[3] for row in attempts.totals(AttemptScope(since=minute + 1))}
        assert partial == whole  # the partial minute reads the rows: the same count
        assert len(attempts.timeline(AttemptScope(), ip=None, account="frank", limit=10)) == 1
        assert store.check_login_attempts() == []
