"""``store migrate``: a format 1 store becomes format 2 in place, its history still provable
(issue #16 item 6)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackwatch.cli.store_cmd import store_group
from stackwatch.core.errors import StoreError
from stackwatch.core.event import Event, Initiator
from stackwatch.store.base import EventQuery
from stackwatch.store.integrity import blocks as codec
from stackwatch.store.keys import init_store
from stackwatch.store.migrate import migrate_store
from stackwatch.store.seal import parse_initial_key
from stackwatch.store.sqlite import SQLiteStore, open_store, stored_format
from stackwatch.store.sqlite_blocks import BlockStore
from stackwatch.store.verify import verify_store
from tests.store.blocks_attack import rechain

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)


def event(n: int) -> Event:
    when = T0 + timedelta(seconds=n)
    return Event(
        time=when,
        received=when,
        host=f"ctl-{n % 2}",
        service="sshd",
        severity="warning",
        message=f"Failed password for admin from 192.0.2.{n % 200} port {n}",
        kind="syslog",
        action="authenticate",
        outcome="failure",
        initiator=Initiator(name="admin", source_ip=f"192.0.2.{n % 200}"),
        attrs={"pid": n},
        raw=f"Apr  1 08:00:00 ctl-{n % 2} sshd[{n}]: Failed password for admin from 192.0.2.{n % 200}",
        origin="file:/var/log/auth.log",
        ref=f"auth.log:{n}",
    )


@pytest.fixture
def v1_store(tmp_path: Path) -> tuple[Path, bytes]:
    data = tmp_path / "data"
    k0 = parse_initial_key(init_store(data, witness_file=tmp_path / "w.jsonl").initial_key)
    with SQLiteStore(data, background_index=False, checkpoint_every=500) as store:
        for start in range(0, 2000, 250):
            store.append_events([event(n) for n in range(start, start + 250)])
            store.flush()
    return data, k0


def test_a_v1_store_is_converted_in_place_and_stays_provable(v1_store: tuple[Path, bytes]) -> None:
    data, k0 = v1_store
    with SQLiteStore(data, read_only=True) as old:
        before = old.search_events(EventQuery(source_ip="192.0.2.7", limit=50))
        everything = old.get_events(list(range(1, 2010)))
    result = migrate_store(data, initial_keys=[k0])
    assert stored_format(data) == 2
    assert result.records == len(everything) and result.before.ok() and result.after.ok()
    report = verify_store(data, initial_keys=[k0])  # old seals and the local witness still check
    assert report.ok(), [str(p) for p in report.problems]
    with open_store(data, read_only=True) as new:
        assert isinstance(new, BlockStore)
        assert new.search_events(EventQuery(source_ip="192.0.2.7", limit=50)) == before
        assert new.get_events(list(range(1, 2010)))[: len(everything)] == everything
    with open_store(data, background_index=False) as new:  # appending goes on, in format 2
        new.append_events([event(5000)])
    assert verify_store(data, initial_keys=[k0]).ok(allow_unsealed_tail=True)


def test_a_migrated_record_changed_breaks_the_old_signed_root(v1_store: tuple[Path, bytes]) -> None:
    data, k0 = v1_store
    migrate_store(data, initial_keys=[k0])
    conn = sqlite3.connect(data / "stackwatch.db", isolation_level=None)
    records = codec.records(conn.execute("SELECT data FROM blocks WHERE id = 1").fetchone()[0])
    records[3] = records[3].replace(b"Failed", b"Passed")
    blob, digests = codec.BlockEncoder().encode(records)
    conn.execute("UPDATE blocks SET data = ?, digests = ? WHERE id = 1", (blob, digests))
    rechain(conn)  # from the stored anchor: the format 2 roots and the format 1 roots both break
    conn.close()
    first = verify_store(data, initial_keys=[k0]).first_bad
    assert first is not None and first.block == 1 and first.seq == 1


def test_a_store_that_does_not_verify_is_not_migrated(v1_store: tuple[Path, bytes]) -> None:
    data, k0 = v1_store
    conn = sqlite3.connect(data / "stackwatch.db", isolation_level=None)
    conn.execute("UPDATE events SET message = 'nothing happened' WHERE seq = 42")
    conn.close()
    with pytest.raises(StoreError, match="does not verify"):
        migrate_store(data, initial_keys=[k0])
    assert stored_format(data) == 1


def test_the_migrate_command(v1_store: tuple[Path, bytes]) -> None:
    data, _ = v1_store
    result = CliRunner().invoke(store_group, ["migrate", "--data", str(data)])
    assert result.exit_code == 0, result.output
    assert "into" in result.output and "blocks" in result.output
    again = CliRunner().invoke(store_group, ["migrate", "--data", str(data)])
    assert again.exit_code == 1 and "no format 1 store" in again.output
