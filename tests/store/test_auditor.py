"""The standalone auditor, run as a real subprocess on proof files, both as
``python -m stackwatch.store.auditor`` and as a copied single file that cannot import stackwatch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackwatch.store import auditor
from stackwatch.store.auditor import AuditFailure, audit, consistency_document, inclusion_document
from stackwatch.store.chain import canonical_record_bytes
from stackwatch.store.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    root_from_inclusion_proof,
    verify_consistency,
)
from stackwatch.store.seal import Checkpoint, generate_signing_key, public_key_bytes, sign_checkpoint

AUDITOR_FILE = Path(auditor.__file__)
SIGNER = generate_signing_key()
PUB = public_key_bytes(SIGNER)
RECORDS = [canonical_record_bytes(seq, f"record {seq}".encode(), b"{}", 1_700_000_000_000_000 + seq, "test")
           for seq in range(1, 101)]
LEAVES = [leaf_hash(r) for r in RECORDS]


def get(start: int, end: int) -> list[bytes]:
    return LEAVES[start:end]


def checkpoint(size: int, leaves: list[bytes] = LEAVES, signer=SIGNER) -> tuple[bytes, bytes]:
    body = Checkpoint("sw-test", size // 10, size, root(leaves[:size]), 1_700_000_000_000_000).to_bytes()
    return body, sign_checkpoint(signer, body)


def inclusion_doc(index: int = 41, size: int = 100) -> dict:
    return inclusion_document(index, size, inclusion_proof(index, size, get), *checkpoint(size), PUB,
                              record=RECORDS[index])


def consistency_doc(old: int = 64, new: int = 100) -> dict:
    return consistency_document(old, new, consistency_proof(old, new, get), *checkpoint(new), PUB,
                                old_checkpoint=checkpoint(old))


def run(tmp_path: Path, doc: object, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return subprocess.run([sys.executable, "-m", "stackwatch.store.auditor", str(path), *args],
                          capture_output=True, text=True, timeout=60)


def test_inclusion_proof_ok(tmp_path: Path) -> None:
    result = run(tmp_path, inclusion_doc())
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: leaf 41 (seq 42) is in the tree of size 100")
    assert "pin it with --key" in result.stdout


def test_inclusion_proof_with_pinned_pem_key(tmp_path: Path) -> None:
    from stackwatch.store.seal import write_public_key
    write_public_key(tmp_path / "sign.pub", SIGNER)
    result = run(tmp_path, inclusion_doc(), "--key", str(tmp_path / "sign.pub"))
    assert result.returncode == 0, result.stdout
    assert "trusted key" in result.stdout


def test_other_trusted_key_fails(tmp_path: Path) -> None:
    other = public_key_bytes(generate_signing_key()).hex()
    result = run(tmp_path, inclusion_doc(), "--key", other)
    assert result.returncode == 1
    assert result.stdout.strip() == "FAIL: the proof's public key is not the trusted key"


def test_a_proof_signed_by_another_key_fails(tmp_path: Path) -> None:
    doc = inclusion_doc()
    doc["public_key"] = public_key_bytes(generate_signing_key()).hex()
    result = run(tmp_path, doc)
    assert result.returncode == 1
    assert "signature does not verify" in result.stdout


def test_flipped_proof_byte_fails(tmp_path: Path) -> None:
    doc = inclusion_doc()
    h = doc["proof"][2]
    doc["proof"][2] = ("0" if h[0] != "0" else "1") + h[1:]
    result = run(tmp_path, doc)
    assert result.returncode == 1
    assert result.stdout.startswith("FAIL: proof leads to root")


def test_altered_record_fails(tmp_path: Path) -> None:
    doc = inclusion_doc()
    doc["record"] = RECORDS[41].replace(b"record", b"RECORD").hex()
    result = run(tmp_path, doc)
    assert result.returncode == 1 and "proof leads to root" in result.stdout


def test_record_of_another_seq_fails(tmp_path: Path) -> None:
    doc = inclusion_doc()
    doc["record"] = RECORDS[40].hex()
    result = run(tmp_path, doc)
    assert result.stdout.strip() == "FAIL: record says seq 41, the proof is for leaf 41 (seq 42)"


def test_checkpoint_for_another_size_fails(tmp_path: Path) -> None:
    doc = inclusion_doc()
    body, sig = checkpoint(99)
    doc["checkpoint"] = {"body": body.decode(), "signature": sig.hex()}
    result = run(tmp_path, doc)
    assert result.stdout.strip() == "FAIL: checkpoint is for tree size 99, the proof for 100"


def test_wrong_length_proof_fails(tmp_path: Path) -> None:
    doc = inclusion_doc()
    doc["proof"] = doc["proof"][:-1]
    assert "wrong length" in run(tmp_path, doc).stdout


def test_unsigned_root_is_said_plainly(tmp_path: Path) -> None:
    doc = inclusion_doc()
    del doc["checkpoint"]
    doc["root"] = root(LEAVES).hex()
    result = run(tmp_path, doc)
    assert result.returncode == 0 and "UNSIGNED root" in result.stdout


def test_consistency_proof_ok_against_a_kept_checkpoint(tmp_path: Path) -> None:
    doc = consistency_doc()
    old = doc.pop("old_checkpoint")
    (tmp_path / "old.json").write_text(json.dumps(old))
    result = run(tmp_path, doc, "--old-checkpoint", str(tmp_path / "old.json"))
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith("OK: tree of size 64")


@pytest.mark.parametrize("old", [64, 37])
def test_rewritten_history_fails_consistency(tmp_path: Path, old: int) -> None:
    """The auditor kept checkpoint ``old``; the log then rewrote record 10 and re-signed everything."""
    forged = list(LEAVES)
    forged[9] = leaf_hash(b"rewritten")
    doc = consistency_document(old, 100, consistency_proof(old, 100, lambda s, e: forged[s:e]),
                               *checkpoint(100, forged), PUB, old_checkpoint=checkpoint(old))
    result = run(tmp_path, doc)
    assert result.returncode == 1
    assert result.stdout.startswith("FAIL: proof does not lead to the")
    assert "prefix" in result.stdout or "does not extend" in result.stdout


def test_shrunk_log_fails_consistency(tmp_path: Path) -> None:
    doc = consistency_document(100, 64, [], *checkpoint(64), PUB, old_checkpoint=checkpoint(100))
    result = run(tmp_path, doc)
    assert result.stdout.strip() == "FAIL: old size 100 is larger than new size 64: the log shrank"


@pytest.mark.parametrize(("content", "reason"), [
    ("{not json", "is not valid JSON"),
    ("[]", "must hold a JSON object"),
    ('{"format": "other"}', "unknown format"),
    ('{"format": "stackwatch-proof/v1", "type": "x", "proof": []}', "unknown proof type"),
    ('{"format": "stackwatch-proof/v1", "type": "inclusion", "proof": ["zz"]}', "not valid hex"),
    ('{"format": "stackwatch-proof/v1", "type": "inclusion", "proof": [], "leaf_index": -1}', "non-negative"),
])
def test_malformed_proof_files_fail_cleanly(tmp_path: Path, content: str, reason: str) -> None:
    result = run(tmp_path, content)
    assert result.returncode == 1 and result.stdout.startswith("FAIL:") and reason in result.stdout
    assert result.stderr == ""


def test_missing_file_fails(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "stackwatch.store.auditor", str(tmp_path / "absent.json")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stdout.startswith("FAIL: cannot read")


def test_copied_single_file_runs_without_stackwatch(tmp_path: Path) -> None:
    copy = tmp_path / "auditor.py"
    shutil.copy(AUDITOR_FILE, copy)
    (tmp_path / "proof.json").write_text(json.dumps(consistency_doc(37, 100)))
    blocker = textwrap.dedent(f"""
        import runpy, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "stackwatch" or name.startswith("stackwatch."):
                    raise ImportError("stackwatch is not available here")
        sys.meta_path.insert(0, Block())
        sys.argv = ["auditor.py", {str(tmp_path / "proof.json")!r}, "--key", {PUB.hex()!r}]
        runpy.run_path({str(copy)!r}, run_name="__main__")
    """)
    result = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, cwd=tmp_path,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: tree of size 37")


# --- the auditor's own copy of the RFC 9162 verifiers agrees with merkle.py ---

@settings(max_examples=200, deadline=None)
@given(st.integers(1, 100), st.data())
def test_auditor_inclusion_agrees_with_merkle(size: int, draw: st.DataObject) -> None:
    index = draw.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, size, get)
    cut = draw.draw(st.integers(0, len(proof)))
    for p in (proof, proof[:cut]):
        assert auditor.root_from_inclusion(LEAVES[index], index, size, p) == root_from_inclusion_proof(
            LEAVES[index], index, size, p)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 100), st.data())
def test_auditor_consistency_agrees_with_merkle(new: int, draw: st.DataObject) -> None:
    old = draw.draw(st.integers(1, new))
    proof = consistency_proof(old, new, get)
    old_root = draw.draw(st.sampled_from([root(LEAVES[:old]), root(LEAVES[: max(old - 1, 1)])]))
    ok = auditor.check_consistency(old, new, old_root, root(LEAVES[:new]), proof) is None
    assert ok == verify_consistency(old, new, old_root, root(LEAVES[:new]), proof)


def test_audit_in_process_reports_reason() -> None:
    doc = inclusion_doc()
    doc["tree_size"] = 101
    with pytest.raises(AuditFailure, match="checkpoint is for tree size 100"):
        audit(doc)
