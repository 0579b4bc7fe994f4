"""How many epochs were sealed: the evidence ``store verify`` reads besides the checkpoints.

An intruder who deletes checkpoints (all of them, or the newest ones after truncating the log at
a checkpoint boundary) leaves a consistent-looking store. What betrays it is the ratchet:

- the **sealing key file** (``keys/seal.key``) holds ``(epoch e, k_e)``: checkpoints 0..e-1 must
  exist. Given k0, the verifier derives k_e and checks the file holds the key its epoch claims;
  an intruder who rewrites the epoch field (keeping the later key, the only one they have) is
  caught, and the key's true epoch is found by ratcheting on;
- a **restored store** (backups never carry the key) keeps ``keys/seal.epoch`` instead: the
  epoch the ratchet had reached when the backup was made and ``HMAC(k_e, ...)`` over it
  (``seal.epoch_proof``), which only the holder of k_e made and k0 checks: a lower bound;
- an **initialised** store (it has checkpoints, signers or keys, or the operator gives k0) with
  neither file has lost its evidence: FAIL, never a silent skip.

A standby's key file belongs to the signer segment it starts when promoted (one k0 after the
primary's); without that k0 it is not checked. A standby holds no evidence of its primary's
sealed epochs (that is on the primary): ``verify`` says so as a WARNING. A primary whose role was
rewritten to "standby" to dodge the check still holds its own ratchet's key: caught (``role``).
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from stackwatch.core.errors import StoreError
from stackwatch.store.record_ledger import key_paths
from stackwatch.store.seal import (
    KeyFileError,
    epoch_proof,
    find_key_epoch,
    key_for_epoch,
    read_sealing_key,
)

EPOCH_PROOF_FILE: Final = "seal.epoch"
EPOCH_PROOF_FORMAT: Final = "stackwatch-epoch-proof/v1"
KEY_SEARCH: Final = 1_000_000
"""How far past its claimed epoch a rolled-back key file's key is looked for (~1 s of HMACs)."""
MAX_EPOCH: Final = 1 << 26
"""No real ratchet gets here (one epoch a minute for 127 years); a larger claim is refused rather
than derived (it would take hours)."""


def epoch_proof_path(data_dir: Path) -> Path:
    return key_paths(data_dir)[2].with_name(EPOCH_PROOF_FILE)


def epoch_proof_doc(epoch: int, proof: bytes, from_epoch: int) -> dict[str, Any]:
    """The ``keys/seal.epoch`` document: the ratchet of the signer segment starting at
    ``from_epoch`` had reached ``epoch``."""
    return {"format": EPOCH_PROOF_FORMAT, "epoch": epoch, "proof": proof.hex(), "from_epoch": from_epoch}


