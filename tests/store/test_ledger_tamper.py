"""Tampering with a real store file, as an intruder would: every change is detected by
``verify_store``, with the right first bad record; a clean store always verifies."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import tempfile
from hashlib import sha256
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackwatch.store.chain import GENESIS, chain_hash
from stackwatch.store.merkle import mth
from stackwatch.store.record_ledger import iter_ledger, key_paths
from stackwatch.store.seal import Checkpoint, generate_signing_key, load_private_key, read_sealing_key, seal
from stackwatch.store.verify import verify_store
from tests.store.conftest import LedgerStore, build_ledger_store, copy_store

SIZE = 301  # the init admin event + 300 records
COLUMNS = ["raw", "message", "attrs", "origin", "ref", "time", "received", "severity", "chain", "init_ip"]


def _db(store: LedgerStore) -> sqlite3.Connection:
    return sqlite3.connect(store.data / "stackwatch.db", isolation_level=None)


def _verify(store: LedgerStore, **kw: object):  # type: ignore[no-untyped-def]
    return verify_store(store.data, initial_keys=[store.k0], **kw)  # type: ignore[arg-type]


def _change(conn: sqlite3.Connection, seq: int, column: str, pos: int) -> None:
    value = conn.execute(f"SELECT {column} FROM events WHERE seq = ?", (seq,)).fetchone()[0]
    if isinstance(value, int):
        new: object = value + 1 + pos
    elif isinstance(value, bytes):
        b = bytearray(value)
        b[pos % len(b)] ^= 1 << (pos % 8)
        new = bytes(b)
    else:
        text = value or "x"
        i = pos % len(text)
        new = text[:i] + ("Z" if text[i] != "Z" else "Y") + text[i + 1 :]
    conn.execute(f"UPDATE events SET {column} = ? WHERE seq = ?", (new, seq))


def test_clean_store_verifies(ledger_template: LedgerStore) -> None:
    report = _verify(ledger_template)
    assert report.ok(), report.problems
    assert [p for p in report.problems if p.level != "NOTE"] == []
    assert report.records == SIZE and report.epochs > 5


@pytest.mark.parametrize("records", [0, 1, 2, 255, 256, 257, 513])
def test_clean_stores_of_any_size_verify(tmp_path: Path, records: int) -> None:
    store = build_ledger_store(tmp_path / "d", records, every=37)
    assert _verify(store).ok()


_settings = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_settings
@given(seq=st.integers(1, SIZE), column=st.sampled_from(COLUMNS), pos=st.integers(0, 400))
def test_any_changed_field_is_found_at_its_record(
    ledger_template: LedgerStore, seq: int, column: str, pos: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = copy_store(ledger_template, Path(tmp) / "d")
        with _db(store) as conn:
            _change(conn, seq, column, pos)
        report = _verify(store)
        assert not report.ok()
        assert report.first_bad is not None and report.first_bad.seq == seq, report.problems


@_settings
@given(seq=st.integers(1, SIZE))
def test_a_deleted_record_is_found(ledger_template: LedgerStore, seq: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = copy_store(ledger_template, Path(tmp) / "d")
        with _db(store) as conn:
            conn.execute("DELETE FROM events WHERE seq = ?", (seq,))
        report = _verify(store)
        assert report.failed
        assert report.first_bad.seq == seq  # type: ignore[union-attr]
        assert report.first_bad.kind in ("gap", "truncated")  # type: ignore[union-attr]


@_settings
@given(a=st.integers(1, SIZE), b=st.integers(1, SIZE))
def test_reordered_records_are_found(ledger_template: LedgerStore, a: int, b: int) -> None:
    if a == b:
        return
    with tempfile.TemporaryDirectory() as tmp:
        store = copy_store(ledger_template, Path(tmp) / "d")
        with _db(store) as conn:  # swap the two rows' contents (seq is the primary key)
            conn.execute("UPDATE events SET seq = -1 WHERE seq = ?", (a,))
            conn.execute("UPDATE events SET seq = ? WHERE seq = ?", (a, b))
            conn.execute("UPDATE events SET seq = ? WHERE seq = -1", (b,))
        report = _verify(store)
        assert report.first_bad.seq == min(a, b)  # type: ignore[union-attr]


@_settings
@given(seq=st.integers(1, SIZE))
def test_an_inserted_record_is_found(ledger_template: LedgerStore, seq: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = copy_store(ledger_template, Path(tmp) / "d")
        with _db(store) as conn:  # make room at `seq` and insert a copy of its neighbour there
            for s in range(SIZE, seq - 1, -1):
                conn.execute("UPDATE events SET seq = seq + 1 WHERE seq = ?", (s,))
            conn.execute(
                "INSERT INTO events SELECT ?, time, received, source, severity, kind, action, outcome, "
                "init_name, init_id, init_project, init_domain, init_ip, init_agent, target_type, target_id, "
                "target_name, observer, request_id, 'forged ' || message, attrs, raw, origin, ref, chain "
                "FROM events WHERE seq = ?",
                (seq, seq + 1),
            )
        report = _verify(store)
        assert report.first_bad.seq == seq  # type: ignore[union-attr]


@_settings
@given(keep=st.integers(1, SIZE - 1), hide=st.booleans())
def test_truncation_is_found(ledger_template: LedgerStore, keep: int, hide: bool) -> None:
    """Delete the newest records; ``hide`` also deletes the checkpoints that covered them and fixes
    the ledger state (CVE-2023-31438 style truncate-and-continue)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = copy_store(ledger_template, Path(tmp) / "d")
        with _db(store) as conn:
            conn.execute("DELETE FROM events WHERE seq > ?", (keep,))
            if hide:
                conn.execute("DELETE FROM checkpoints WHERE size > ?", (keep,))
                conn.execute("UPDATE ledger_state SET size = ?", (keep,))
            last_cp = conn.execute("SELECT coalesce(max(size), 0) FROM checkpoints").fetchone()[0]
        report = _verify(store)
        assert report.failed
        first = report.first_bad.seq  # type: ignore[union-attr]
        assert first == keep + 1 if not hide else last_cp < first <= keep + 1, report.problems


