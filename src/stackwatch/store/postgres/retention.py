"""Retention on the shared store: expire whole blocks of each writer's log, oldest first.

Per writer, exactly as the embedded store's record format 2 (``store/retention.py``): its
records up to the newest of its checkpoints at or below the policy's cutoff expire, blocks and
index rows together, and what keeps the rest verifiable is kept in the same transaction (the
chain hash of the last expired block, the block tree's frontier there, whose root must be the
signed checkpoint's, the leaf hashes of the last partial cached group: ``plan_block_expiry``).
Checkpoints, signers and cached Merkle nodes stay: the expired records stay attested by them.

No writer's lock is needed: a writer never reads or locks its old blocks, and the rows both
touch are locked in the writer's own order (source statistics, attempt minutes, then the
ledger state), so retention runs beside live analyzers. Runs are serialised by an advisory
lock. Each writer's expiry is an admin event (``retention.run``) queued in ``admin_outbox`` in
the same transaction: the next writer to commit puts it in its log, so the audit trail is
chained, checkpointed and sealed like any record.

``--max-size``: the store's share of the database (every table of its schema) above the limit
is taken from the oldest records of all writers (by ``received``), then expired per writer.
No checkpoint is made here (the writers' keys are on their hosts): records expire up to a
checkpoint each writer already made (writers make one every minute and at a clean close).
What a writer's login correlator holds does not expire
(``retention_margin``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import msgspec
import orjson
import psycopg

from stackwatch.core.clock import SystemClock
from stackwatch.core.errors import StoreError
from stackwatch.store.admin import admin_event
from stackwatch.store.postgres.ids import WRITER_SHIFT
from stackwatch.store.postgres.ledger_io import PGLedgerIO
from stackwatch.store.postgres.schema import exists, use_schema
from stackwatch.store.postgres.store import DEFAULT_SCHEMA, split_url
from stackwatch.store.retention import RetentionResult, plan_block_expiry, policy_text
from stackwatch.store.retention_margin import hold_back
from stackwatch.store.rows import to_micros

_RETENTION_LOCK: Final = 0x5357_5254  # advisory lock serialising retention runs ('SWRT')
_ATTEMPT_COLUMNS: Final = "ip, account, project, outcome"


def expire_postgres(url: str, *, max_age: timedelta | None = None, max_size: int | None = None,
                    actor: str = "stackwatch", writers: Sequence[str] | None = None,
                    now: datetime | None = None) -> dict[str, RetentionResult]:
    """Apply a retention policy to every writer's log (or those named): writer name -> result
    (``pruned_to`` 0 when nothing expired; ``admin_seq`` None: the audit event waits in the
    outbox for the next writer's commit)."""
    if (max_age is None) == (max_size is None):
        raise StoreError("give exactly one of max_age and max_size")
    libpq_url, own = split_url(url)
    schema = own.get("schema") or DEFAULT_SCHEMA
    when = now or SystemClock().now()
    results: dict[str, RetentionResult] = {}
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        if not exists(conn, schema):
            raise StoreError(f"no stackwatch store in schema {schema!r} of this database")
        use_schema(conn, schema)
        conn.execute(b"SELECT pg_advisory_lock(%s)", (_RETENTION_LOCK,))
        try:
            known = {str(n): int(i) for i, n in conn.execute(b"SELECT id, name FROM writers ORDER BY id")}
            unknown = sorted(set(writers or ()) - set(known))
            if unknown:
                raise StoreError(f"this store has no writer {', '.join(unknown)}")
            limit = (to_micros(when - max_age) if max_age is not None
                     else _size_limit(conn, schema, max_size or 0))
            for name, number in known.items():
                if writers and name not in writers:
                    continue
                results[name] = _expire_writer(conn, number, name, limit, actor, when,
                                               policy_text(max_age, max_size))
        finally:
            conn.execute(b"SELECT pg_advisory_unlock(%s)", (_RETENTION_LOCK,))
    return results


def _size_limit(conn: psycopg.Connection, schema: str, max_size: int) -> int | None:
    """The ``received`` time of the oldest record to keep so the store is about ``max_size``
    bytes (records are dropped in proportion, oldest first across writers); None: keep all."""
    row = conn.execute(
        b"SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class AS c "
        b"JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
        (schema,)).fetchone()
    total = int(row[0]) if row else 0
    if total <= max_size:
        return None
    held_row = conn.execute(b"SELECT count(*) FROM events").fetchone()
    held = int(held_row[0]) if held_row else 0
    drop = held - int(held * max_size / total)
    if drop <= 0:
        return None
    found = conn.execute(b"SELECT received FROM events ORDER BY received LIMIT 1 OFFSET %s",
                         (min(drop, held - 1),)).fetchone()
    return int(found[0]) + (1 if drop >= held else 0) if found else None


def _expire_writer(conn: psycopg.Connection, writer: int, name: str, limit: int | None, actor: str,
                   when: datetime, policy: str) -> RetentionResult:
    io = PGLedgerIO(conn, writer)
    pruned = io.pruned()
    old = pruned[0] if pruned else 0
    state = conn.execute(b"SELECT size FROM ledger_state WHERE writer = %s", (writer,)).fetchone()
    size = int(state[0]) if state else 0
    if limit is None:
        cutoff = old
    else:
        row = conn.execute(b"SELECT min(seq) FROM events WHERE writer = %s AND received >= %s",
                           (writer, limit)).fetchone()
        cutoff = size if row is None or row[0] is None else int(row[0]) - 1
    folded = conn.execute(b"SELECT upto, pending FROM attempt_state WHERE writer = %s", (writer,)).fetchone()

    def checkpoint_at(seq: int) -> int:
        row = conn.execute(b"SELECT max(size) FROM checkpoints WHERE writer = %s AND size <= %s",
                           (writer, seq)).fetchone()
        return int(row[0]) if row and row[0] else 0

    target = hold_back(cutoff, old=old, held=orjson.loads(folded[1]) if folded else [],
                       upto=int(folded[0]) if folded else None, checkpoint_at=checkpoint_at)
    if target <= old:
        return RetentionResult(old + 1, 0, cutoff, None)
    plan = plan_block_expiry(io, target)
    details: dict[str, Any] = {"writer": name, "pruned_from": old + 1, "pruned_to": target,
                               "blocks": plan.blocks, "policy": policy}
    low, high = writer << WRITER_SHIFT, writer << WRITER_SHIFT | target
    with conn.transaction():
        # the writer's lock order: its source statistics, its attempt minutes, its ledger state
        gone = conn.execute(b"SELECT source, count(*) FROM events WHERE writer = %s AND seq <= %s "
                            b"GROUP BY source ORDER BY source", (writer, target)).fetchall()
        with conn.cursor() as cur:
            cur.executemany(b"UPDATE source_stats SET count = count - %s WHERE writer = %s AND source = %s",
                            [(n, writer, source) for source, n in gone])
        _forget_attempts(conn, writer, low, high)
        io.expire(target, plan.blocks, plan.head, plan.frontier, plan.leaves, to_micros(when))
        conn.execute(b"DELETE FROM events WHERE writer = %s AND seq <= %s", (writer, target))
        conn.execute(b"DELETE FROM commits WHERE writer = %s AND last_seq <= %s", (writer, target))
        event = admin_event(actor, "retention.run", "events", details, now=when)
        conn.execute(b"INSERT INTO admin_outbox (event) VALUES (%s)", (msgspec.json.encode(event),))
    return RetentionResult(old + 1, target, cutoff, None)


def _forget_attempts(conn: psycopg.Connection, writer: int, low: int, high: int) -> None:
    """Drop the writer's attempts whose primary copy expires and recount its minutes they were in
    (``sqlite_attempts.forget``); the refs they claimed go too."""
    minutes = [int(m) for (m,) in conn.execute(
        b"SELECT DISTINCT time / 60000000 FROM login_attempts WHERE id BETWEEN %s AND %s ORDER BY 1",
        (low, high))]
    conn.execute(b"DELETE FROM attempt_refs WHERE id BETWEEN %s AND %s", (low, high))
    if not minutes:
        return
    conn.execute(b"DELETE FROM login_attempts WHERE id BETWEEN %s AND %s", (low, high))
    conn.execute(b"DELETE FROM attempt_minutes WHERE writer = %s AND minute = ANY(%s)", (writer, minutes))
    conn.execute(
        f"INSERT INTO attempt_minutes SELECT writer, time / 60000000 AS minute, {_ATTEMPT_COLUMNS}, "  # noqa: S608
        "count(*), count(*) FILTER (WHERE hash <> ''), CASE WHEN count(DISTINCT nullif(hash, '')) > 1 "
        "THEN '*' ELSE coalesce(max(nullif(hash, '')), '') END, min(time), max(time) FROM login_attempts "
        f"WHERE writer = %s AND time / 60000000 = ANY(%s) GROUP BY writer, minute, {_ATTEMPT_COLUMNS} "
        f"ORDER BY minute, {_ATTEMPT_COLUMNS}".encode(), (writer, minutes))
