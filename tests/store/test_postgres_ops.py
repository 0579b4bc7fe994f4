"""The shared store's operations beyond verify: retention per writer log (what stays provable,
the audit trail, a dropped range that cannot be hidden), consistency proofs per writer,
public-key pinning per writer, and a login stored by two writers counted once."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from stackwatch.core.errors import StoreError
from stackwatch.store import auditor
from stackwatch.store.attempt_fold import AttemptScope
from stackwatch.store.postgres import open_store
from stackwatch.store.postgres.keys import init_writer
from stackwatch.store.postgres.proofs import consistency
from stackwatch.store.postgres.retention import expire_postgres
from stackwatch.store.postgres.verify import verify_postgres
from stackwatch.store.seal import parse_initial_key
from tests.store.blocks_attack import event
from tests.store.test_sqlite_attempts import _login

BATCHES = 4
PER_BATCH = 40


@dataclass
class Logs:
    url: str
    schema: str
    database: str
    keys: Path
    k0: dict[str, list[bytes]]
    public: dict[str, bytes]
    base: datetime

    def sql(self) -> psycopg.Connection:
        conn = psycopg.connect(self.database, autocommit=True)
        conn.execute(f'SET search_path TO "{self.schema}"')
        return conn

    def verify(self, **options: object) -> dict[str, object]:
        return verify_postgres(self.url, initial_keys=self.k0, **options)  # type: ignore[arg-type]


@pytest.fixture
def logs(pg_database: str, tmp_path: Path) -> Iterator[Logs]:
    """Two writers' logs in a schema of their own: BATCHES sealed blocks each, the records of
    batch b received at ``base`` + b hours (after the store.init admin event of now)."""
    schema = f"ops_{secrets.token_hex(4)}"
    url = f"{pg_database}?schema={schema}"
    k0: dict[str, list[bytes]] = {}
    public: dict[str, bytes] = {}
    base = datetime.now(UTC) + timedelta(minutes=1)
    for name in ("alpha", "beta"):
        result = init_writer(url, writer=name, keys=tmp_path / name)
        k0[name] = [parse_initial_key(result.initial_key)]
        public[name] = bytes.fromhex(result.public_key)
        with open_store(url, writer=name, keys=tmp_path / name) as store:
            for batch in range(BATCHES):
                records = [event(batch * PER_BATCH + i) for i in range(PER_BATCH)]
                later = base + timedelta(hours=batch)
                store.append_events([_received(e, later) for e in records])
                store.checkpoint()
    yield Logs(url, schema, pg_database, tmp_path, k0, public, base)
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _received(e: object, when: datetime) -> object:
    import msgspec

    return msgspec.structs.replace(e, received=when)  # type: ignore[type-var]


def _ok(reports: dict[str, object]) -> None:
    for name, report in reports.items():
        assert report.ok(), (name, [str(p) for p in report.problems])  # type: ignore[attr-defined]


# -- retention ---------------------------------------------------------------------------------


def test_retention_by_age_drops_whole_blocks_per_writer_and_verify_passes(logs: Logs) -> None:
    # records received before T0 + 1h30 expire: batches 0 and 1, up to the checkpoint after batch 1
    now = logs.base + timedelta(hours=1, minutes=30) + timedelta(days=90)
    results = expire_postgres(logs.url, max_age=timedelta(days=90), now=now, actor="tester")
    first_two = 1 + 2 * PER_BATCH  # the store.init admin event, then two batches
    assert {n: (r.pruned_from, r.pruned_to) for n, r in results.items()} == {
        "alpha": (1, first_two), "beta": (1, first_two)}
    reports = logs.verify()
    _ok(reports)
    for name in ("alpha", "beta"):
        report = reports[name]
        assert report.pruned_to == first_two  # type: ignore[attr-defined]
        assert report.records == (BATCHES - 2) * PER_BATCH  # type: ignore[attr-defined]
        assert any(p.kind == "pruned" for p in report.problems)  # type: ignore[attr-defined]
    with logs.sql() as conn:
        left = conn.execute("SELECT writer, min(seq), count(*) FROM events GROUP BY 1 ORDER BY 1").fetchall()
        assert left == [(0, first_two + 1, 2 * PER_BATCH), (1, first_two + 1, 2 * PER_BATCH)]
        assert conn.execute("SELECT sum(count) FROM source_stats").fetchone()[0] == 4 * PER_BATCH
        # the audit trail: one retention.run per writer, waiting for the next writer's commit
        assert conn.execute("SELECT count(*) FROM admin_outbox").fetchone()[0] == 2
    with open_store(logs.url, writer="alpha", keys=logs.keys / "alpha") as store:
        store.append_events([event(10_000)])
    with open_store(logs.url, read_only=True) as store:
        from stackwatch.store.base import EventQuery

        runs = store.search_events(EventQuery(text="retention", limit=10))
        audit = [e.event for e in runs if e.event.action == "retention.run"]
        assert sorted(e.attrs["writer"] for e in audit) == ["alpha", "beta"]
        # the minutes of the expired attempts went with them: the sums count what is left (the
        # two writers stored the same records, one host and ref each: a login counts once)
        totals = store.login_attempts().totals(AttemptScope())
        assert sum(row[3] for row in totals) == 2 * PER_BATCH + 1
    _ok(logs.verify())
    # a record left is still provable, offline; an expired one is not
    with open_store(logs.url, read_only=True) as store:
        doc = store.inclusion_proof(first_two + 1)
        assert doc is not None
        assert store.inclusion_proof(first_two) is None
    auditor.audit(doc)


def test_retention_runs_again_only_forward_and_by_size(logs: Logs) -> None:
    now = logs.base + timedelta(minutes=30) + timedelta(days=1)
    once = expire_postgres(logs.url, max_age=timedelta(days=1), now=now, writers=["beta"])
    assert list(once) == ["beta"] and once["beta"].pruned_to == 1 + PER_BATCH
    again = expire_postgres(logs.url, max_age=timedelta(days=1), now=now)
    assert again["beta"].pruned_to == 0 and again["alpha"].pruned_to == 1 + PER_BATCH
    with pytest.raises(StoreError, match="no writer gamma"):
        expire_postgres(logs.url, max_age=timedelta(days=1), writers=["gamma"])
    with logs.sql() as conn:
        total = conn.execute("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class AS c JOIN pg_namespace "
                             "AS n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
                             (logs.schema,)).fetchone()[0]
    sized = expire_postgres(logs.url, max_size=int(total) // 3)
    assert all(r.pruned_to > 1 + PER_BATCH for r in sized.values()), sized
    _ok(logs.verify())


def _drop_oldest(conn: psycopg.Connection, writer: int, blocks: int) -> None:
    last = conn.execute("SELECT max(first_seq + count - 1) FROM blocks WHERE writer = %s AND number <= %s",
                        (writer, blocks)).fetchone()[0]
    conn.execute("DELETE FROM blocks WHERE writer = %s AND number <= %s", (writer, blocks))
    conn.execute("DELETE FROM events WHERE writer = %s AND seq <= %s", (writer, last))


def test_a_dropped_range_cannot_pass_for_retention(logs: Logs) -> None:
    """Blocks deleted without retention's kept frontier, a forged frontier, and a block deleted
    after a real retention run: each fails verify in the attacked writer's log only."""
    with logs.sql() as conn:
        _drop_oldest(conn, 0, 2)  # the oldest blocks of alpha, as if expired
    reports = logs.verify()
    assert reports["alpha"].failed and not reports["beta"].failed  # type: ignore[attr-defined]
    with logs.sql() as conn:
        # the cover-up: claim a retention at the end of block 2, with beta's frontier there
        size = conn.execute("SELECT max(first_seq + count - 1) FROM blocks WHERE writer = 0 AND number <= 3"
                            ).fetchone()[0]
        _drop_oldest(conn, 0, 3)
        conn.execute("UPDATE ledger_state AS a SET pruned_to = %s, pruned_head = b.head, pruned_merkle = "
                     "b.merkle FROM ledger_state AS b WHERE a.writer = 0 AND b.writer = 1", (size,))
    assert logs.verify()["alpha"].first_bad.kind == "pruned-frontier"  # type: ignore[attr-defined]