def read_epoch_proof(path: Path) -> tuple[int, bytes, int]:
    try:
        doc = json.loads(path.read_text())
        if doc.get("format") != EPOCH_PROOF_FORMAT:
            raise ValueError("unknown format")
        epoch, proof, from_epoch = int(doc["epoch"]), bytes.fromhex(doc["proof"]), int(doc["from_epoch"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise StoreError(f"{path}: not an epoch proof ({exc})") from None
    if epoch < 0 or from_epoch < 0 or len(proof) != 32:
        raise StoreError(f"{path}: not an epoch proof (out of range)")
    return epoch, proof, from_epoch


@dataclass(slots=True)
class EpochEvidence:
    exact: int | None = None  # the sealer is at this epoch (key file; checked against k0 when given)
    at_least: int | None = None  # the ratchet reached at least this epoch (a restored store's proof)
    source: str = ""
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (level, kind, message)


def epoch_evidence(
    data_dir: Path, segments: list[int], initial_keys: list[bytes], *, standby: bool, initialised: bool
) -> EpochEvidence:
    """Read and (with the right k0) check the key file and the epoch proof of ``data_dir``.
    ``segments``: the first epoch of each signer segment, in order."""
    out = EpochEvidence()
    seal_path, proof_path = key_paths(data_dir)[2], epoch_proof_path(data_dir)
    # The key file belongs to the newest segment, or for a standby to the one it will start.
    owner = len(segments) if standby else len(segments) - 1
    k0 = initial_keys[owner] if owner < len(initial_keys) else None
    if seal_path.exists() and standby and len(initial_keys) >= len(segments):
        _check_standby_key(out, seal_path, initial_keys[len(segments) - 1])
    if seal_path.exists():
        _check_key_file(out, seal_path, k0, standby)
    if proof_path.exists():
        _check_proof(out, proof_path, segments, initial_keys)
    if initialised and not seal_path.exists() and not proof_path.exists():
        out.problems.append((
            "FAIL",
            "missing-key-file",
            f"the store was initialised but {seal_path} is missing (and no {EPOCH_PROOF_FILE} of a "
            "restore): the evidence of how many epochs were sealed was deleted",
        ))
    return out


def _check_standby_key(out: EpochEvidence, path: Path, primary_k0: bytes) -> None:
    """A standby's own key never comes from its primary's ratchet."""
    try:
        epoch, key = read_sealing_key(path)
    except KeyFileError:
        return  # reported by _check_key_file
    if epoch <= MAX_EPOCH and hmac.compare_digest(key_for_epoch(primary_k0, epoch), key):
        out.exact, out.source = epoch, "the sealing key file"
        out.problems.append((
            "FAIL",
            "role",
            "the store says it is a standby but its key file holds the primary's sealing key: "
            "the role was rewritten (so that the sealed epochs are not checked)",
        ))


def _check_key_file(out: EpochEvidence, path: Path, k0: bytes | None, standby: bool) -> None:
    try:
        epoch, key = read_sealing_key(path)
    except KeyFileError as exc:
        out.problems.append(("FAIL", "key-file", f"the sealing key file cannot be read: {exc}"))
        return
    if epoch > MAX_EPOCH:
        out.problems.append(("FAIL", "key-file", f"{path} claims epoch {epoch}: not a real ratchet"))
        return
    if k0 is None:
        if not standby:
            out.exact, out.source = epoch, "the sealing key file (not checked: no k0)"
        return
    if hmac.compare_digest(key_for_epoch(k0, epoch), key):
        out.exact, out.source = epoch, "the sealing key file"
        return
    real = find_key_epoch(k0, key, epoch + 1, epoch + KEY_SEARCH)
    if real is not None:
        out.exact, out.source = real, "the sealing key file"
        out.problems.append((
            "FAIL",
            "key-file",
            f"{path} claims epoch {epoch} but holds the key of epoch {real}: the file was rolled back "
            f"(epochs {epoch}..{real - 1} were sealed)",
        ))
    else:
        out.problems.append((
            "FAIL",
            "key-file",
            f"{path} claims epoch {epoch} but does not hold that epoch's key derived from k0: it was "
            "rolled back, replaced, or belongs to another store",
        ))


def _check_proof(out: EpochEvidence, path: Path, segments: list[int], initial_keys: list[bytes]) -> None:
    try:
        epoch, proof, from_epoch = read_epoch_proof(path)
    except StoreError as exc:
        out.problems.append(("FAIL", "key-file", str(exc)))
        return
    if epoch > MAX_EPOCH:
        out.problems.append(("FAIL", "key-file", f"{path} claims epoch {epoch}: not a real ratchet"))
        return
    if from_epoch not in segments:
        out.problems.append(("FAIL", "key-file", f"{path}: no signer segment starts at epoch {from_epoch}"))
        return
    index = segments.index(from_epoch)
    if index < len(initial_keys) and not hmac.compare_digest(
        epoch_proof(epoch, key_for_epoch(initial_keys[index], epoch)), proof
    ):
        out.problems.append((
            "FAIL",
            "key-file",
            f"{path}: the proof that the ratchet reached epoch {epoch} was not made with that epoch's "
            "key: the epoch was rewritten (rolled back) or the proof forged",
        ))
        return
    out.at_least, out.source = epoch, f"the epoch proof {path.name}"
