"""Record format 2 through the store's operations: backup and restore, what a standby refuses
(the replication tests themselves run on both formats: test_replication_tls,
test_ledger_processes), the format a new store gets (issue #16)."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from stackwatch.core.errors import IntegrityError, StoreError
from stackwatch.store import auditor
from stackwatch.store.backup import backup, restore
from stackwatch.store.integrity import blocks as codec
from stackwatch.store.keys import init_store
from stackwatch.store.proofs import consistency
from stackwatch.store.replication import Standby
from stackwatch.store.sqlite import SQLiteStore, open_store, stored_format
from stackwatch.store.sqlite_blocks import BlockStore
from tests.servetools import free_port
from tests.store.blocks_attack import BATCHES, PER_BATCH, Sealed, event, rechain


def test_backup_and_restore_of_a_v2_store(sealed: Sealed, tmp_path: Path) -> None:
    manifest = backup(sealed.data, tmp_path / "b.tar")
    assert manifest["records"] == BATCHES * PER_BATCH + 1
    report = restore(tmp_path / "b.tar", tmp_path / "restored", initial_keys=[sealed.k0])
    assert report.ok(allow_unsealed_tail=True), [str(p) for p in report.problems]
    assert stored_format(tmp_path / "restored") == 2
    with open_store(tmp_path / "restored", background_index=False) as store:
        assert isinstance(store, BlockStore)
        assert [s.event for s in store.get_events([2, 150])] == [event(0), event(148)]


def test_a_backup_with_a_changed_block_is_refused(sealed: Sealed, tmp_path: Path) -> None:
    with sealed.db() as conn:
        data = bytearray(conn.execute("SELECT data FROM blocks WHERE id = 2").fetchone()[0])
        data[-3] ^= 1
        conn.execute("UPDATE blocks SET data = ? WHERE id = 2", (bytes(data),))
    backup(sealed.data, tmp_path / "b.tar")
    with pytest.raises(IntegrityError):
        restore(tmp_path / "b.tar", tmp_path / "restored", initial_keys=[sealed.k0])
    assert not (tmp_path / "restored").exists() or not any((tmp_path / "restored").iterdir())


def _wire(sealed: Sealed) -> list[list[object]]:
    with sealed.db() as conn:
        return [list(r) for r in conn.execute(
            "SELECT id, first_seq, count, digests, data, chain FROM blocks ORDER BY id")]


@pytest.mark.parametrize(("field", "change", "message"), [
    (4, "flip", "digest|damaged"),  # a byte of the compressed records
    (3, "flip", "digest"),  # a record's digest (the leaf changes with it)
    (5, "flip", "chain hash"),  # the primary's chain hash
    (1, "shift", "was due"),  # a block out of place
])
def test_a_standby_refuses_a_block_that_does_not_verify(sealed: Sealed, tmp_path: Path, field: int,
                                                          change: str, message: str) -> None:
    """The standby checks every record against its digest, the block's place and the chain
    hash it computes itself; nothing of a refused batch is stored."""
    wire = _wire(sealed)
    init_store(tmp_path / "standby", standby=True, format=2, background_index=False)
    with open_store(tmp_path / "standby", background_index=False) as store:
        store.apply_replicated(wire[:1])
        bad = list(wire[1])
        if change == "flip":
            value = bytearray(bad[field])  # type: ignore[arg-type]
            value[len(value) // 2] ^= 1
            bad[field] = bytes(value)
        else:
            bad[field] = int(bad[field]) + 1  # type: ignore[call-overload]
        with pytest.raises(IntegrityError, match=message):
            store.apply_replicated([bad, *wire[2:]])
        assert store.size == wire[0][1] + wire[0][2] - 1  # type: ignore[operator]
        store.apply_replicated(wire[1:])  # the intact blocks still follow
        assert store.size == BATCHES * PER_BATCH + 1
        assert [s.event for s in store.get_events([2, 150])] == [event(0), event(148)]


def test_a_standby_of_the_other_format_is_refused(tmp_path: Path) -> None:
    secret = b"s" * 32
    init_store(tmp_path / "primary", format=2, background_index=False)
    init_store(tmp_path / "standby", standby=True, format=1, background_index=False)
    port = free_port()
    options = {"listen": ("127.0.0.1", port), "secret": secret, "sync": False, "timeout": 5.0, "tls": None}
    with open_store(tmp_path / "primary", background_index=False, replication=options) as primary, \
            open_store(tmp_path / "standby", background_index=False) as store:
        primary.append_events([event(1)])
        primary.flush()
        follower = Standby(store, ("127.0.0.1", port), secret)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                follower.run(retry=0.2)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(timeout=30)
        follower.stop.set()
        assert errors and isinstance(errors[0], IntegrityError)
        assert "record format 2" in str(errors[0]) and "--format 2" in str(errors[0])
        assert store.size == 0


def test_the_format_of_a_new_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STACKWATCH_STORE_FORMAT", raising=False)
    with open_store(tmp_path / "b", background_index=False) as store:  # the default: format 2
        assert isinstance(store, BlockStore)
    with open_store(tmp_path / "a", format=1, background_index=False) as store:
        assert type(store) is SQLiteStore
    monkeypatch.setenv("STACKWATCH_STORE_FORMAT", "1")
    with open_store(tmp_path / "c", background_index=False) as store:
        assert type(store) is SQLiteStore
    monkeypatch.setenv("STACKWATCH_STORE_FORMAT", "2")
    with open_store(tmp_path / "c", background_index=False) as store:  # a store keeps its format
        assert type(store) is SQLiteStore
    with open_store(tmp_path / "a", background_index=False) as store:  # a store keeps its format
        assert type(store) is SQLiteStore
    monkeypatch.setenv("STACKWATCH_STORE_FORMAT", "3")
    with pytest.raises(StoreError, match="unknown store format"):
        open_store(tmp_path / "d")
    conn = sqlite3.connect(tmp_path / "a" / "stackwatch.db")
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'blocks'").fetchone()[0] == 0
    conn.close()
    with pytest.raises(StoreError, match="store migrate"):
        init_store(tmp_path / "a", format=2)


def test_the_search_index_is_filled_from_the_writers_messages_or_from_the_blocks(tmp_path: Path) -> None:
    from stackwatch.store.base import EventQuery

    quiet = {"background_index": False, "index_every": 10**9, "index_interval": 1e9}
    writer = BlockStore(tmp_path / "d", **quiet)
    writer.append_events([event(n) for n in range(200)])
    writer.flush()
    other = BlockStore(tmp_path / "d", background_index=False)  # has none of the writer's messages
    try:
        assert other.index_pending() == 200  # read from the blocks
        assert [s.event for s in other.search_events(EventQuery(text="user3 from 10.1.3.3"))] == [event(3)]
    finally:
        other.close()
    writer.append_events([event(n) for n in range(200, 260)])
    writer.flush()
    assert writer.index_pending() == 60  # its own messages; the 200 indexed elsewhere are dropped
    assert writer._texts == []
    hits = writer.search_events(EventQuery(text="user6 from 10.1.1.1"))  # event 251: record 252
    assert [s.seq for s in hits] == [252] and hits[0].event == event(251)
    writer.close()


def test_background_indexing_of_a_v2_store(tmp_path: Path) -> None:
    import time

    from stackwatch.store.base import EventQuery

    with BlockStore(tmp_path / "d", background_index=True, index_interval=0.05) as store:
        store.append_events([event(n) for n in range(100)])
        store.flush()
        deadline = time.monotonic() + 10
        while store.counts().unindexed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.counts().unindexed == 0
        assert store.count_events(EventQuery(text="Authorization failed")) == 100


def test_a_v2_store_is_never_written_as_format_1(sealed: Sealed) -> None:
    with pytest.raises(StoreError, match="record format 2"):
        SQLiteStore(sealed.data, background_index=False)
    with pytest.raises(StoreError, match="record format 2"):
        SQLiteStore(sealed.data, read_only=True)


def _checkpoint_sizes(sealed: Sealed) -> list[int]:
    with sealed.db() as conn:
        return [int(s) for (s,) in conn.execute("SELECT size FROM checkpoints ORDER BY epoch")]


def _public_key(sealed: Sealed) -> bytes:
    with sealed.db() as conn:
        return bytes(conn.execute("SELECT public_key FROM signers").fetchone()[0])


def test_consistency_proofs_of_a_v2_store_over_block_leaves(sealed: Sealed, tmp_path: Path) -> None:
    """Between any two checkpoints (and from the empty store), checked by the standalone
    auditor against the signed checkpoints, old and new, and the key pinned."""
    sizes = _checkpoint_sizes(sealed)
    assert sizes == [1 + PER_BATCH * b for b in range(BATCHES + 1)]
    key = _public_key(sealed)
    for old, new in [(sizes[1], sizes[4]), (sizes[0], sizes[-1]), (0, sizes[3]), (sizes[2], sizes[2])]:
        doc = json.loads(json.dumps(consistency(sealed.data, old, new)))
        assert doc["type"] == "block-consistency" and doc["old_blocks"] <= doc["new_blocks"]
        assert ("old_checkpoint" in doc) == (old in sizes)
        assert f"at {old} records" in auditor.audit(doc, key)
    doc = consistency(sealed.data, sizes[1], sizes[4])
    old_cp = doc.pop("old_checkpoint")
    assert "signed checkpoint" in auditor.audit(doc, key, old_cp)  # the one the auditor kept
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(doc))
    (tmp_path / "old.json").write_text(json.dumps(old_cp))
    assert auditor.main([str(path), "--key", key.hex(), "--old-checkpoint", str(tmp_path / "old.json")]) == 0
    with pytest.raises(StoreError, match="falls inside block"):
        consistency(sealed.data, sizes[1] + 3, sizes[4])
    with pytest.raises(StoreError, match="no format 2 checkpoint at size"):
        consistency(sealed.data, sizes[1], sizes[4] - 1)


@pytest.mark.parametrize(("field", "why"), [
    ("proof", "proof"), ("old_mth", "old root"), ("new_mth", "new root"), ("old_blocks", "old root"),
])
def test_the_auditor_refuses_a_block_consistency_proof_that_was_changed(sealed: Sealed, field: str,
                                                                         why: str) -> None:
    sizes = _checkpoint_sizes(sealed)
    doc = consistency(sealed.data, sizes[1], sizes[5])
    if field == "proof":
        doc["proof"][0] = bytes(32).hex()
    elif field == "old_blocks":
        doc["old_blocks"] += 1
    else:
        doc[field] = bytes(32).hex()
    with pytest.raises(auditor.AuditFailure, match=why):
        auditor.audit(doc, _public_key(sealed))


def test_a_rewritten_block_breaks_the_consistency_proof(sealed: Sealed) -> None:
    """An intruder with write access rewrites an early block and re-chains everything: the
    proof the store now gives does not lead from the old signed checkpoint to the new one."""
    sizes = _checkpoint_sizes(sealed)
    with sealed.db() as conn:
        records = codec.records(conn.execute("SELECT data FROM blocks WHERE id = 2").fetchone()[0])
        records[1] = records[1].replace(b"Authorization failed", b"Authorization passed")
        data, digests = codec.BlockEncoder().encode(records)
        conn.execute("UPDATE blocks SET data = ?, digests = ? WHERE id = 2", (data, digests))
        rechain(conn)
    doc = consistency(sealed.data, sizes[1], sizes[5])
    with pytest.raises(auditor.AuditFailure, match="root"):
        auditor.audit(doc, _public_key(sealed))


def test_a_v2_standby_reconnects_where_it_left_off(tmp_path: Path) -> None:
    """The primary restarts: the standby reconnects, the primary checks the standby's chain head
    against its own block ending at the standby's size, and shipping goes on from there."""
    secret = b"s" * 32
    init_store(tmp_path / "primary", format=2, background_index=False)
    init_store(tmp_path / "standby", standby=True, format=2, background_index=False)
    options = {"listen": ("127.0.0.1", free_port()), "secret": secret, "sync": True, "timeout": 20.0,
               "tls": None}
    errors: list[BaseException] = []
    with open_store(tmp_path / "standby", background_index=False) as store:
        follower = Standby(store, options["listen"], secret)  # type: ignore[arg-type]

        def run() -> None:
            try:
                follower.run(retry=0.1)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            for first in (0, 100):  # the second round starts on a standby holding 101 records
                with open_store(tmp_path / "primary", background_index=False, replication=options) as primary:
                    primary.append_events([event(first + i) for i in range(100)])
                    primary.flush()  # sync: the standby has committed them
                    assert primary.replica is not None and primary.replica.acked == primary.size
        finally:
            follower.stop.set()
            thread.join(timeout=30)
        assert not errors, errors
        assert store.size == 201
        assert [s.event for s in store.get_events([2, 201])] == [event(0), event(199)]


def test_a_v2_store_that_retention_pruned_opens_again_for_writing(sealed: Sealed) -> None:
    """The open compared the ledger's block count (every Merkle leaf, the expired blocks'
    included) with the block rows left: after any retention that expired a block, the store
    refused to open for writing ("the store was altered") and its analyzer could not start."""
    from stackwatch.store.retention import expire
    from stackwatch.store.verify import verify_store

    with open_store(sealed.data, background_index=False) as store:
        assert expire(store, max_size=1).pruned_to > 0
    with open_store(sealed.data, background_index=False) as store:
        (seq,) = store.append_events([event(9000)])
        store.checkpoint()
    with open_store(sealed.data, read_only=True) as store:
        assert [s.event for s in store.get_events([seq])] == [event(9000)]
    report = verify_store(sealed.data, initial_keys=[sealed.k0])
    assert report.ok(), [str(p) for p in report.problems]
    with sealed.db() as conn:  # a block row deleted outside retention is still found at the open
        conn.execute("DELETE FROM blocks WHERE id = (SELECT max(id) FROM blocks)")
    with pytest.raises(StoreError, match="altered"), open_store(sealed.data, background_index=False) as store:
        store.append_events([event(9001)])
