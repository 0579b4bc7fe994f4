"""Record format 2 under attack: ``store verify`` names the first bad block and the first bad
record in it, for each way an intruder with write access can change the blocks (issue #16).

The store is real (keys, checkpoints, seals, the local witness); each attack edits the SQLite
file as an intruder would, then the verifier runs with k0 as an auditor does.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import zstandard
from click.testing import CliRunner

from stackwatch.cli.store_cmd import store_group
from stackwatch.core.event import Event, Initiator
from stackwatch.store import auditor
from stackwatch.store.integrity import blocks as codec
from stackwatch.store.integrity.ledger import BlockLedger
from stackwatch.store.keys import init_store
from stackwatch.store.proofs import prove
from stackwatch.store.seal import parse_initial_key
from stackwatch.store.sqlite import open_store
from stackwatch.store.sqlite_blocks import BlockStore
from stackwatch.store.verify import verify_store

BATCHES = 6
PER_BATCH = 50
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@dataclass
class Sealed:
    data: Path
    k0: bytes

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.data / "stackwatch.db", isolation_level=None)

    def spans(self) -> dict[int, tuple[int, int]]:
        """block number -> (first seq, count)."""
        with self.db() as conn:
            return {n: (f, c) for n, f, c in conn.execute("SELECT id, first_seq, count FROM blocks")}

    def verify(self) -> tuple[int | None, int | None, str]:
        report = verify_store(self.data, initial_keys=[self.k0])
        first = report.first_bad
        assert first is not None, [str(p) for p in report.problems]
        return first.block, first.seq, first.kind


def _event(n: int) -> Event:
    when = T0 + timedelta(seconds=n)
    return Event(
        time=when,
        received=when,
        host=f"node-{n % 3}",
        service="keystone",
        severity="info",
        message=f"Authorization failed for user{n % 7} from 10.1.{n % 5}.{n % 250}",
        kind="keystone",
        action="authenticate",
        outcome="failure",
        initiator=Initiator(name=f"user{n % 7}", source_ip=f"10.1.{n % 5}.{n % 250}"),
        raw=f"2026-05-01 12:00:{n % 60:02d}.000 1 WARNING keystone [req-{n:08x}] "
        f"Authorization failed for user{n % 7} from 10.1.{n % 5}.{n % 250}",
        origin="file:/var/log/keystone/keystone.log",
        ref=f"keystone.log:{n}",
    )


@pytest.fixture
def sealed(tmp_path: Path) -> Iterator[Sealed]:
    """A v2 store of several blocks, each sealed by its own checkpoint (a commit closes a block)."""
    data = tmp_path / "data"
    result = init_store(data, format=2, witness_file=tmp_path / "w.jsonl")
    with open_store(data, background_index=False) as store:
        assert isinstance(store, BlockStore)
        for batch in range(BATCHES):
            store.append_events([_event(batch * PER_BATCH + i) for i in range(PER_BATCH)])
            store.checkpoint()
    yield Sealed(data, parse_initial_key(result.initial_key))


def _rechain(conn: sqlite3.Connection) -> None:
    """What an intruder with write access does after changing blocks: recompute every chain
    hash, the Merkle node cache and the ledger state (it cannot re-sign sealed checkpoints)."""
    ledger = BlockLedger()
    for number, first, data, digests in conn.execute(
        "SELECT id, first_seq, data, digests FROM blocks ORDER BY id"
    ).fetchall():
        block = ledger.add(first, data, digests)
        conn.execute("UPDATE blocks SET id = ?, chain = ? WHERE id = ?", (block.number, block.chain, number))
    conn.execute("DELETE FROM merkle_nodes")
    conn.executemany("INSERT INTO merkle_nodes VALUES (?, ?, ?)", ledger.nodes)
    conn.execute(
        "UPDATE ledger_state SET size = ?, head = ?, merkle = ? WHERE id = 1",
        (ledger.size, ledger.head, ledger.acc.to_bytes()),
    )


def test_a_clean_store_verifies_with_k0_and_reads_back(sealed: Sealed) -> None:
    report = verify_store(sealed.data, initial_keys=[sealed.k0])
    assert report.ok(), [str(p) for p in report.problems]
    assert report.blocks >= BATCHES and report.records == BATCHES * PER_BATCH + 1  # + the store.init event
    with open_store(sealed.data, read_only=True) as store:
        got = store.get_events([2, 77, 301])
        assert [s.event for s in got] == [_event(0), _event(75), _event(299)]


def test_a_byte_flipped_inside_a_compressed_block(sealed: Sealed) -> None:
    first, count = sealed.spans()[3]
    with sealed.db() as conn:
        data = bytearray(conn.execute("SELECT data FROM blocks WHERE id = 3").fetchone()[0])
        data[len(data) // 2] ^= 0x40
        conn.execute("UPDATE blocks SET data = ? WHERE id = 3", (bytes(data),))
    block, seq, kind = sealed.verify()
    assert (block, kind) == (3, "record")
    assert seq is not None and first <= seq < first + count


def test_one_record_changed_inside_a_block_is_named(sealed: Sealed) -> None:
    first, _ = sealed.spans()[4]
    with sealed.db() as conn:
        records = codec.records(conn.execute("SELECT data FROM blocks WHERE id = 4").fetchone()[0])
        records[17] = records[17].replace(b"Authorization failed", b"Authorization passed")
        data = zstandard.ZstdCompressor().compress(b"".join(records))
        conn.execute("UPDATE blocks SET data = ? WHERE id = 4", (data,))
    assert sealed.verify() == (4, first + 17, "record")


def test_a_block_deleted(sealed: Sealed) -> None:
    first, count = sealed.spans()[3]
    with sealed.db() as conn:
        conn.execute("DELETE FROM blocks WHERE id = 3")
        conn.execute("DELETE FROM events WHERE seq BETWEEN ? AND ?", (first, first + count - 1))
    assert sealed.verify() == (3, first, "missing-block")


def test_a_block_deleted_and_the_rest_renumbered_and_rechained(sealed: Sealed) -> None:
    first, count = sealed.spans()[3]
    with sealed.db() as conn:
        conn.execute("DELETE FROM blocks WHERE id = 3")
        conn.execute("DELETE FROM events WHERE seq BETWEEN ? AND ?", (first, first + count - 1))
        for number in range(4, max(sealed.spans()) + 1):
            conn.execute("UPDATE blocks SET id = id - 1 WHERE id = ?", (number,))
        _rechain(conn)
    assert sealed.verify() == (3, first, "block-order")


def test_two_blocks_reordered(sealed: Sealed) -> None:
    spans = sealed.spans()
    with sealed.db() as conn:
        rows = {
            n: conn.execute(
                "SELECT first_seq, count, digests, data, chain FROM blocks WHERE id = ?", (n,)
            ).fetchone()
            for n in (2, 4)
        }
        for number, other in ((2, 4), (4, 2)):
            conn.execute(
                "UPDATE blocks SET first_seq = ?, count = ?, digests = ?, data = ?, chain = ? WHERE id = ?",
                (*rows[other], number),
            )
    assert sealed.verify() == (2, spans[2][0], "block-order")


def test_the_tail_truncated(sealed: Sealed) -> None:
    spans = sealed.spans()
    last = max(spans)
    first = spans[last - 1][0]
    with sealed.db() as conn:
        conn.execute("DELETE FROM blocks WHERE id >= ?", (last - 1,))
        conn.execute("DELETE FROM events WHERE seq >= ?", (first,))
        _rechain(conn)  # the ledger state too: only the signed checkpoints still say how far it went
    assert sealed.verify() == (last - 1, first, "truncated")


def test_a_block_rewritten_and_rehashed_by_an_intruder(sealed: Sealed) -> None:
    first, _ = sealed.spans()[3]
    with sealed.db() as conn:
        records = codec.records(conn.execute("SELECT data FROM blocks WHERE id = 3").fetchone()[0])
        records[5] = records[5].replace(b"Authorization failed", b"Authorization passed")
        data, digests = codec.BlockEncoder().encode(records)
        conn.execute("UPDATE blocks SET data = ?, digests = ? WHERE id = 3", (data, digests))
        _rechain(conn)
    assert sealed.verify() == (3, first, "root")


def test_an_index_row_altered_to_hide_a_record_from_searches(sealed: Sealed) -> None:
    spans = sealed.spans()
    seq = spans[2][0] + 9
    with sealed.db() as conn:
        conn.execute("UPDATE events SET init_ip = '192.0.2.1' WHERE seq = ?", (seq,))
    assert sealed.verify() == (2, seq, "index-row")


def test_verify_prints_the_first_bad_block_and_record(sealed: Sealed) -> None:
    first, _ = sealed.spans()[4]
    with sealed.db() as conn:
        conn.execute("DELETE FROM blocks WHERE id = 4")
    result = CliRunner().invoke(store_group, ["verify", "--data", str(sealed.data)])
    assert result.exit_code == 1
    assert "FIRST BAD BLOCK: 4" in result.output and f"FIRST BAD RECORD: seq {first}" in result.output


def test_a_record_proof_is_the_block_proof_plus_the_offset(sealed: Sealed) -> None:
    doc = prove(sealed.data, 123)
    assert doc["type"] == "record-inclusion" and doc["seq"] == 123
    assert "record 123" in auditor.audit(doc, auditor.load_key(str(sealed.data / "keys" / "sign.pub")))
    forged = {**doc, "record": doc["record"].replace(b"failed".hex(), b"gained".hex())}
    with pytest.raises(auditor.AuditFailure, match="digest"):
        auditor.audit(forged)
    moved = {**doc, "offset": doc["offset"] + 1, "seq": doc["seq"] + 1}
    with pytest.raises(auditor.AuditFailure):
        auditor.audit(moved)


def test_retention_expires_whole_blocks_and_the_rest_still_verifies(sealed: Sealed) -> None:
    from stackwatch.store.retention import expire

    spans = sealed.spans()
    with open_store(sealed.data, background_index=False) as store:
        result = expire(store, max_size=1)  # everything it can: up to the newest checkpoint
        assert result.pruned_to >= spans[3][0]
        gone = store.get_events(list(range(1, result.pruned_to + 1)))
        kept = store.get_events([result.pruned_to + 1])
    assert gone == [] and kept
    report = verify_store(sealed.data, initial_keys=[sealed.k0])
    assert report.ok(), [str(p) for p in report.problems]
    assert any(p.kind == "pruned" for p in report.problems)
    with sealed.db() as conn:
        assert conn.execute("SELECT min(first_seq) FROM blocks").fetchone()[0] == result.pruned_to + 1
    doc = prove(sealed.data, result.pruned_to + 1)
    assert "record" in auditor.audit(doc, auditor.load_key(str(sealed.data / "keys" / "sign.pub")))
    with sealed.db() as conn:  # the kept frontier is evidence too
        conn.execute("UPDATE ledger_state SET pruned_head = zeroblob(32)")
    _, seq, kind = sealed.verify()
    assert kind == "chain" and seq == result.pruned_to + 1
