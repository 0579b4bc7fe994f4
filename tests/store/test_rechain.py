"""The v3 -> v4 upgrade: chain hashes over records become chain hashes over Merkle leaves,
without laundering a chain that was already broken."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path

from stackwatch.store.chain import GENESIS
from stackwatch.store.record_ledger import iter_ledger
from stackwatch.store.sqlite import DB_FILE, SQLiteStore
from stackwatch.store.verify import verify_store
from stackwatch.testing import make_event

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _v3_store(path: Path, n: int = 50, *, tamper: int | None = None) -> None:
    """A store as version 3 wrote it: ``chain = SHA-256(previous || record bytes)``."""
    with SQLiteStore(path, background_index=False) as store:
        store.append_events([make_event(time=T0 + timedelta(seconds=i), message=f"m {i}") for i in range(n)])
    conn = sqlite3.connect(path / DB_FILE, isolation_level=None)
    h = GENESIS
    for seq, rec, _ in list(iter_ledger(conn, 1)):
        h = sha256(h + rec).digest()
        conn.execute("UPDATE events SET chain = ? WHERE seq = ?", (h, seq))
    conn.execute("UPDATE ledger_state SET head = ?", (h,))
    if tamper is not None:
        conn.execute("UPDATE events SET message = 'edited' WHERE seq = ?", (tamper,))
    conn.execute("PRAGMA user_version = 3")
    conn.close()


def test_a_v3_store_fails_verification_until_upgraded(tmp_path: Path) -> None:
    _v3_store(tmp_path)
    assert verify_store(tmp_path).failed  # the old chain does not follow the new definition


def test_upgrading_rechains_over_leaves_and_the_store_verifies_and_continues(tmp_path: Path) -> None:
    _v3_store(tmp_path)
    with SQLiteStore(tmp_path, background_index=False) as store:
        store.append_events([make_event(time=T0, message="after the upgrade")])
        store.flush()
        assert store.size == 51
    report = verify_store(tmp_path)
    assert not report.failed, report.first_bad


def test_upgrading_a_broken_chain_keeps_the_fault_at_the_same_record(tmp_path: Path) -> None:
    _v3_store(tmp_path, tamper=20)
    SQLiteStore(tmp_path, background_index=False).close()
    report = verify_store(tmp_path)
    assert report.failed
    assert "seq 20:" in str(report.first_bad)
