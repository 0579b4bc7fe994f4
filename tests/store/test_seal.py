"""Checkpoints, Ed25519 signatures, the sealing ratchet, and verify_seals against every
tampering journald FSS missed: truncate-and-continue, re-sealing with a newer key, gaps, and
an unsealed tail that must never read as PASS."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackwatch.store.merkle import mth
from stackwatch.store.seal import (
    NO_PREV,
    Checkpoint,
    KeyFileError,
    SealedCheckpoint,
    Sealer,
    epoch_proof,
    find_key_epoch,
    format_initial_key,
    generate_signing_key,
    key_for_epoch,
    load_private_key,
    load_public_key,
    next_key,
    parse_initial_key,
    public_key_bytes,
    read_sealing_key,
    seal,
    sign_checkpoint,
    verify_checkpoint_signature,
    verify_seals,
    write_private_key,
    write_public_key,
    write_sealing_key,
)

K0 = bytes(range(32))
ROOT8 = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
CP = Checkpoint("sw-test", 3, 8, ROOT8, 1_700_000_000_000_000, NO_PREV)
CP_TEXT = (b"stackwatch-checkpoint v1\nlog sw-test\nepoch 3\nsize 8\n"
           b"root 5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328\n"
           b"time 1700000000000000\nprev " + b"0" * 64 + b"\n")


# --- checkpoints ---

def test_checkpoint_canonical_bytes_vector() -> None:
    assert CP.to_bytes() == CP_TEXT
    assert Checkpoint.from_bytes(CP_TEXT) == CP
    assert CP.hash() == hashlib.sha256(CP_TEXT).digest()


@pytest.mark.parametrize("bad", [
    CP_TEXT.replace(b"size 8", b"size 08"),
    CP_TEXT.replace(b"size 8", b"size +8"),
    CP_TEXT.replace(b"5dc9", b"5DC9"),
    CP_TEXT + b"extra\n",
    CP_TEXT[:-1],
    CP_TEXT.replace(b"epoch 3\nsize 8", b"size 8\nepoch 3"),
    CP_TEXT.replace(b"log sw-test", b"log  sw-test"),
    b"",
])
def test_checkpoint_parser_accepts_only_canonical_bytes(bad: bytes) -> None:
    with pytest.raises(ValueError):
        Checkpoint.from_bytes(bad)


def test_checkpoint_rejects_bad_fields() -> None:
    with pytest.raises(ValueError):
        Checkpoint("a\nb", 0, 0, ROOT8, 0)
    with pytest.raises(ValueError):
        Checkpoint("x", -1, 0, ROOT8, 0)
    with pytest.raises(ValueError):
        Checkpoint("x", 0, 0, ROOT8[:31], 0)


def test_signature_verifies_and_detects_any_change() -> None:
    key = generate_signing_key()
    sig = sign_checkpoint(key, CP)
    pub = public_key_bytes(key)
    assert verify_checkpoint_signature(pub, CP_TEXT, sig)
    assert not verify_checkpoint_signature(pub, CP_TEXT.replace(b"size 8", b"size 9"), sig)
    assert not verify_checkpoint_signature(public_key_bytes(generate_signing_key()), CP_TEXT, sig)
    assert not verify_checkpoint_signature(pub, CP_TEXT, sig[:-1] + bytes([sig[-1] ^ 1]))
    assert not verify_checkpoint_signature(b"short", CP_TEXT, sig)


def test_ed25519_rfc8032_test_vector_1() -> None:
    """The cryptography backend agrees with RFC 8032 §7.1 TEST 1 (empty message)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    sk = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
    assert public_key_bytes(sk).hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert sign_checkpoint(sk, b"").hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")


# --- key files ---

def test_private_key_file_is_0600_and_round_trips(tmp_path: Path) -> None:
    key = generate_signing_key()
    write_private_key(tmp_path / "sign.key", key)
    assert stat.S_IMODE(os.stat(tmp_path / "sign.key").st_mode) == 0o600
    assert public_key_bytes(load_private_key(tmp_path / "sign.key")) == public_key_bytes(key)


