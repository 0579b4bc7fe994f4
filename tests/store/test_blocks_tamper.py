"""Record format 2 under attack: ``store verify`` names the first bad block and the first bad
record in it, for each way an intruder with write access can change the blocks (issue #16).

The store is real (keys, checkpoints, seals, the local witness); each attack edits the SQLite
file as an intruder would, then the verifier runs with k0 as an auditor does.
"""

from __future__ import annotations

import pytest
import zstandard
from click.testing import CliRunner

from stackwatch.cli.store_cmd import store_group
from stackwatch.store import auditor
from stackwatch.store.integrity import blocks as codec
from stackwatch.store.proofs import prove
from stackwatch.store.sqlite import open_store
from stackwatch.store.verify import verify_store
from tests.store.blocks_attack import BATCHES, PER_BATCH, Sealed, event, rechain


def test_a_clean_store_verifies_with_k0_and_reads_back(sealed: Sealed) -> None:
    report = verify_store(sealed.data, initial_keys=[sealed.k0])
    assert report.ok(), [str(p) for p in report.problems]
    assert report.blocks >= BATCHES and report.records == BATCHES * PER_BATCH + 1  # + the store.init event
    with open_store(sealed.data, read_only=True) as store:
        got = store.get_events([2, 77, 301])
        assert [s.event for s in got] == [event(0), event(75), event(299)]


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
        rechain(conn)
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
        rechain(conn)  # the ledger state too: only the signed checkpoints still say how far it went
    assert sealed.verify() == (last - 1, first, "truncated")


def test_a_block_rewritten_and_rehashed_by_an_intruder(sealed: Sealed) -> None:
    first, _ = sealed.spans()[3]
    with sealed.db() as conn:
        records = codec.records(conn.execute("SELECT data FROM blocks WHERE id = 3").fetchone()[0])
        records[5] = records[5].replace(b"Authorization failed", b"Authorization passed")
        data, digests = codec.BlockEncoder().encode(records)
        conn.execute("UPDATE blocks SET data = ?, digests = ? WHERE id = 3", (data, digests))
        rechain(conn)
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