def test_a_replaced_checkpoint_is_found(ledger_template: LedgerStore, tmp_path: Path) -> None:
    store = copy_store(ledger_template, tmp_path / "d")
    with _db(store) as conn:
        epoch, body, prev_size = conn.execute(
            "SELECT epoch, body, (SELECT size FROM checkpoints c2 WHERE c2.epoch = c.epoch - 1) "
            "FROM checkpoints c "
            "WHERE epoch = 3"
        ).fetchone()
        cp = Checkpoint.from_bytes(body)
        forged = Checkpoint(cp.log_id, cp.epoch, cp.size, sha256(b"other").digest(), cp.time_us, cp.prev)
        conn.execute(
            "UPDATE checkpoints SET body = ?, signature = ? WHERE epoch = ?",
            (forged.to_bytes(), generate_signing_key().sign(forged.to_bytes()), epoch),
        )
    report = _verify(store)
    assert report.first_bad.seq == prev_size + 1  # type: ignore[union-attr]
    assert "bad-signature" in {p.kind for p in report.problems}


def test_rewritten_history_resealed_with_a_later_key_is_found(
    ledger_template: LedgerStore, tmp_path: Path
) -> None:
    """An intruder with root now (the signing key and the current sealing key) rewrites record 120,
    recomputes every chain hash and Merkle root, re-signs and re-seals the later checkpoints
    (CVE-2023-31439 style). Only the old epochs' keys, erased long ago, could make true seals."""
    store = copy_store(ledger_template, tmp_path / "d")
    sign_path, _, seal_path = key_paths(store.data)
    signing, current = load_private_key(sign_path), read_sealing_key(seal_path)
    with _db(store) as conn:
        conn.execute("UPDATE events SET message = 'nothing happened' WHERE seq = 120")
        records = list(iter_ledger(conn, 1))
        h, leaves = GENESIS, []
        for seq, rec, _ in records:
            h = chain_hash(h, rec)
            leaves.append(rec)
            conn.execute("UPDATE events SET chain = ? WHERE seq = ?", (h, seq))
        prev, interval_start = None, None
        for epoch, size, body in conn.execute(
            "SELECT epoch, size, body FROM checkpoints ORDER BY epoch"
        ).fetchall():
            cp = Checkpoint.from_bytes(body)
            if size >= 120:
                interval_start = interval_start or (prev_size + 1)  # noqa: F821
                cp = Checkpoint(cp.log_id, epoch, size, mth(leaves[:size]), cp.time_us, prev or cp.prev)
                conn.execute(
                    "UPDATE checkpoints SET body = ?, signature = ?, seal = ? WHERE epoch = ?",
                    (
                        cp.to_bytes(),
                        signing.sign(cp.to_bytes()),
                        seal(epoch, current.key, cp.to_bytes()),
                        epoch,
                    ),
                )
            prev, prev_size = cp.hash(), size  # noqa: F841
    report = _verify(store)
    assert report.failed
    assert "resealed" in {p.kind for p in report.problems}
    assert report.first_bad.seq == interval_start  # type: ignore[union-attr]
    assert interval_start <= 120


# --- the same with the sqlite3 command-line shell ---

needs_cli = pytest.mark.skipif(shutil.which("sqlite3") is None, reason="sqlite3 CLI not installed")


def _sql(store: LedgerStore, sql: str) -> None:
    subprocess.run(["sqlite3", str(store.data / "stackwatch.db"), sql], check=True, capture_output=True)


@needs_cli
def test_cli_update_raw_is_found(ledger_template: LedgerStore, tmp_path: Path) -> None:
    store = copy_store(ledger_template, tmp_path / "d")
    _sql(store, "UPDATE events SET raw = CAST('innocent line' AS BLOB) WHERE seq = 42;")
    report = _verify(store)
    assert (report.first_bad.seq, report.first_bad.kind) == (42, "mismatch")  # type: ignore[union-attr]


