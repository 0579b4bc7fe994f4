"""A backup carries the web users and API tokens (not login sessions) and analyze's record of
what it stored; a restore brings them back, owner-readable only."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

from stackwatch.api.users import UserStore
from stackwatch.pipeline.ingested import INGESTED_FILE, IngestLedger
from stackwatch.store.backup import backup, restore
from tests.store.conftest import LedgerStore, copy_store


def test_backup_and_restore_keep_users_and_tokens_but_not_sessions(ledger_template: LedgerStore,
                                                                   tmp_path: Path) -> None:
    store = copy_store(ledger_template, tmp_path / "data")
    users = UserStore.in_data_dir(store.data)
    users.add("anna", "a long enough password", "admin")
    token, _ = users.create_token("anna", "ci", role="viewer")
    users.open_session("anna", key="k" * 32, hours=8, source_ip="127.0.0.1")
    users.close()
    IngestLedger(store.data).close()

    manifest = backup(store.data, tmp_path / "b.tar")
    assert manifest["includes"] == ["users.db", INGESTED_FILE]
    restore(tmp_path / "b.tar", tmp_path / "restored", initial_keys=[store.k0])

    restored = UserStore.in_data_dir(tmp_path / "restored")
    try:
        assert [u.name for u in restored.all()] == ["anna"]
        assert restored.verify("anna", "a long enough password") is not None
        checked = restored.check_token(token)
        assert checked is not None and checked[1] == "viewer"
    finally:
        restored.close()
    with sqlite3.connect(tmp_path / "restored" / "users.db") as conn:
        assert conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0
    for name in ("users.db", INGESTED_FILE):
        assert stat.S_IMODE((tmp_path / "restored" / name).stat().st_mode) == 0o600


def test_a_store_without_users_backs_up_without_them(ledger_template: LedgerStore, tmp_path: Path) -> None:
    store = copy_store(ledger_template, tmp_path / "data")
    manifest = backup(store.data, tmp_path / "b.tar")
    assert manifest["includes"] == []
    restore(tmp_path / "b.tar", tmp_path / "restored", initial_keys=[store.k0])
    assert not (tmp_path / "restored" / "users.db").exists()
