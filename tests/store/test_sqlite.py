"""What is specific to the embedded SQLite store: files, pragmas, migrations, locking, the
deferred index, and storing what SQLite cannot hold as text."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stackwatch.core.errors import StoreError
from stackwatch.core.event import Initiator
from stackwatch.store.base import EventQuery
from stackwatch.store.sqlite import DB_FILE, INDEX_FILE, SQLiteStore
from stackwatch.store.sqlite_schema import SCHEMA_VERSION, migrate
from stackwatch.testing import make_event

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _open(path: Path, **options: object) -> SQLiteStore:
    options.setdefault("background_index", False)
    return SQLiteStore(path, **options)  # type: ignore[arg-type]


def _events(n: int, **fields: object) -> list:
    message = fields.pop("message", None)
    return [make_event(time=T0 + timedelta(seconds=i), message=message or f"msg {i}", **fields)
            for i in range(n)]


def test_database_is_wal_with_normal_sync(tmp_path: Path) -> None:
    with _open(tmp_path) as store:
        store.append_events(_events(1))
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert (tmp_path / DB_FILE).is_file()
    assert (tmp_path / INDEX_FILE).is_file()


def test_a_full_batch_is_committed_without_flush(tmp_path: Path) -> None:
    store = _open(tmp_path, batch_size=10)
    for _ in range(5):
        store.append_events(_events(5))
    other = sqlite3.connect(tmp_path / DB_FILE)
    assert other.execute("SELECT count(*) FROM events").fetchone()[0] == 20  # two batches; 5 buffered
    store.flush()
    assert other.execute("SELECT count(*) FROM events").fetchone()[0] == 25
    other.close()
    store.close()


def test_a_plain_sqlite_reader_sees_committed_rows_while_writing(tmp_path: Path) -> None:
    store = _open(tmp_path, batch_size=100)
    reader = sqlite3.connect(tmp_path / DB_FILE)
    for round_ in range(1, 6):
        store.append_events(_events(100))  # a full batch: committed
        count = reader.execute("SELECT count(*) FROM events").fetchone()[0]
        assert count == round_ * 100
    reader.close()
    store.close()


def test_upgrade_from_v1_keeps_events(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / DB_FILE, isolation_level=None)
    migrate(conn, target=1)
    conn.execute("INSERT INTO sources (id, host, service) VALUES (1, 'ctl-1', 'sshd')")
    conn.execute("INSERT INTO events VALUES (1, 0, 0, 1, 'info', 'syslog', '', '', 'root', '', '', '', '', "
                 "'', '', '', '', '', '', 'old message', '{}', X'6f6c64ff', 'file:x', 'x:1', NULL)")
    conn.close()
    with _open(tmp_path) as store:
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 7
        [old] = store.get_events([1])
        assert (old.event.host, old.event.message) == ("ctl-1", "old message")
        assert old.event.raw_bytes() == b"old\xff"
        assert [s.seq for s in store.search_events(EventQuery(text="old"))] == [1]
        assert store.append_events(_events(1)) == [2]
        store.upsert_alerts([])  # the v2 tables exist


def test_a_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / DB_FILE)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        _open(tmp_path)
    conn = sqlite3.connect(tmp_path / DB_FILE)
    assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    conn.close()


def test_a_foreign_database_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / DB_FILE)
    conn.execute("CREATE TABLE mine (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a stackwatch store"):
        _open(tmp_path)


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    (tmp_path / DB_FILE).write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError):
        _open(tmp_path)


def test_a_folder_name_with_uri_characters_works(tmp_path: Path) -> None:
    folder = tmp_path / "odd ?name#1 %20"
    with _open(folder) as store:
        store.append_events(_events(2))
        assert len(store.search_events(EventQuery(text="msg"))) == 2
    with _open(folder, read_only=True) as store:
        assert len(store.get_events([1, 2])) == 2


def test_the_data_folder_must_be_a_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="not a folder"):
        _open(tmp_path / "file")


def test_only_one_appender_at_a_time(tmp_path: Path) -> None:
    first = _open(tmp_path)
    second = _open(tmp_path)
    first.append_events(_events(2))
    with pytest.raises(StoreError, match="another process is appending"):
        second.append_events(_events(1))
    second.upsert_alerts([])  # everything else still works
    first.close()
    assert second.append_events(_events(1)) == [3]  # the lock passed on; numbering continues
    second.close()


def test_read_only_store_reads_but_never_writes(tmp_path: Path) -> None:
    with _open(tmp_path) as writer:
        writer.append_events(_events(3))
    reader = _open(tmp_path, read_only=True)
    assert [s.seq for s in reader.search_events(EventQuery(text="msg"))] == [3, 2, 1]
    with pytest.raises(StoreError, match="read-only"):
        reader.append_events(_events(1))
    with pytest.raises(StoreError, match="read-only"):
        reader.upsert_alerts([])
    reader.close()


def test_read_only_open_of_a_missing_store_fails(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store"):
        _open(tmp_path / "none", read_only=True)


def test_a_lost_index_is_rebuilt_from_the_record(tmp_path: Path) -> None:
    with _open(tmp_path) as store:
        store.append_events(_events(5, initiator={"source_ip": "10.9.9.9"}))
    (tmp_path / INDEX_FILE).unlink()
    with _open(tmp_path) as store:
        assert len(store.search_events(EventQuery(text="msg"))) == 5
        assert len(store.search_events(EventQuery(source_ip="10.9.9.9"))) == 5


def test_an_index_of_another_store_is_rebuilt(tmp_path: Path) -> None:
    with _open(tmp_path / "a") as store:
        store.append_events(_events(3, message="alpha"))
    with _open(tmp_path / "b") as store:
        store.append_events(_events(2, message="beta"))
    (tmp_path / "b" / INDEX_FILE).replace(tmp_path / "a" / INDEX_FILE)
    with _open(tmp_path / "a") as store:
        assert len(store.search_events(EventQuery(text="alpha"))) == 3
        assert store.search_events(EventQuery(text="beta")) == []


def test_the_background_indexer_catches_up_by_itself(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path, background_index=True, index_interval=0.05)
    store.append_events(_events(50))
    store.flush()
    deadline = time.monotonic() + 20
    while store.counts().unindexed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.counts().unindexed == 0
    assert len(store.search_events(EventQuery(text="msg", limit=100))) == 50
    store.close()


def test_text_fields_with_undecodable_bytes_are_stored_with_replacement(tmp_path: Path) -> None:
    event = make_event(message="bad \udcff byte", host="h\udcfe", raw="bad \udcff byte\x00",
                       attrs={"k": "v\udcff", "\udcfekey": 1})
    with _open(tmp_path) as store:
        [seq] = store.append_events([event])
        [stored] = store.get_events([seq])
    assert stored.event.message == "bad \ufffd byte"
    assert stored.event.host == "h\ufffd"
    assert stored.event.attrs == {"k": "v\ufffd", "\ufffdkey": 1}
    assert stored.event.raw_bytes() == b"bad \xff byte\x00"


def test_odd_values_are_stored_not_raised(tmp_path: Path) -> None:
    naive = datetime(2026, 3, 1, 8, 0)  # taken as UTC
    event = make_event(time=naive, received=naive, attrs={1: b"bytes", "set": {"b", "a"}, "when": T0})
    with _open(tmp_path) as store:
        [seq] = store.append_events([event])
        [stored] = store.get_events([seq])
    assert stored.event.time == naive.replace(tzinfo=UTC)
    assert stored.event.attrs == {"1": "bytes", "set": ["a", "b"], "when": "2026-03-01T00:00:00+00:00"}


def test_sources_and_events_flat_view(tmp_path: Path) -> None:
    with _open(tmp_path) as store:
        store.append_events(_events(2, host="ctl-1", service="sshd"))
    conn = sqlite3.connect(tmp_path / DB_FILE)
    assert conn.execute("SELECT host, service, message FROM events_flat ORDER BY seq").fetchall() == [
        ("ctl-1", "sshd", "msg 0"), ("ctl-1", "sshd", "msg 1")]
    conn.close()


def test_key_lookups_search_every_generation_of_the_key_index(tmp_path: Path) -> None:
    """event_keys rows lead with seq >> KEY_GEN_BITS; a lookup must seek every generation up to
    the indexed seq's, not only the first (here a row is moved to generation 3 by hand)."""
    from stackwatch.store.sqlite_schema import FIELD_IP, KEY_GEN_BITS

    with _open(tmp_path) as store:
        store.append_events(_events(2, initiator=Initiator(source_ip="203.0.113.9")))
        assert len(store.search_events(EventQuery(source_ip="203.0.113.9"))) == 2
        index = sqlite3.connect(tmp_path / INDEX_FILE, isolation_level=None)
        index.execute("UPDATE event_keys SET gen = 3 WHERE field = ? AND seq = 2", (FIELD_IP,))
        index.execute("UPDATE meta SET value = ? WHERE name = 'indexed_seq'", (3 << KEY_GEN_BITS,))
        index.close()
        assert sorted(e.seq for e in store.search_events(EventQuery(source_ip="203.0.113.9"))) == [1, 2]