def test_private_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    write_private_key(tmp_path / "sign.key", generate_signing_key())
    os.chmod(tmp_path / "sign.key", 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_private_key(tmp_path / "sign.key")


def test_public_key_file_pem_and_raw_hex(tmp_path: Path) -> None:
    key = generate_signing_key()
    write_public_key(tmp_path / "sign.pub", key)
    assert public_key_bytes(load_public_key(tmp_path / "sign.pub")) == public_key_bytes(key)
    (tmp_path / "raw.pub").write_text(public_key_bytes(key).hex() + "\n")
    assert public_key_bytes(load_public_key(tmp_path / "raw.pub")) == public_key_bytes(key)
    (tmp_path / "junk.pub").write_text("nope")
    with pytest.raises(KeyFileError):
        load_public_key(tmp_path / "junk.pub")


def test_missing_key_file_is_a_key_file_error(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError):
        load_private_key(tmp_path / "absent")
    with pytest.raises(KeyFileError):
        read_sealing_key(tmp_path / "absent")


# --- ratchet ---

def test_ratchet_vector() -> None:
    k1 = hmac.new(K0, b"stackwatch-ratchet", "sha256").digest()
    assert next_key(K0) == k1
    assert key_for_epoch(K0, 2) == hmac.new(k1, b"stackwatch-ratchet", "sha256").digest()
    assert key_for_epoch(K0, 0) == K0


def test_seal_vector() -> None:
    msg = b"stackwatch-seal\x00" + (3).to_bytes(8, "big") + CP_TEXT
    assert seal(3, K0, CP_TEXT) == hmac.new(K0, msg, "sha256").digest()


def test_initial_key_text_round_trips_and_catches_typos() -> None:
    text = format_initial_key(K0)
    assert parse_initial_key(text) == K0
    typo = ("1" if text[0] != "1" else "2") + text[1:]
    with pytest.raises(ValueError, match="checksum"):
        parse_initial_key(typo)
    with pytest.raises(ValueError):
        parse_initial_key("abc")


def test_sealer_keeps_only_the_current_key(tmp_path: Path) -> None:
    path = tmp_path / "seal.key"
    sealer = Sealer.create(path, K0)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    cp0 = Checkpoint("sw-test", 0, 0, mth([]), 1)
    tag = sealer.seal(cp0)
    assert tag == seal(0, K0, cp0.to_bytes())
    on_disk = read_sealing_key(path)
    assert on_disk == (1, next_key(K0))
    assert K0 not in path.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["seal.key"]  # no temporary left behind
    assert Sealer(path).epoch == 1


def test_sealer_refuses_a_checkpoint_of_another_epoch(tmp_path: Path) -> None:
    sealer = Sealer.create(tmp_path / "seal.key", K0)
    with pytest.raises(ValueError):
        sealer.seal(Checkpoint("sw-test", 1, 0, mth([]), 1))
    with pytest.raises(ValueError):
        sealer.advance_to(-1)


def test_sealing_key_file_rejects_junk(tmp_path: Path) -> None:
    path = tmp_path / "seal.key"
    write_sealing_key(path, 5, K0)
    assert read_sealing_key(path) == (5, K0)
    path.write_bytes(b"SWK1" + bytes(10))
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError):
        read_sealing_key(path)


# --- verify_seals ---

def make_log(sizes: list[int], k0: bytes = K0, sign_key=None) -> list[SealedCheckpoint]:
    """One sealed, signed checkpoint per epoch; leaves are the sizes' record numbers."""
    out, prev, key = [], NO_PREV, k0
    for epoch, size in enumerate(sizes):
        cp = Checkpoint("sw-test", epoch, size, mth([str(i).encode() for i in range(size)]),
                        1_700_000_000_000_000 + epoch, prev)
        body = cp.to_bytes()
        sig = sign_checkpoint(sign_key, body) if sign_key else b""
        out.append(SealedCheckpoint(body, seal(epoch, key, body), sig))
        prev, key = cp.hash(), next_key(key)
    return out


def kinds(report) -> list[tuple[str, str]]:
    return [(f.level, f.kind) for f in report.findings]


def test_clean_sealed_log_passes() -> None:
    sk = generate_signing_key()
    report = verify_seals(K0, make_log([0, 3, 10, 10, 25], sign_key=sk), 25,
                          public_key=public_key_bytes(sk), sealer_epoch=5)
    assert report.status == "PASS" and report.ok
    assert report.sealed_size == 25 and report.epochs == 5
    assert report.roots[10] == mth([str(i).encode() for i in range(10)])


def test_unsealed_tail_is_a_warning_not_a_pass() -> None:
    report = verify_seals(K0, make_log([0, 3, 10]), 14)
    assert report.status == "WARN" and not report.ok
    assert kinds(report) == [("WARN", "unsealed-tail")]
    assert report.findings[0].first_seq == 11


def test_nothing_sealed_with_records_is_a_warning() -> None:
    report = verify_seals(K0, [], 5)
    assert report.status == "WARN"
    assert verify_seals(K0, [], 0).status == "PASS"


def test_truncate_and_continue_is_caught() -> None:
    """CVE-2023-31438: cut the log back, keep appending, seal with the current key."""
    log = make_log([0, 10, 20])
    k3 = key_for_epoch(K0, 3)
    prev = Checkpoint.from_bytes(log[2].body).hash()
    cp = Checkpoint("sw-test", 3, 12, mth([b"x"] * 12), 1_700_000_000_000_009, prev)
    log.append(SealedCheckpoint(cp.to_bytes(), seal(3, k3, cp.to_bytes())))
    report = verify_seals(K0, log, 12)
    assert report.status == "FAIL"
    bad = report.first_failure
    assert (bad.kind, bad.epoch, bad.first_seq) == ("truncated", 3, 13)