def test_a_block_deleted_after_retention_is_found(logs: Logs) -> None:
    now = logs.base + timedelta(minutes=30) + timedelta(days=1)
    assert expire_postgres(logs.url, max_age=timedelta(days=1), now=now)["alpha"].pruned_to
    _ok(logs.verify())
    with logs.sql() as conn:
        kept = conn.execute("SELECT min(number) FROM blocks WHERE writer = 0").fetchone()[0]
        _drop_oldest(conn, 0, kept)  # one more block, without moving the kept frontier
    reports = logs.verify()
    assert reports["alpha"].failed and not reports["beta"].failed  # type: ignore[attr-defined]
    assert reports["alpha"].first_bad.block == kept  # type: ignore[attr-defined]


# -- consistency and pinning ---------------------------------------------------------------------


def test_consistency_per_writer(logs: Logs) -> None:
    with logs.sql() as conn:
        sizes = [s for (s,) in conn.execute("SELECT size FROM checkpoints WHERE writer = 1 ORDER BY epoch")]
    doc = consistency(logs.url, "beta", sizes[1], sizes[-1])
    auditor.audit(doc)
    with pytest.raises(StoreError, match="give --writer"):
        consistency(logs.url, None, sizes[1], sizes[-1])
    with pytest.raises(StoreError, match="no checkpoint"):
        consistency(logs.url, "beta", sizes[1], sizes[-1] - 1)
    # signed by beta's key, over beta's log: a proof of alpha's sizes needs alpha's checkpoints
    alpha = consistency(logs.url, "alpha", sizes[1], sizes[-1])
    auditor.audit(alpha)
    assert alpha["checkpoint"] != doc["checkpoint"]


