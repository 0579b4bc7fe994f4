"""``stackwatch store attempts --data postgresql://...``: the keystone login attempts each writer
stored at ingest, checked against a recount of its stored events (``sqlite_attempts.check``'s
counterpart on the shared store).

Per writer: its login events are read back from its blocks in seq order and correlated afresh
(``attempt_fold``: the same correlator, everything released at the end, as a clean close
does). Every recounted attempt must be stored with the same fields, unless it is a login some
other attempt already counted (one of its copies is claimed in ``attempt_refs`` by another
attempt, which is stored: ``attempts.py``, "a login stored by several writers counts once");
nothing else may be stored for the writer, and its ``attempt_minutes`` must be the sums of what
it stored. A writer that is writing now (its lock is held) or that holds login events not yet
released (it stopped without a clean close; its next run releases them) cannot agree with a
recount yet: it is named, not checked. Records expired by retention are not recounted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import orjson
import psycopg

from stackwatch.core.event import Event
from stackwatch.store.attempt_fold import FOLDED_ACTIONS, AttemptCorrelator, AttemptRow, fold_minutes
from stackwatch.store.postgres.attempts import CHUNK, _clean, _local
from stackwatch.store.postgres.ids import event_id
from stackwatch.store.scope import TENANT_HOST_PREFIX

ReadEvents = Callable[[int, list[int]], list[tuple[int, Event]]]
_COLUMNS: Final = "time, ip, account, project, outcome, hash, host, kind, ref, agent"


@dataclass
class AttemptCheck:
    """Per writer name: what differs from the recount (``problems``), or why it was not
    checked (``skipped``); ``checked``: the attempts recounted per writer checked."""

    problems: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    checked: dict[str, int] = field(default_factory=dict)


def check_attempts(conn: psycopg.Connection, schema: str, read: ReadEvents) -> AttemptCheck:
    """``conn``: the store's connection (search_path on ``schema``, autocommit, no transaction)."""
    result = AttemptCheck()
    writers = [(int(i), str(n)) for i, n in conn.execute(b"SELECT id, name FROM writers ORDER BY id")]
    lock_key = f"stackwatch-writer:{schema}"
    for number, name in writers:
        got = conn.execute(b"SELECT pg_try_advisory_lock(hashtext(%s), %s)", (lock_key, number)).fetchone()
        if not got or not got[0]:
            result.skipped[name] = "it is writing now (its lock is held): check again once it stopped"
            continue
        try:  # holding the writer's lock: no process appends to its log meanwhile
            state = conn.execute(b"SELECT pending FROM attempt_state WHERE writer = %s", (number,)).fetchone()
            held = orjson.loads(state[0]) if state else []
            if held:
                result.skipped[name] = (f"it holds {len(held)} login events not yet released (it stopped "
                                        "without a clean close; its next run releases them)")
                continue
            with conn.transaction():
                conn.execute(b"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                problems, count = _check_writer(conn, number, read)
            result.checked[name] = count
            if problems:
                result.problems[name] = problems
        finally:
            conn.execute(b"SELECT pg_advisory_unlock(hashtext(%s), %s)", (lock_key, number))
    return result


def recount(conn: psycopg.Connection, writer: int, read: ReadEvents) -> AttemptCorrelator:
    """The writer's login events correlated afresh, every attempt released."""
    folder = AttemptCorrelator()
    upto = 0
    while True:
        seqs = [int(s) for (s,) in conn.execute(
            b"SELECT e.seq FROM events AS e JOIN sources AS s ON s.id = e.source "
            b"WHERE e.writer = %s AND e.seq > %s AND e.action = ANY(%s) AND s.service = 'keystone' "
            b"AND left(s.host, %s) <> %s ORDER BY e.seq LIMIT %s",
            (writer, upto, list(FOLDED_ACTIONS), len(TENANT_HOST_PREFIX), TENANT_HOST_PREFIX, CHUNK))]
        if not seqs:
            break
        folder.push_stored(_local(read(writer, seqs)))
        upto = seqs[-1]
    folder.finish()
    return folder


def _check_writer(conn: psycopg.Connection, writer: int, read: ReadEvents) -> tuple[list[str], int]:
    folder = recount(conn, writer, read)
    fresh = folder.released()
    stored = {int(row[0]): tuple(row[1:]) for row in conn.execute(
        f"SELECT id, {_COLUMNS} FROM login_attempts WHERE writer = %s".encode(), (writer,))}  # noqa: S608
    missing = differ = 0
    kept: list[AttemptRow] = []
    for row in fresh:
        attempt = event_id(writer, row[0])
        found = stored.pop(attempt, None)
        clean = tuple(_clean(v) for v in row[1:])
        if found is not None:
            differ += found != clean
            kept.append((row[0], *clean))
            continue
        if not _claimed_elsewhere(conn, folder.copies(row), attempt):
            missing += 1  # not stored, and no other attempt counted this login
    problems = []
    if missing or differ or stored:
        problems.append(f"login_attempts: {len(fresh)} recounted, {missing} of them missing, {differ} "
                        f"stored otherwise, {len(stored)} stored that the recount does not make")
    minutes = sorted(tuple(r) for r in conn.execute(
        b"SELECT minute, ip, account, project, outcome, n, hashed, hash, first, last FROM attempt_minutes "
        b"WHERE writer = %s", (writer,)))
    if minutes != sorted(fold_minutes(kept)):
        problems.append(f"attempt_minutes: {len(minutes)} rows stored, {len(fold_minutes(kept))} from the "
                        "recounted attempts")
    return problems, len(fresh)


def _claimed_elsewhere(conn: psycopg.Connection, copies: tuple[tuple[str, str], ...], attempt: int) -> bool:
    """A copy of the login is claimed by another attempt that is stored (counted once there)."""
    for host, ref in copies:
        row = conn.execute(b"SELECT r.id FROM attempt_refs AS r JOIN login_attempts AS a ON a.id = r.id "
                           b"WHERE r.host = %s AND r.ref = %s", (_clean(host), _clean(ref))).fetchone()
        if row is not None and int(row[0]) != attempt:
            return True
    return False


def describe(result: AttemptCheck) -> list[str]:
    """Lines for the command line."""
    lines = [f"writer {name}: {n} login attempts match a recount of its events"
             for name, n in result.checked.items() if name not in result.problems]
    lines += [f"writer {name}: {'; '.join(p)}" for name, p in result.problems.items()]
    lines += [f"writer {name}: not checked: {why}" for name, why in result.skipped.items()]
    return lines