def test_store_smaller_than_the_sealed_size_is_truncation() -> None:
    report = verify_seals(K0, make_log([0, 10, 20]), 15)
    assert [(f.kind, f.first_seq) for f in report.findings] == [("truncated", 16)]


def test_resealing_with_a_later_key_is_named() -> None:
    """CVE-2023-31439: the intruder (holding k_4) rewrites epoch 1 and seals it again."""
    log = make_log([0, 10, 20, 30])
    old = Checkpoint.from_bytes(log[1].body)
    forged = Checkpoint("sw-test", 1, 10, mth([b"forged"] * 10), old.time_us, old.prev)
    k4 = key_for_epoch(K0, 4)
    log[1] = SealedCheckpoint(forged.to_bytes(), seal(1, k4, forged.to_bytes()))
    report = verify_seals(K0, log, 30, sealer_epoch=4)
    bad = report.first_failure
    assert (bad.kind, bad.epoch, bad.first_seq) == ("resealed", 1, 1)
    assert "later epoch 4" in bad.message
    assert report.sealed_size == 0
    assert 10 not in report.roots  # the forged root is not handed on as trusted


def test_resealing_relabelled_as_the_later_epoch_is_named() -> None:
    log = make_log([0, 10, 20])
    body = log[1].body
    log[1] = SealedCheckpoint(body, seal(3, key_for_epoch(K0, 3), body))
    assert verify_seals(K0, log, 20).first_failure.kind == "resealed"


def test_missing_epoch_is_a_gap() -> None:
    log = make_log([0, 10, 20, 30])
    del log[2]
    report = verify_seals(K0, log, 30)
    first = report.first_failure
    assert (first.kind, first.epoch, first.first_seq) == ("gap", 2, 11)
    assert "broken-link" in [k for _, k in kinds(report)]


def test_deleted_trailing_seals_are_a_gap_against_the_sealer_epoch() -> None:
    """systemd#15425: drop the last seals so the tail looks merely unsealed."""
    log = make_log([0, 10, 20, 30])
    report = verify_seals(K0, log[:2], 30, sealer_epoch=4)
    assert ("FAIL", "gap") in kinds(report) and ("WARN", "unsealed-tail") in kinds(report)
    assert report.status == "FAIL"


def test_key_file_rolled_back_is_reported() -> None:
    report = verify_seals(K0, make_log([0, 10, 20]), 20, sealer_epoch=1)
    assert kinds(report) == [("FAIL", "key-behind")]


def test_replaced_checkpoint_fails_seal_signature_and_link() -> None:
    sk = generate_signing_key()
    log = make_log([0, 10, 20], sign_key=sk)
    old = Checkpoint.from_bytes(log[1].body)
    forged = Checkpoint("sw-test", 1, 10, mth([b"other"] * 10), old.time_us, old.prev)
    log[1] = SealedCheckpoint(forged.to_bytes(), log[1].tag, log[1].signature)
    report = verify_seals(K0, log, 20, public_key=public_key_bytes(sk))
    assert kinds(report) == [("FAIL", "bad-seal"), ("FAIL", "bad-signature"), ("FAIL", "broken-link")]
    assert report.first_failure.epoch == 1


def test_reordered_checkpoints_fail() -> None:
    log = make_log([0, 10, 20])
    log[1], log[2] = log[2], log[1]
    assert verify_seals(K0, log, 20).first_failure.kind == "gap"
    assert "reordered" in [f.kind for f in verify_seals(K0, log, 20).findings]


def test_wrong_initial_key_fails_every_seal() -> None:
    report = verify_seals(next_key(K0), make_log([0, 10]), 10)
    assert [f.kind for f in report.findings] == ["bad-seal", "bad-seal"]


def test_malformed_stored_checkpoint_fails() -> None:
    log = make_log([0, 10])
    log[1] = SealedCheckpoint(b"garbage", log[1].tag)
    assert verify_seals(K0, log, 10).first_failure.kind == "malformed"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=12), st.data())
