"""The Merkle tree against the RFC 6962 reference vectors (as published in the
google/certificate-transparency and transparency-dev/merkle test suites) and against a
brute-force implementation written straight from the RFC's recursive definitions."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackwatch.store.merkle import (
    EMPTY_ROOT,
    MerkleAccumulator,
    MerkleReader,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    mth,
    node_hash,
    root,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
)]
ROOTS = [bytes.fromhex(h) for h in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]
# (leaf index 0-based, tree size, proof); upstream lists the index 1-based.
INCLUSION = [
    (0, 1, []),
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
HASHES = [leaf_hash(x) for x in LEAVES]


# --- brute force, straight from RFC 6962 §2.1 (independent of the code under test) ---

def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) <= 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [ref_mth(d)]
    k = _k(len(d))
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def data(n: int) -> list[bytes]:
    return [i.to_bytes(4, "big") for i in range(n)]


def getter(hashes: list[bytes]):
    return lambda start, end: hashes[start:end]


def flip(b: bytes, i: int) -> bytes:
    i %= len(b)
    return b[:i] + bytes([b[i] ^ 0x01]) + b[i + 1:]


# --- reference vectors ---

def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root([]) == EMPTY_ROOT == MerkleAccumulator().root()


@pytest.mark.parametrize("size", range(1, 9))
def test_root_matches_reference_vector(size: int) -> None:
    assert mth(LEAVES[:size]) == ROOTS[size - 1]
    assert ref_mth(LEAVES[:size]) == ROOTS[size - 1]


def test_leaf_and_node_hashes_match_reference_vectors() -> None:
    assert HASHES[0].hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert HASHES[4].hex() == "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
    assert node_hash(HASHES[4], HASHES[5]).hex() == (
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a")


@pytest.mark.parametrize("size", range(1, 9))
def test_accumulator_root_after_each_append_matches_vector(size: int) -> None:
    acc = MerkleAccumulator()
    for h in HASHES[:size]:
        acc.append(h)
    assert acc.size == size
    assert acc.root() == ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_proof_matches_reference_vector(index: int, size: int, proof: list[str]) -> None:
    got = inclusion_proof(index, size, getter(HASHES))
    assert [h.hex() for h in got] == proof
    assert got == ref_path(index, LEAVES[:size])
    assert verify_inclusion(HASHES[index], index, size, got, ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_proof_matches_reference_vector(old: int, new: int, proof: list[str]) -> None:
    got = consistency_proof(old, new, getter(HASHES))
    assert [h.hex() for h in got] == proof
    assert got == (ref_subproof(old, LEAVES[:new], True) if old < new else [])
    assert verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], got)


# --- verifier edge cases ---

def test_inclusion_rejects_index_out_of_range() -> None:
    assert not verify_inclusion(HASHES[0], 8, 8, [], ROOTS[7])
    assert not verify_inclusion(HASHES[0], -1, 8, [], ROOTS[7])
    assert not verify_inclusion(HASHES[0], 0, 0, [], EMPTY_ROOT)


def test_inclusion_rejects_proof_too_long_or_too_short() -> None:
    proof = inclusion_proof(5, 8, getter(HASHES))
    assert not verify_inclusion(HASHES[5], 5, 8, [*proof, proof[0]], ROOTS[7])
    assert not verify_inclusion(HASHES[5], 5, 8, proof[:-1], ROOTS[7])
    assert root_from_inclusion_proof(HASHES[5], 5, 8, proof[:-1]) is None


def test_inclusion_rejects_wrong_size_hashes() -> None:
    proof = inclusion_proof(0, 8, getter(HASHES))
    assert not verify_inclusion(HASHES[0], 0, 8, [proof[0][:31], *proof[1:]], ROOTS[7])
    assert not verify_inclusion(HASHES[0][:31], 0, 8, proof, ROOTS[7])


def test_consistency_equal_sizes_needs_empty_proof_and_equal_roots() -> None:
    assert verify_consistency(5, 5, ROOTS[4], ROOTS[4], [])
    assert not verify_consistency(5, 5, ROOTS[4], ROOTS[3], [])
    assert not verify_consistency(5, 5, ROOTS[4], ROOTS[4], [ROOTS[4]])


def test_consistency_from_empty_tree() -> None:
    assert consistency_proof(0, 8, getter(HASHES)) == []
    assert verify_consistency(0, 8, EMPTY_ROOT, ROOTS[7], [])
    assert not verify_consistency(0, 8, ROOTS[0], ROOTS[7], [])


def test_consistency_rejects_shrinking_tree_and_empty_proof() -> None:
    assert not verify_consistency(8, 6, ROOTS[7], ROOTS[5], [])
    assert not verify_consistency(6, 8, ROOTS[5], ROOTS[7], [])
    with pytest.raises(ValueError):
        consistency_proof(8, 6, getter(HASHES))


def test_consistency_rejects_swapped_roots() -> None:
    proof = consistency_proof(6, 8, getter(HASHES))
    assert not verify_consistency(6, 8, ROOTS[7], ROOTS[5], proof)


def test_inclusion_proof_rejects_bad_index() -> None:
    with pytest.raises(ValueError):
        inclusion_proof(8, 8, getter(HASHES))


def test_short_leaf_range_is_an_error_not_a_wrong_proof() -> None:
    with pytest.raises(LookupError):
        inclusion_proof(0, 8, lambda s, e: HASHES[s:e][:-1] if e - s > 1 else HASHES[s:e])


# --- accumulator state, cache ---

def test_accumulator_state_round_trips_and_continues() -> None:
    acc = MerkleAccumulator()
    acc.extend(HASHES[:5])
    restored = MerkleAccumulator.from_bytes(acc.to_bytes())
    assert restored.size == 5 and restored.root() == ROOTS[4]
    restored.extend(HASHES[5:])
    assert restored.root() == ROOTS[7]


@pytest.mark.parametrize("bad", [b"", b"XXXX" + bytes(8), b"SWM1" + (3).to_bytes(8, "big") + bytes(32)])
def test_accumulator_rejects_malformed_state(bad: bytes) -> None:
    with pytest.raises(ValueError):
        MerkleAccumulator.from_bytes(bad)


def test_node_sink_feeds_a_cache_that_proofs_then_use() -> None:
    hashes = [leaf_hash(d) for d in data(5000)]
    cache: dict[tuple[int, int], bytes] = {}
    acc = MerkleAccumulator(node_sink=lambda lvl, idx, h: cache.__setitem__((lvl, idx), h), sink_min_level=4)
    acc.extend(hashes)
    assert cache[(4, 0)] == root(hashes[:16])
    assert cache[(12, 0)] == root(hashes[:4096])
    assert acc.root() == root(hashes)
    reads: list[int] = []

    def counting(start: int, end: int) -> list[bytes]:
        reads.append(end - start)
        return hashes[start:end]

    reader = MerkleReader(counting, cache, cache_min_level=4)
    proof = reader.inclusion_proof(17, 5000)
    assert verify_inclusion(hashes[17], 17, 5000, proof, acc.root())
    assert sum(reads) < 200  # the cache answered the big subtrees; no full scan


def test_reader_fills_an_empty_cache_once() -> None:
    hashes = [leaf_hash(d) for d in data(3000)]
    cache: dict[tuple[int, int], bytes] = {}
    reads: list[int] = []
    reader = MerkleReader(lambda s, e: reads.append(e - s) or hashes[s:e], cache, cache_min_level=8)
    assert reader.root(3000) == root(hashes)
    first = sum(reads)
    reads.clear()
    assert reader.consistency_proof(2048, 3000) == ref_subproof(2048, data(3000), True)
    assert sum(reads) < first / 4


# --- properties ---

@settings(max_examples=150, deadline=None)
@given(st.integers(1, 300), st.data())
def test_every_inclusion_proof_verifies_and_matches_reference(size: int, draw: st.DataObject) -> None:
    d = data(size)
    hashes = [leaf_hash(x) for x in d]
    index = draw.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, size, getter(hashes))
    if size <= 64:
        assert proof == ref_path(index, d)
    r = root(hashes)
    assert verify_inclusion(hashes[index], index, size, proof, r)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 300), st.data())
def test_every_consistency_proof_verifies_and_matches_reference(new: int, draw: st.DataObject) -> None:
    d = data(new)
    hashes = [leaf_hash(x) for x in d]
    old = draw.draw(st.integers(1, new))
    proof = consistency_proof(old, new, getter(hashes))
    if new <= 64 and old < new:
        assert proof == ref_subproof(old, d, True)
    assert verify_consistency(old, new, root(hashes[:old]), root(hashes), proof)


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 200), st.data())
def test_any_flipped_byte_breaks_inclusion(size: int, draw: st.DataObject) -> None:
    hashes = [leaf_hash(x) for x in data(size)]
    index = draw.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, size, getter(hashes))
    r = root(hashes)
    where = draw.draw(st.sampled_from(["leaf", "root", "proof"]))
    byte = draw.draw(st.integers(0, 31))
    if where == "leaf":
        assert not verify_inclusion(flip(hashes[index], byte), index, size, proof, r)
    elif where == "root":
        assert not verify_inclusion(hashes[index], index, size, proof, flip(r, byte))
    else:
        j = draw.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:j], flip(proof[j], byte), *proof[j + 1:]]
        assert not verify_inclusion(hashes[index], index, size, bad, r)


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 200), st.data())
def test_any_flipped_byte_breaks_consistency(new: int, draw: st.DataObject) -> None:
    hashes = [leaf_hash(x) for x in data(new)]
    old = draw.draw(st.integers(1, new - 1))
    proof = consistency_proof(old, new, getter(hashes))
    old_root, new_root = root(hashes[:old]), root(hashes)
    where = draw.draw(st.sampled_from(["old", "new", "proof"]))
    byte = draw.draw(st.integers(0, 31))
    if where == "old":
        assert not verify_consistency(old, new, flip(old_root, byte), new_root, proof)
    elif where == "new":
        assert not verify_consistency(old, new, old_root, flip(new_root, byte), proof)
    else:
        j = draw.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:j], flip(proof[j], byte), *proof[j + 1:]]
        assert not verify_consistency(old, new, old_root, new_root, bad)


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 200), st.data())
def test_a_changed_old_leaf_breaks_consistency(new: int, draw: st.DataObject) -> None:
    """A log that rewrote history cannot prove it only grew."""
    hashes = [leaf_hash(x) for x in data(new)]
    old = draw.draw(st.integers(1, new - 1))
    victim = draw.draw(st.integers(0, old - 1))
    old_root = root(hashes[:old])
    forged = list(hashes)
    forged[victim] = leaf_hash(b"rewritten")
    proof = consistency_proof(old, new, getter(forged))
    assert not verify_consistency(old, new, old_root, root(forged), proof)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=8), max_size=100), st.integers(0, 100))
def test_accumulator_equals_mth_and_survives_restart_anywhere(entries: list[bytes], cut: int) -> None:
    hashes = [leaf_hash(e) for e in entries]
    cut = min(cut, len(hashes))
    acc = MerkleAccumulator()
    acc.extend(hashes[:cut])
    acc = MerkleAccumulator.from_bytes(acc.to_bytes())
    for h in hashes[cut:]:
        acc.append(h)
    assert acc.root() == ref_mth(entries)
