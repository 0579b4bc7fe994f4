"""``stackwatch store verify`` on PostgreSQL: every writer's log, checked on its own.

Per writer: each checkpoint's Ed25519 signature (against the writer's ``signers``), that it
names this log, the seals (given the writer's k0), then the blocks, chain, Merkle roots,
index rows and ledger state through ``verify.check_block_log`` (the embedded store's check,
on ``PGLedgerIO``). Across writers: every index row belongs to a registered writer and its id
is ``writer << 40 | seq`` (an id moved to another record would make searches show another
event). Reads only, in one REPEATABLE READ transaction: writers may append meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import psycopg

from stackwatch.store.postgres.ids import WRITER_SHIFT
from stackwatch.store.postgres.ledger_io import PGLedgerIO
from stackwatch.store.postgres.schema import exists, use_schema
from stackwatch.store.postgres.store import DEFAULT_SCHEMA, split_url
from stackwatch.store.seal import Checkpoint, SealedCheckpoint, key_id, verify_checkpoint_signature
from stackwatch.store.sealed_epochs import epoch_evidence
from stackwatch.store.verify import VerifyReport, _check_seals, _check_witness, _signer_for, check_block_log

_INDEX_ROWS: Final = (
    "SELECT e.seq, e.time, s.host, s.service, e.severity, e.kind, e.action, e.outcome, e.init_name, "
    "e.init_id, e.init_project, e.init_ip, e.target_id, e.target_name, e.request_id "
    "FROM events AS e LEFT JOIN sources AS s ON s.id = e.source WHERE e.writer = %s ORDER BY e.seq")


def verify_postgres(url: str, *, schema: str | None = None,
                    initial_keys: Mapping[str, list[bytes]] | None = None,
                    key_dirs: Mapping[str, Path] | None = None,
                    witnesses: Mapping[str, list[Path]] | None = None,
                    public_keys: Mapping[str, bytes] | None = None) -> dict[str, VerifyReport]:
    """A report per writer (by name); ``initial_keys``: writer name -> its k0 (one per signer
    segment); ``key_dirs``: writer name -> its keys folder, the evidence of how many epochs its
    ratchet sealed (``sealed_epochs``: without it, checkpoints deleted at the tail of a log with
    their blocks cannot be told from a log that ended there); ``witnesses``: writer name -> its
    witness files; ``public_keys``: writer name -> its pinned Ed25519 public key (raw 32 bytes:
    the database's ``signers`` rows are then not trusted alone: someone who rewrote them and
    re-signed every checkpoint with a key of their own is caught). A problem that is no one
    writer's goes under the name ``*``."""
    libpq_url, own = split_url(url)
    schema = schema or own.get("schema") or DEFAULT_SCHEMA
    reports: dict[str, VerifyReport] = {}
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        if not exists(conn, schema):
            missing = VerifyReport()
            missing.add("FAIL", "missing", None, f"no stackwatch store in schema {schema!r}")
            return {"*": missing}
        use_schema(conn, schema)
        conn.execute(b"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            store_id = conn.execute(b"SELECT value FROM meta WHERE name = 'store_id'").fetchone()
            writers = conn.execute(b"SELECT id, name FROM writers ORDER BY id").fetchall()
            for number, name in writers:
                started = time.perf_counter()
                report = VerifyReport()
                keys = list((initial_keys or {}).get(name, []))
                _verify_writer(conn, int(number), f"{store_id[0] if store_id else ''}/{name}", report, keys,
                               (key_dirs or {}).get(name), (witnesses or {}).get(name, []),
                               (public_keys or {}).get(name))
                report.seconds = time.perf_counter() - started
                reports[str(name)] = report
            common = _check_ids(conn)
            if common.problems:
                reports["*"] = common
        finally:
            conn.execute(b"ROLLBACK")
    return reports


def _check_ids(conn: psycopg.Connection) -> VerifyReport:
    report = VerifyReport()
    row = conn.execute(b"SELECT e.id, e.writer, e.seq FROM events AS e WHERE NOT EXISTS "
                       b"(SELECT 1 FROM writers AS w WHERE w.id = e.writer) LIMIT 1").fetchone()
    if row is not None:
        report.add("FAIL", "index-row", None, f"event {row[0]} names writer {row[1]}, which does not exist")
    row = conn.execute(b"SELECT id, writer, seq FROM events WHERE id <> (writer::bigint << %s) | seq LIMIT 1",
                       (WRITER_SHIFT,)).fetchone()
    if row is not None:
        report.add("FAIL", "index-row", None, f"event id {row[0]} is not writer {row[1]}'s record {row[2]}: "
                   "ids were moved (searches would show another event)")
    return report


def _verify_writer(conn: psycopg.Connection, writer: int, log_id: str, report: VerifyReport,
                   initial_keys: list[bytes], key_dir: Path | None, witnesses: list[Path],
                   pinned: bytes | None = None) -> None:
    io = PGLedgerIO(conn, writer)
    signers = io.signers()
    if pinned is not None and (not signers or signers[0][1] != pinned):
        report.add("FAIL", "wrong-key", None, "the writer's first signer is not the pinned public key "
                   f"({key_id(pinned)})" + ("" if signers else ": the writer has no signer"))
    report.signing_keys = [(e, key_id(k)) for e, k in signers]
    rows = io.checkpoints()
    roots: dict[int, bytes] = {}
    prev_size = 0
    for row in rows:
        try:
            cp = Checkpoint.from_bytes(row.body)
        except ValueError:
            continue  # reported by the seal check as malformed
        if cp.epoch != row.epoch or cp.size != row.size:
            report.add("FAIL", "checkpoint-row", prev_size + 1, f"checkpoint row {row.epoch} does not match "
                       "its signed body")
        if cp.log_id != log_id:
            report.add("FAIL", "checkpoint-log", prev_size + 1, f"checkpoint epoch {cp.epoch} is of log "
                       f"{cp.log_id!r}, not {log_id!r}: it was copied from another log")
        key = _signer_for(signers, cp.epoch, None)
        if key is None:
            report.add("FAIL", "no-key", None, "checkpoints exist but the writer has no signer row")
            break
        if not verify_checkpoint_signature(key, row.body, row.signature):
            report.add("FAIL", "bad-signature", prev_size + 1,
                       f"checkpoint epoch {cp.epoch} (size {cp.size}): "
                       "Ed25519 signature does not verify: the checkpoint was replaced or altered")
        else:
            roots.setdefault(cp.size, cp.root)
        prev_size = max(prev_size, cp.size)
    report.epochs = len(rows)
    state = conn.execute(b"SELECT size, merkle FROM ledger_state WHERE writer = %s", (writer,)).fetchone()
    size = int(state[0]) if state else 0
    if state is None:
        report.add("FAIL", "ledger-state", None, "the writer's ledger state row is missing")
    items = [SealedCheckpoint(r.body, r.seal, r.signature) for r in rows]
    if signers and not rows and size:
        report.add("FAIL", "no-checkpoints", 1, "the writer has keys but no checkpoint: every checkpoint "
                   "was deleted")
    if not signers and not rows:
        report.add("WARN", "unsealed-tail", 1 if size else None, "the writer has no keys (option keys=DIR, "
                   "stackwatch store init): its log is chained but nothing is signed or sealed")

    exact: int | None = None
    if key_dir is not None:
        evidence = epoch_evidence(key_dir, [e for e, _ in signers] or [0], initial_keys, standby=False,
                                  initialised=True)
        for level, kind, message in evidence.problems:
            report.add(level, kind, prev_size + 1, message)
        exact = evidence.exact
        sealed = max((r.epoch for r in rows), default=-1) + 1
        if evidence.at_least is not None and evidence.at_least > sealed:
            report.add("FAIL", "gap", prev_size + 1, f"{evidence.source} proves the ratchet reached epoch "
                       f"{evidence.at_least}, but the checkpoints end at epoch {sealed - 1}: the sealed "
                       "epochs after it were deleted")
    elif signers:
        report.add("NOTE", "epochs-unchecked", None, "how many epochs were sealed is not checked: give the "
                   "writer's keys folder (--keys WRITER=DIR on its host)")

    def signer_of(epoch: int) -> bytes | None:
        return _signer_for(signers, epoch, None)

    _check_seals(report, items, signers, initial_keys, max(size, prev_size), exact, signer_of)
    check_block_log(io, _index_rows(conn, writer), report, roots, max(size, prev_size),
                    (size, bytes(state[1]) if state and state[1] else None) if state else None)
    bodies = {r.epoch: r.body for r in rows}
    for path in witnesses:
        _check_witness(report, path, bodies, signers, None)


def _index_rows(conn: psycopg.Connection, writer: int) -> Iterator[tuple[Any, ...]]:
    with conn.cursor(name=f"sw_verify_{writer}") as cur:  # server-side: a log of any size streams
        cur.itersize = 10_000
        cur.execute(_INDEX_ROWS.encode(), (writer,))
        yield from cur