def test_any_single_tampering_is_flagged_and_clean_logs_pass(steps: list[int], draw: st.DataObject) -> None:
    sizes = [sum(steps[: i + 1]) for i in range(len(steps))]
    sk = generate_signing_key()
    pub = public_key_bytes(sk)
    log = make_log(sizes, sign_key=sk)
    n = len(log)
    assert verify_seals(K0, log, sizes[-1], public_key=pub, sealer_epoch=n).status == "PASS"
    how = draw.draw(st.sampled_from(
        ["flip-body", "flip-tag", "flip-sig", "delete", "reseal", "swap", "truncate"]))
    i = draw.draw(st.integers(0, n - 1))
    store_size = sizes[-1]
    if how in ("flip-body", "flip-tag", "flip-sig"):
        field_ = {"flip-body": 0, "flip-tag": 1, "flip-sig": 2}[how]
        value = log[i][field_]
        b = draw.draw(st.integers(0, len(value) - 1))
        parts = list(log[i])
        parts[field_] = value[:b] + bytes([value[b] ^ 0x01]) + value[b + 1:]
        log[i] = SealedCheckpoint(*parts)
    elif how == "delete":
        del log[i]
    elif how == "reseal":
        later = draw.draw(st.integers(i + 1, n + 3))
        tag = seal(i, key_for_epoch(K0, later), log[i].body)
        log[i] = SealedCheckpoint(log[i].body, tag, log[i].signature)
    elif how == "swap":
        if n < 2:
            return
        j = (i + 1) % n
        log[i], log[j] = log[j], log[i]
        i = min(i, j)
    else:
        store_size = draw.draw(st.integers(0, max(sizes[-1] - 1, 0)))
        if store_size == sizes[-1]:
            return
    report = verify_seals(K0, log, store_size, public_key=pub, sealer_epoch=n)
    assert report.status == "FAIL"
    first = report.first_failure
    if how == "reseal":
        assert (first.kind, first.epoch) == ("resealed", i)
    elif how in ("flip-body", "flip-tag", "flip-sig", "delete", "swap"):
        assert first.epoch == i or first.kind == "malformed"
    else:
        assert first.kind == "truncated"


# --- seals that bind the signing key (issue #13) ---

def test_bound_seal_vector() -> None:
    pub = bytes(range(100, 132))
    msg = b"stackwatch-seal2\x00" + (3).to_bytes(8, "big") + pub + CP_TEXT
    assert seal(3, K0, CP_TEXT, pub) == hmac.new(K0, msg, "sha256").digest()
    assert seal(3, K0, CP_TEXT, pub) != seal(3, K0, CP_TEXT)


def bound_log(sizes: list[int], pub: bytes) -> list[SealedCheckpoint]:
    return [SealedCheckpoint(item.body, seal(epoch, key_for_epoch(K0, epoch), item.body, pub))
            for epoch, item in enumerate(make_log(sizes))]


def test_a_bound_seal_passes_with_its_signing_key() -> None:
    pub = public_key_bytes(generate_signing_key())
    report = verify_seals(K0, bound_log([0, 3, 10], pub), 10, signer_of=lambda _e: pub)
    assert report.status == "PASS" and report.unbound == []


def test_a_bound_seal_fails_with_another_signing_key() -> None:
    pub, other = (public_key_bytes(generate_signing_key()) for _ in range(2))
    report = verify_seals(K0, bound_log([0, 3, 10], pub), 10, signer_of=lambda _e: other)
    assert kinds(report) == [("FAIL", "bad-seal")] * 3
    assert report.first_failure.first_seq == 1 and "signing key" in report.first_failure.message


def test_seals_made_before_binding_pass_and_are_listed_unbound() -> None:
    pub = public_key_bytes(generate_signing_key())
    report = verify_seals(K0, make_log([0, 3, 10]), 10, signer_of=lambda _e: pub)
    assert report.status == "PASS" and report.unbound == [0, 1, 2]


def test_the_sealer_binds_the_key_it_is_given(tmp_path: Path) -> None:
    pub = public_key_bytes(generate_signing_key())
    cp0 = Checkpoint("sw-test", 0, 0, mth([]), 1)
    sealer = Sealer.create(tmp_path / "seal.key", K0)
    assert sealer.tag(cp0, pub) == seal(0, K0, cp0.to_bytes(), pub)
    assert sealer.seal(cp0, pub) == seal(0, K0, cp0.to_bytes(), pub)


def test_epoch_proof_is_made_by_that_epochs_key_only(tmp_path: Path) -> None:
    sealer = Sealer.create(tmp_path / "seal.key", K0)
    sealer.advance_to(5)
    epoch, proof = sealer.proof()
    assert epoch == 5 and proof == epoch_proof(5, key_for_epoch(K0, 5))
    assert proof != epoch_proof(4, key_for_epoch(K0, 5))  # a later key cannot prove an earlier epoch
    assert proof != epoch_proof(5, key_for_epoch(K0, 6))


def test_find_key_epoch_names_the_epoch_a_key_belongs_to() -> None:
    assert find_key_epoch(K0, key_for_epoch(K0, 9), 4, 100) == 9
    assert find_key_epoch(K0, key_for_epoch(K0, 9), 10, 100) is None
    assert find_key_epoch(K0, os.urandom(32), 0, 50) is None
