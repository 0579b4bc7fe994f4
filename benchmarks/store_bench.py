"""Store benchmark: ``python -m benchmarks.store_bench --records 200000``.

Prints a markdown table, each figure as records/s and as a ratio to a plain SQLite insert of
the same rows measured in the same run: the plain baseline (one table, no index, executemany
in 20k-row transactions), the store's row path without the ledger, the store's append path
with chain + Merkle + node cache + checkpoints (signed, sealed) + batched commits, and
``store verify``. One process, one core for the store (no background indexing).

With a PostgreSQL server (``--pg URL``, default ``$STACKWATCH_BENCH_PG`` or the local
127.0.0.1:5432 as postgres; ``--pg none`` skips it) the shared store's append (one writer:
blocks, narrow rows by COPY, the tsvector built in Python, its GIN index, signed checkpoints)
and verify are measured in the same run, in a database made for it and dropped after, with
the cost per event against format 2 on SQLite.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from stackwatch.core.event import Event, Initiator
from stackwatch.store.keys import init_store
from stackwatch.store.rows import EVENT_COLUMNS, RowBuilder
from stackwatch.store.sqlite import SQLiteStore
from stackwatch.store.sqlite_blocks import BlockStore
from stackwatch.store.sqlite_schema import migrate
from stackwatch.store.verify import verify_store

BATCH = 20_000


def make_events(n: int, keystone: bool = False) -> list[Event]:
    """sshd failures; with ``keystone``, keystone CADF logins instead (every one then goes
    through the store's login-attempt correlator: its worst case)."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        ip = f"10.0.{i % 200}.{i % 250}"
        raw = (f"Jan  1 00:00:00 ctl-{i % 7} sshd[{1000 + i}]: Failed password for root from {ip} "
               f"port {i % 65535} ssh2")
        out.append(
            Event(
                time=t0 + timedelta(microseconds=i),
                received=t0 + timedelta(microseconds=i),
                host=f"ctl-{i % 7}",
                service="keystone" if keystone else "sshd",
                severity="warning",
                kind="cadf" if keystone else "syslog",
                message=raw.split(": ", 1)[1],
                action="authenticate",
                outcome="failure",
                initiator=Initiator(name="root", source_ip=ip),
                attrs={"pid": 1000 + i},
                raw=raw,
                origin="file:/var/log/auth.log",
                ref=f"auth.log:{i}",
            )
        )
    return out


def rows_for(events: list[Event]) -> list[tuple]:  # type: ignore[type-arg]
    sources: dict[tuple[str, str], int] = {}
    return RowBuilder(sources, lambda h, s: sources.setdefault((h, s), len(sources) + 1)).rows(events, 1)


def plain_insert(path: Path, rows: list[tuple]) -> float:  # type: ignore[type-arg]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"CREATE TABLE events ({', '.join(EVENT_COLUMNS)})")
    sql = f"INSERT INTO events VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
    start = time.perf_counter()
    for i in range(0, len(rows), BATCH):
        conn.execute("BEGIN")
        conn.executemany(sql, rows[i : i + BATCH])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def store_rows_without_ledger(path: Path, events: list[Event]) -> float:
    """The store's own row path (row building, schema with its indexes) without chain/Merkle."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    migrate(conn)
    sql = f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
    start = time.perf_counter()
    sources: dict[tuple[str, str], int] = {}
    builder = RowBuilder(sources, lambda h, s: sources.setdefault((h, s), len(sources) + 1))
    for i in range(0, len(events), BATCH):
        rows = builder.rows(events[i : i + BATCH], i + 1)
        conn.execute("BEGIN")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def store_append(data: Path, events: list[Event], record_format: int = 1) -> float:
    init_store(data, background_index=False, format=record_format)
    store = (SQLiteStore if record_format == 1 else BlockStore)(
        data,
        background_index=False,
        index_every=10**12,
        index_interval=1e9,
        checkpoint_every=100_000,
        batch_size=BATCH,
    )
    start = time.perf_counter()
    for i in range(0, len(events), 5000):
        store.append_events(events[i : i + 5000])
    store.flush()
    elapsed = time.perf_counter() - start
    store.index_pending = lambda: 0  # type: ignore[method-assign]  # no indexing at close: not measured
    store.close()
    return elapsed


def pg_append(server: str, keys: Path, events: list[Event]) -> tuple[float, float]:
    """(append seconds, verify seconds) of the PostgreSQL store in a fresh database."""
    import psycopg
    from psycopg import sql

    from stackwatch.store.postgres import open_store
    from stackwatch.store.postgres.keys import init_writer
    from stackwatch.store.postgres.verify import verify_postgres

    name = f"sw_bench_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{server.rpartition('/')[0]}/{name}"
    try:
        init_writer(url, writer="bench", keys=keys)
        store = open_store(url, writer="bench", keys=keys, checkpoint_every=100_000, batch_size=BATCH)
        start = time.perf_counter()
        for i in range(0, len(events), 5000):
            store.append_events(events[i : i + 5000])
        store.flush()
        elapsed = time.perf_counter() - start
        store.close()
        reports = verify_postgres(url)
        if any(r.failed for r in reports.values()):
            raise SystemExit(f"verify failed (postgresql): {reports}")
        return elapsed, sum(r.seconds for r in reports.values())
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--keystone", action="store_true",
                        help="keystone CADF logins instead of sshd lines "
                             "(the login-attempt correlator's worst case)")
    parser.add_argument("--pg", default=os.environ.get("STACKWATCH_BENCH_PG",
                                                       "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="PostgreSQL server for the shared store's rows ('none': skip them)")
    args = parser.parse_args()
    n = args.records
    events = make_events(n, args.keystone)
    rows = rows_for(events)
    with tempfile.TemporaryDirectory() as tmp:
        base = plain_insert(Path(tmp) / "plain.db", rows)
        no_ledger = store_rows_without_ledger(Path(tmp) / "rows.db", events)
        append = store_append(Path(tmp) / "store", events)
        report = verify_store(Path(tmp) / "store")
        if report.failed:
            raise SystemExit(f"verify failed: {report.first_bad}")
        verify = report.seconds
        blocks = store_append(Path(tmp) / "blocks", events, record_format=2)
        report = verify_store(Path(tmp) / "blocks")
        if report.failed:
            raise SystemExit(f"verify failed (format 2): {report.first_bad}")
        verify_blocks = report.seconds
        pg = pg_append(args.pg, Path(tmp) / "pg-keys", events) if args.pg != "none" else None
    base_rate = n / base
    print(f"store benchmark, {n} records (ratio = rate / plain SQLite insert rate)\n")
    print("| path | records/s | ratio |")
    print("|---|---:|---:|")
    for name, seconds in (
        ("plain SQLite insert (baseline)", base),
        ("store append without chain", no_ledger),
        ("store append with chain + Merkle + checkpoints", append),
        ("store verify (chain + Merkle roots + signatures)", verify),
        ("format 2 append (blocks: records compressed, chained per block, narrow rows)", blocks),
        ("format 2 verify (blocks, digests, chain, roots, index rows; one process)", verify_blocks),
    ):
        rate = n / seconds
        print(f"| {name} | {rate:,.0f} | {rate / base_rate:.2f} |")
    if pg is not None:
        for name, seconds in (
            ("PostgreSQL append (format 2 blocks, COPY narrow rows + tsvector, one writer)", pg[0]),
            ("PostgreSQL verify (one writer's log)", pg[1]),
        ):
            rate = n / seconds
            print(f"| {name} | {rate:,.0f} | {rate / base_rate:.2f} |")
        print(f"\ncost per event: format 2 on SQLite {blocks / n * 1e6:.1f} us, on PostgreSQL "
              f"{pg[0] / n * 1e6:.1f} us ({pg[0] / blocks:.2f}x)")


if __name__ == "__main__":
    main()
