"""The hash chain: fixed vectors for the encoding and the chain, and every kind of tampering
(flip, delete, insert, reorder, truncate, rewrite-and-rehash) found at the right record."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackwatch.store.chain import (
    GENESIS,
    ChainFault,
    RecordFields,
    canonical_record_bytes,
    chain_hash,
    decode_record_bytes,
    extend_chain,
    verify_chain,
)
from stackwatch.store.merkle import MerkleAccumulator, leaf_hash, mth

RAW = b"Nov 27 08:00:01 ctl sshd[1]: Failed password for root"
NORM = b'{"action":"authenticate"}'
RECORDS = [
    (RAW, NORM, 1_700_000_000_000_000, "file:/var/log/auth.log"),
    (b"", b"", 0, ""),
    (b"\xff\xfe", b"{}", -1, "syslog:10.0.0.1"),
]


def build(n: int) -> list[tuple[int, bytes, bytes]]:
    """n clean (seq, record_bytes, stored_hash) rows."""
    rows, h = [], GENESIS
    for seq in range(1, n + 1):
        rec = canonical_record_bytes(seq, f"line {seq}".encode(), b'{"n":%d}' % seq,
                                     1_700_000_000_000_000 + seq,
                                     "file:/var/log/x")
        h = chain_hash(h, rec)
        rows.append((seq, rec, h))
    return rows


def rehash_from(rows: list[tuple[int, bytes, bytes]], start: int) -> list[tuple[int, bytes, bytes]]:
    """What an intruder does after editing: recompute every stored hash from index ``start``."""
    out = list(rows[:start])
    h = out[-1][2] if out else GENESIS
    for seq, rec, _ in rows[start:]:
        h = chain_hash(h, rec)
        out.append((seq, rec, h))
    return out


# --- fixed vectors ---

def test_genesis_is_the_hash_of_its_label() -> None:
    assert hashlib.sha256(b"stackwatch chain genesis v1").digest() == GENESIS
    assert GENESIS.hex() == "df3c569568d77ba3c179309ed4548ee51422eec50f527bca80a423d066fb17d4"


def test_canonical_bytes_layout_vector() -> None:
    expected = (b"SWR1" + b"\x00" * 7 + b"\x01" + bytes.fromhex("00060a24181e4000")
                + b"\x00\x00\x00\x35" + b"\x00\x00\x00\x19" + b"\x00\x00\x00\x16" + RAW + NORM
                + b"file:/var/log/auth.log")
    assert canonical_record_bytes(1, *RECORDS[0]) == expected


def test_canonical_bytes_of_empty_fields_and_negative_time() -> None:
    expected = "5357523100000000000000020000000000000000" + "00" * 12
    assert canonical_record_bytes(2, *RECORDS[1]).hex() == expected
    assert canonical_record_bytes(3, *RECORDS[2]).hex() == (
        "535752310000000000000003ffffffffffffffff00000002000000020000000f"
        "fffe7b7d7379736c6f673a31302e302e302e31")


def test_chain_hash_vectors() -> None:
    hashes, h = [], GENESIS
    for seq, rec in enumerate(RECORDS, 1):
        h = chain_hash(h, canonical_record_bytes(seq, *rec))
        hashes.append(h.hex())
    assert hashes == [
        "7fd0cdb4202241e4a77fd710e9f5eae90079e3ec7e5e6090565f18fb1a4b2db6",
        "f6c0c2937ab1048480902b2a656893fdacc41c550e34dfb4abc9e80b40e90fe2",
        "57f17a13e85432a200b1014cb81999897ee46cc4032e9fb4e8e9832002210843",
    ]
    leaf = hashlib.sha256(b"\x00" + canonical_record_bytes(1, *RECORDS[0])).digest()
    assert hashes[0] == hashlib.sha256(GENESIS + leaf).hexdigest()  # the chain links Merkle leaves


def test_merkle_root_over_record_bytes_vector() -> None:
    recs = [canonical_record_bytes(seq, *r) for seq, r in enumerate(RECORDS, 1)]
    assert mth(recs).hex() == "da0ef585f4e0d9e40eaabc8561adde1fc05a8180fe8fb4d7df706020d5394fc2"


def test_lone_surrogates_in_origin_are_kept_distinct() -> None:
    a = canonical_record_bytes(1, b"", b"", 0, "x\udcff")
    b = canonical_record_bytes(1, b"", b"", 0, "x\xff")
    assert a != b
    assert decode_record_bytes(a).origin == "x\udcff"


@pytest.mark.parametrize("args", [(-1, b"", b"", 0, ""), (1, b"", b"", 2**63, ""), (2**64, b"", b"", 0, "")])
def test_unencodable_records_raise_value_error(args: tuple) -> None:
    with pytest.raises(ValueError):
        canonical_record_bytes(*args)


@pytest.mark.parametrize("bad", [b"", b"SWR1", b"XXXX" + bytes(28),
                                 canonical_record_bytes(1, b"a", b"", 0, "")[:-1],
                                 canonical_record_bytes(1, b"a", b"", 0, "") + b"!"])
def test_decode_rejects_malformed_bytes(bad: bytes) -> None:
    with pytest.raises(ValueError):
        decode_record_bytes(bad)


@settings(max_examples=300)
@given(st.integers(0, 2**64 - 1), st.binary(max_size=40), st.binary(max_size=40),
       st.integers(-(2**63), 2**63 - 1), st.text(max_size=20))
def test_encoding_round_trips(seq: int, raw: bytes, norm: bytes, t: int, origin: str) -> None:
    """Decodable means injective: no two records share canonical bytes."""
    fields = RecordFields(seq, raw, norm, t, origin)
    assert decode_record_bytes(canonical_record_bytes(seq, raw, norm, t, origin)) == fields


def test_moving_bytes_between_fields_changes_the_encoding() -> None:
    assert canonical_record_bytes(1, b"ab", b"c", 0, "") != canonical_record_bytes(1, b"a", b"bc", 0, "")


def test_extend_chain_batch_equals_one_by_one() -> None:
    rows = build(30)
    recs = [r for _, r, _ in rows]
    acc = MerkleAccumulator()
    acc.append(leaf_hash(recs[0]))
    head, hashes, leaves = extend_chain(rows[0][2], recs[1:], acc)
    assert hashes == [h for _, _, h in rows[1:]] and head == rows[-1][2]
    assert leaves == [leaf_hash(r) for r in recs[1:]]
    assert acc.root() == mth(recs)
    assert extend_chain(GENESIS, []) == (GENESIS, [], [])


# --- verify_chain ---

def test_clean_chain_verifies() -> None:
    assert verify_chain(build(50), end_seq=50) is None
    assert verify_chain([]) is None


def test_resume_from_a_known_good_point() -> None:
    rows = build(20)
    assert verify_chain(rows[10:], prev_hash=rows[9][2], first_seq=11) is None
    assert verify_chain(rows[10:], first_seq=11).kind == "mismatch"


def test_altered_record_reported_exactly() -> None:
    rows = build(10)
    seq, rec, h = rows[4]
    rows[4] = (seq, rec.replace(b"line", b"LINE"), h)
    fault = verify_chain(rows)
    assert (fault.seq, fault.kind) == (5, "mismatch")
    assert "record 5 was altered" in fault.reason


def test_altered_record_with_its_hash_recomputed_shows_at_the_next() -> None:
    rows = build(10)
    seq, rec, _ = rows[4]
    rec = rec.replace(b"line", b"LINE")
    rows[4] = (seq, rec, chain_hash(rows[3][2], rec))
    fault = verify_chain(rows)
    assert (fault.seq, fault.kind) == (6, "mismatch")
    assert "record 5 was altered and its hash recomputed" in fault.reason


def test_gap_names_the_missing_seqs() -> None:
    rows = build(10)
    fault = verify_chain(rows[:3] + rows[6:])
    assert fault == ChainFault(4, "gap", "seq 4..6 missing (next present is 7)")


def test_swap_is_reported_as_reordering() -> None:
    rows = build(10)
    rows[3], rows[4] = rows[4], rows[3]
    assert verify_chain(rows) == ChainFault(4, "reordered", "seq 5 stored before seq 4")


def test_repeated_record_is_reordering() -> None:
    rows = build(5)
    fault = verify_chain([*rows[:3], rows[1], *rows[3:]])
    assert (fault.seq, fault.kind) == (4, "reordered")


def test_truncated_tail_needs_the_expected_end() -> None:
    rows = build(10)
    assert verify_chain(rows[:7]) is None  # the chain alone cannot know its end
    assert verify_chain(rows[:7], end_seq=10) == ChainFault(8, "truncated",
                                                            "chain ends at seq 7, expected records up to 10")


def test_fully_rehashed_rewrite_is_caught_by_the_checkpoint_root() -> None:
    rows = build(40)
    roots = {16: mth([r for _, r, _ in rows[:16]]), 32: mth([r for _, r, _ in rows[:32]])}
    seq, rec, h = rows[20]
    rows[20] = (seq, rec.replace(b"line", b"LINE"), h)
    forged = rehash_from(rows, 20)
    assert verify_chain(forged) is None
    fault = verify_chain(forged, roots=roots)
    assert (fault.seq, fault.kind) == (32, "root")
    assert "seqs 17..32" in fault.reason


def test_roots_check_resumes_with_an_accumulator() -> None:
    rows = build(40)
    recs = [r for _, r, _ in rows]
    acc = MerkleAccumulator()
    acc.extend(leaf_hash(r) for r in recs[:10])
    assert verify_chain(rows[10:], prev_hash=rows[9][2], first_seq=11, roots={32: mth(recs[:32])},
                        merkle=acc) is None
    assert acc.size == 40 and acc.root() == mth(recs)


def test_truncation_below_a_checkpoint_is_reported() -> None:
    rows = build(20)
    roots = {16: mth([r for _, r, _ in rows[:16]])}
    fault = verify_chain(rows[:12], roots=roots)
    assert (fault.seq, fault.kind) == (13, "truncated")


# --- properties: every tampering found at the right record ---

TAMPER = st.sampled_from(["flip", "delete", "insert", "swap", "truncate", "rehash"])


@settings(max_examples=300, deadline=None)
@given(st.integers(2, 60), TAMPER, st.data())
def test_every_tampering_detected_at_the_first_bad_record(n: int, how: str, draw: st.DataObject) -> None:
    rows = build(n)
    i = draw.draw(st.integers(0, n - 2))  # index of the victim; at least one record after it
    seq = i + 1
    if how == "flip":
        s, rec, h = rows[i]
        b = draw.draw(st.integers(0, len(rec) - 1))
        rows[i] = (s, rec[:b] + bytes([rec[b] ^ 0x40]) + rec[b + 1:], h)
        want = (seq, "mismatch")
    elif how == "delete":
        del rows[i]
        want = (seq, "gap")
    elif how == "insert":
        rec = canonical_record_bytes(seq, b"forged", b"{}", 0, "x")
        rows.insert(i, (seq, rec, chain_hash(rows[i - 1][2] if i else GENESIS, rec)))
        # the forged row fits the chain; the real record it displaced then repeats its seq
        want = (seq + 1, "reordered")
    elif how == "swap":
        rows[i], rows[i + 1] = rows[i + 1], rows[i]
        want = (seq, "reordered")
    elif how == "truncate":
        rows = rows[:i + 1]
        want = (seq + 1, "truncated")
    else:  # rewrite record i and recompute its own hash only
        s, rec, _ = rows[i]
        rec = rec + b"!"
        rows[i] = (s, rec, chain_hash(rows[i - 1][2] if i else GENESIS, rec))
        want = (seq + 1, "mismatch")
    fault = verify_chain(rows, end_seq=n)
    assert fault is not None
    assert (fault.seq, fault.kind) == want


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 80), st.data())
def test_fully_rehashed_tampering_caught_in_the_right_checkpoint_interval(n: int,
                                                                          draw: st.DataObject) -> None:
    rows = build(n)
    recs = [r for _, r, _ in rows]
    sizes = sorted(set(draw.draw(st.lists(st.integers(1, n), min_size=1, max_size=5))) | {n})
    roots = {s: mth(recs[:s]) for s in sizes}
    assert verify_chain(rows, roots=roots, end_seq=n) is None
    i = draw.draw(st.integers(0, n - 1))
    s, rec, h = rows[i]
    rows[i] = (s, rec + b"x", h)
    fault = verify_chain(rehash_from(rows, i), roots=roots, end_seq=n)
    first_cover = min(x for x in sizes if x >= i + 1)
    assert fault is not None and (fault.seq, fault.kind) == (first_cover, "root")
