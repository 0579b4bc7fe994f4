"""The benchmark-only store without its chain: same rows, no chain, and never usable as a chained store."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stackwatch.core.errors import StoreError
from stackwatch.store import open_store
from stackwatch.store.base import EventQuery
from stackwatch.store.benchmark_unchained import UnchainedBenchmarkStore
from stackwatch.store.sqlite import DB_FILE, SQLiteStore
from stackwatch.store.verify import verify_store
from stackwatch.testing import make_event

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _events(n: int) -> list:
    return [make_event(time=T0 + timedelta(seconds=i), message=f"msg {i}") for i in range(n)]


def _fill(path: Path, n: int = 5) -> None:
    with UnchainedBenchmarkStore(path, background_index=False) as store:
        store.append_events(_events(n))


def test_unchained_store_writes_the_same_rows_without_chain_hashes(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "chained", background_index=False) as chained:
        chained.append_events(_events(5))
    _fill(tmp_path / "plain")
    columns = "seq, time, received, source, severity, kind, message, attrs, raw, origin, ref"
    rows = {}
    for name in ("chained", "plain"):
        conn = sqlite3.connect(tmp_path / name / DB_FILE)
        rows[name] = conn.execute(f"SELECT {columns} FROM events ORDER BY seq").fetchall()
        rows[f"{name} chain"] = conn.execute("SELECT count(chain) FROM events").fetchone()[0]
        conn.close()
    assert rows["chained"] == rows["plain"]
    assert rows["chained chain"] == 5
    assert rows["plain chain"] == 0


def test_unchained_store_still_searches_what_it_stored(tmp_path: Path) -> None:
    with UnchainedBenchmarkStore(tmp_path, background_index=False) as store:
        store.append_events(_events(3))
        found = store.search_events(EventQuery(text="msg"))
    assert len(found) == 3


@pytest.mark.parametrize("opener", [lambda p: open_store(p), lambda p: SQLiteStore(p, read_only=True)])
def test_a_store_written_without_chain_refuses_to_open_as_a_chained_store(tmp_path: Path, opener) -> None:
    _fill(tmp_path)
    with pytest.raises(StoreError, match="without its hash chain"):
        opener(tmp_path)


def test_a_store_written_without_chain_fails_verification(tmp_path: Path) -> None:
    _fill(tmp_path)
    assert verify_store(tmp_path).failed


def test_a_chained_store_with_records_cannot_be_continued_without_chain(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path, background_index=False) as store:
        store.append_events(_events(2))
    with pytest.raises(StoreError, match="is chained"):
        UnchainedBenchmarkStore(tmp_path, background_index=False)
    with SQLiteStore(tmp_path, background_index=False) as store:  # and stays a good chained store
        assert store.size == 2
    assert not verify_store(tmp_path).failed
