"""Several processes writing one PostgreSQL store at once: a log per writer, one row per alert."""

from __future__ import annotations

import multiprocessing
import time
from datetime import UTC, datetime, timedelta

from stackwatch.core.alert import Alert, Evidence
from stackwatch.store.base import AlertQuery
from stackwatch.store.postgres import open_store
from stackwatch.store.postgres.verify import verify_postgres
from stackwatch.testing import make_event

T0 = datetime(2026, 4, 1, tzinfo=UTC)
WRITERS = 3
BATCHES = 20
PER_BATCH = 250
KEYS = 40


def _alert(key: int, fired: int) -> Alert:
    return Alert(rule="3f8e7c1a-0000-4000-8000-00000000000a", key=f"10.0.0.{key}", title="Brute force",
                 severity="high", category="auth.bruteforce", count=fired,
                 time=T0, last_seen=T0 + timedelta(seconds=fired),
                 evidence=[Evidence(ref=f"auth.log:{key}:{fired}", raw="x", time=T0)])


def _write(url: str, name: str) -> None:
    with open_store(url, writer=name, batch_size=500) as store:
        for batch in range(BATCHES):
            store.append_events([make_event(time=T0 + timedelta(milliseconds=batch * PER_BATCH + i),
                                            host=f"ctl-{i % 3}", message=f"{name} line {batch} {i}")
                                 for i in range(PER_BATCH)])
            # every writer raises the same alerts, in its own order
            keys = list(range(KEYS)) if name.endswith("0") else list(reversed(range(KEYS)))
            store.upsert_alerts([_alert(k, batch + 1) for k in keys])
            store.flush()


def test_writers_append_concurrently_and_share_alerts(pg_database: str) -> None:
    url = f"{pg_database}?schema=concurrent"
    open_store(url).close()  # the tables, before the race
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write, args=(url, f"w{n}")) for n in range(WRITERS)]
    workers[0].start()
    # the others open the store while the first is committing (a store opening beside busy
    # writers must not take locks that deadlock with theirs)
    with open_store(url, read_only=True) as watcher:
        deadline = time.monotonic() + 120
        while watcher.counts().events == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    for worker in workers[1:]:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
        assert worker.exitcode == 0
    with open_store(url, read_only=True) as store:
        assert store.counts().events == WRITERS * BATCHES * PER_BATCH
        alerts = store.alerts(AlertQuery(limit=1000))
        assert len(alerts) == KEYS  # the UNIQUE (rule, key): never two rows of one alert
        assert {a.alert.count for a in alerts} == {BATCHES}
        assert all(len(a.alert.evidence) == BATCHES for a in alerts)
        assert sorted(name for _, name in store.writers()) == ["w0", "w1", "w2"]
    reports = verify_postgres(url)
    for name, report in reports.items():
        assert not report.failed, (name, [str(p) for p in report.problems])
        assert report.records == BATCHES * PER_BATCH


def test_opening_a_store_takes_no_lock_a_committing_writer_holds(pg_database: str) -> None:
    import psycopg

    url = f"{pg_database}?schema=busy"
    open_store(url).close()
    with psycopg.connect(pg_database) as busy:  # a writer mid-transaction on the events table
        busy.execute("LOCK TABLE busy.events IN ROW EXCLUSIVE MODE")
        # libpq's options pass through: a lock wait fails after 2 s instead of hanging
        with open_store(f"{url}&options=-c%20lock_timeout%3D2000", writer="late") as late:
            late.append_events([make_event(message="late")])
            assert late.writer_number is not None