def test_public_key_pinned_per_writer(logs: Logs) -> None:
    right = logs.public
    _ok(logs.verify(public_keys=right))
    wrong = {"alpha": right["alpha"], "beta": right["alpha"]}
    reports = logs.verify(public_keys=wrong)
    assert not reports["alpha"].failed  # type: ignore[attr-defined]
    assert reports["beta"].first_bad.kind == "wrong-key"  # type: ignore[attr-defined]


# -- a login stored by two writers -----------------------------------------------------------------


def test_a_login_stored_by_two_writers_counts_once(pg_database: str) -> None:
    """Both writers consumed the same notifications (the same CADF copies, one host, one ref);
    one of them also read keystone.log, whose copy of the second login it correlated with the
    CADF one; a third login only one writer stored. Three logins, whatever writer committed first."""
    url = f"{pg_database}?schema=dup_{secrets.token_hex(4)}"
    t0 = datetime(2026, 5, 1, 8, 0, 30, tzinfo=UTC)  # the logins at :30, :40, :50 of one minute
    with open_store(url, writer="w1") as one, open_store(url, writer="w2") as two:
        one.append_events([_login(0, "cadf", t0, name="alice"), _login(20, "cadf", t0, name="bob")])
        one.flush()
        two.append_events([_login(0, "cadf", t0, name="alice"), _login(20, "oslo_log", t0),
                           _login(20, "cadf", t0, name="bob"), _login(40, "cadf", t0, name="carol")])
    with open_store(url, read_only=True) as store:
        attempts = store.login_attempts()
        whole = {row[1]: row[3] for row in attempts.totals(AttemptScope())}
        assert whole == {"alice": 1, "bob": 1, "carol": 1}
        minute = int(t0.replace(second=0).timestamp() * 1e6)
        partial = {row[1]: row[3] for row in attempts.totals(AttemptScope(since=minute + 1))}
        assert partial == whole  # the partial minute reads the rows: they agree with the sums
        assert len(attempts.timeline(AttemptScope(), ip=None, account="bob", limit=10)) == 1


def test_retention_beside_a_live_writer(logs: Logs) -> None:
    """A writer keeps appending and checkpointing (its source statistics, attempts and ledger
    state are the rows retention updates too) while retention runs again and again: no deadlock,
    no error, every log verifies, and the statistics count exactly the records left."""
    import threading
    import time

    errors: list[BaseException] = []
    stop = threading.Event()

    def write() -> None:
        try:
            with open_store(logs.url, writer="alpha", keys=logs.keys / "alpha", batch_size=15) as store:
                n = 20_000
                while not stop.is_set():
                    store.append_events([event(n + i) for i in range(30)])
                    store.checkpoint()
                    n += 30
        except BaseException as exc:  # reported below
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        expired, runs, deadline = 0, 0, time.monotonic() + 120
        while (expired < 4 or runs < 6) and time.monotonic() < deadline:  # the writer checkpoints between
            expired += sum(r.pruned_to > 0 for r in expire_postgres(logs.url, max_size=1000).values())
            runs += 1
            time.sleep(0.05)
    finally:
        stop.set()
        writer.join(timeout=60)
    assert not errors, errors
    assert expired >= 4, (expired, runs)  # beta's log once, alpha's as its checkpoints came
    _ok(logs.verify())
    with logs.sql() as conn:
        stats = conn.execute("SELECT writer, sum(count)::int FROM source_stats GROUP BY 1").fetchall()
        rows = conn.execute("SELECT writer, count(*)::int FROM events GROUP BY 1 ORDER BY 1").fetchall()
    assert {w: n for w, n in stats if n} == dict(rows)  # a log expired whole keeps a count of 0