@needs_cli
def test_cli_delete_row_is_found(ledger_template: LedgerStore, tmp_path: Path) -> None:
    store = copy_store(ledger_template, tmp_path / "d")
    _sql(store, "DELETE FROM events WHERE seq = 77;")
    report = _verify(store)
    assert (report.first_bad.seq, report.first_bad.kind) == (77, "gap")  # type: ignore[union-attr]


@needs_cli
def test_cli_truncation_with_last_checkpoint_is_found(ledger_template: LedgerStore, tmp_path: Path) -> None:
    store = copy_store(ledger_template, tmp_path / "d")
    _sql(
        store,
        "DELETE FROM events WHERE seq > 280; DELETE FROM checkpoints WHERE epoch = "
        "(SELECT max(epoch) FROM checkpoints); UPDATE ledger_state SET size = 280;",
    )
    report = _verify(store)
    assert report.failed
    assert {"gap"} & {p.kind for p in report.problems}, report.problems


@needs_cli
def test_cli_reinserted_row_is_found(ledger_template: LedgerStore, tmp_path: Path) -> None:
    store = copy_store(ledger_template, tmp_path / "d")
    _sql(
        store,
        "CREATE TEMP TABLE t AS SELECT * FROM events WHERE seq = 150; DELETE FROM events WHERE seq = 150; "
        "UPDATE t SET init_ip = '192.0.2.1'; INSERT INTO events SELECT * FROM t;",
    )
    report = _verify(store)
    assert (report.first_bad.seq, report.first_bad.kind) == (150, "mismatch")  # type: ignore[union-attr]


def test_witness_detects_a_wiped_and_rebuilt_store(tmp_path: Path) -> None:
    witness = tmp_path / "other-mount" / "witness.jsonl"
    witness.parent.mkdir()
    from stackwatch.store.keys import init_store
    from stackwatch.store.sqlite import SQLiteStore
    from tests.store.conftest import ledger_events

    data = tmp_path / "d"
    init_store(data, witnesses=[str(witness)], background_index=False)
    with SQLiteStore(data, checkpoint_every=20, background_index=False) as s:
        s.append_events(ledger_events(100))
    assert verify_store(data, witnesses=[witness]).ok()
    shutil.rmtree(data)  # wipe, then rebuild with fresh keys and doctored history
    init_store(data, background_index=False)
    with SQLiteStore(data, checkpoint_every=20, background_index=False, witnesses=[]) as s:
        s.append_events(ledger_events(90))
    assert verify_store(data).ok()  # on its own, the rebuilt store is consistent...
    report = verify_store(data, witnesses=[witness])
    assert report.failed and {p.kind for p in report.problems if p.level == "FAIL"} == {"witness"}


@pytest.mark.parametrize(
    ("seq", "how"),
    [(5, "raw"), (64, "raw"), (65, "raw"), (130, "delete"), (301, "delete"), (200, "message-rechained")],
)
def test_parallel_verify_finds_the_same_first_bad_record(
    ledger_template: LedgerStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seq: int, how: str
) -> None:
    from stackwatch.store import verify as verify_module
    from stackwatch.store import verify_parallel

    store = copy_store(ledger_template, tmp_path / "d")
    with _db(store) as conn:
        if how == "raw":
            conn.execute("UPDATE events SET raw = CAST('x' AS BLOB) WHERE seq = ?", (seq,))
        elif how == "delete":
            conn.execute("DELETE FROM events WHERE seq = ?", (seq,))
        else:  # altered and the whole chain recomputed: only a Merkle root can tell
            conn.execute("UPDATE events SET message = 'quiet' WHERE seq = ?", (seq,))
            h = GENESIS
            for s, rec, _ in list(iter_ledger(conn, 1)):
                h = chain_hash(h, rec)
                conn.execute("UPDATE events SET chain = ? WHERE seq = ?", (h, s))
    serial = _verify(store)
    monkeypatch.setattr(verify_parallel, "CHUNK_LEVEL", 5)
    monkeypatch.setattr(verify_parallel, "CHUNK", 32)
    monkeypatch.setattr(verify_module, "PARALLEL_MIN", 1)
    parallel = _verify(store)
    assert serial.first_bad is not None and parallel.first_bad is not None
    assert (parallel.first_bad.seq, parallel.first_bad.kind) == (serial.first_bad.seq, serial.first_bad.kind)
    if how != "message-rechained":
        assert serial.first_bad.seq == seq
    monkeypatch.undo()


def test_parallel_verify_passes_a_clean_store(
    ledger_template: LedgerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stackwatch.store import verify as verify_module
    from stackwatch.store import verify_parallel

    monkeypatch.setattr(verify_parallel, "CHUNK_LEVEL", 4)
    monkeypatch.setattr(verify_parallel, "CHUNK", 16)
    monkeypatch.setattr(verify_module, "PARALLEL_MIN", 1)
    report = _verify(ledger_template)
    assert report.ok() and report.records == SIZE
