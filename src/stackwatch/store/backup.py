"""Consistent online backups, optionally encrypted, and verified restores.

``backup`` copies ``stackwatch.db`` with SQLite's online backup API in one step: it reads one
consistent snapshot (a WAL read transaction) while the writer keeps appending. The archive
(tar) holds ``stackwatch.db``, ``keys/sign.pub``, ``keys/seal.epoch`` (the epoch the sealing
ratchet had reached and a proof of it only that epoch's key could make, ``store/sealed_epochs.py``),
``checkpoints.jsonl`` (the checkpoints as witness lines, readable without SQLite),
``manifest.json`` and the sidecars (sidecars.py: the web users and API tokens, analyze's
record of what it stored). Private keys are never included: a restored store verifies and can be read;
to append again it gets new keys (a new signer segment, ``store init``). The archive is 0600.

``restore`` refuses a backup whose checkpoint list or manifest does not match its database
(an emptied ``checkpoints.jsonl`` is missing evidence, not a warning) or that lacks the epoch
proof; with k0 the proof must be genuine and the checkpoints must reach its epoch, so a backup
cut at a checkpoint boundary is refused.

Encryption (``--encrypt-key FILE``, 32 random bytes raw or as 64 hex digits): AES-256-GCM in
1 MiB chunks (the STREAM construction: nonce = 8-byte random prefix || chunk counter, the
last chunk marked in the associated data), so a changed, reordered or truncated backup fails
to decrypt. ``restore`` decrypts, unpacks into a temporary folder next to the destination,
verifies everything (``verify.verify_store``) and only then moves it into place.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import sqlite3
import struct
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from stackwatch.core.errors import IntegrityError, StoreError
from stackwatch.store.permissions import FILE_MODE, make_private
from stackwatch.store.record_ledger import key_paths
from stackwatch.store.seal import KeyFileError, Sealer
from stackwatch.store.sealed_epochs import EPOCH_PROOF_FILE, epoch_proof_doc, epoch_proof_path
from stackwatch.store.sidecars import SIDECARS, protect_restored, snapshot_sidecars
from stackwatch.store.sqlite_attempts import rebuild_derived
from stackwatch.store.verify import VerifyReport, verify_store
from stackwatch.store.witness import entry, read_entries

ENC_MAGIC: Final = b"SWBKENC1"
CHUNK: Final = 1 << 20
MEMBERS: Final = ("stackwatch.db", "keys/sign.pub", f"keys/{EPOCH_PROOF_FILE}", "checkpoints.jsonl",
                  "manifest.json")
"""Every backup's members; the sidecars (sidecars.SIDECARS) come when the data folder has them."""


def read_key(path: str | os.PathLike[str]) -> bytes:
    data = Path(path).read_bytes()
    text = data.strip()
    if len(text) == 64:
        try:
            return bytes.fromhex(text.decode())
        except ValueError:
            pass
    if len(data) != 32:
        raise StoreError(
            f"{path}: a backup key is 32 bytes (or 64 hex digits); "
            "make one with: head -c 32 /dev/urandom > backup.key"
        )
    return data


def _aad(index: int, final: bool) -> bytes:
    return ENC_MAGIC + index.to_bytes(8, "big") + (b"\x01" if final else b"\x00")


def encrypt_stream(src: io.BufferedIOBase, dst: io.BufferedIOBase, key: bytes) -> None:
    aead, prefix = AESGCM(key), secrets.token_bytes(8)
    dst.write(ENC_MAGIC + prefix)
    index, chunk = 0, src.read(CHUNK)
    while True:
        nxt = src.read(CHUNK)
        final = not nxt
        sealed = aead.encrypt(prefix + index.to_bytes(4, "big"), chunk, _aad(index, final))
        dst.write(struct.pack(">I", len(sealed)) + sealed)
        if final:
            return
        index, chunk = index + 1, nxt


def decrypt_stream(src: io.BufferedIOBase, dst: io.BufferedIOBase, key: bytes) -> None:
    head = src.read(16)
    if head[:8] != ENC_MAGIC:
        raise IntegrityError("not an encrypted stackwatch backup")
    aead, prefix, index = AESGCM(key), head[8:], 0
    while True:
        raw_len = src.read(4)
        if len(raw_len) < 4:
            raise IntegrityError("the encrypted backup is truncated")
        sealed = src.read(struct.unpack(">I", raw_len)[0])
        nonce = prefix + index.to_bytes(4, "big")
        for final in (False, True):
            try:
                dst.write(aead.decrypt(nonce, sealed, _aad(index, final)))
                break
            except InvalidTag:
                continue
        else:
            raise IntegrityError("the backup does not decrypt: wrong key, or the file was altered")
        if final:
            if src.read(1):
                raise IntegrityError("data after the end of the encrypted backup")
            return
        index += 1


def backup(
    data_dir: str | os.PathLike[str], dest: str | os.PathLike[str], *, encrypt_key: bytes | None = None
) -> dict[str, Any]:
    """Write a backup archive of the store to ``dest``; returns its manifest."""
    data_dir, dest = Path(data_dir), Path(dest)
    db = data_dir / "stackwatch.db"
    if not db.is_file():
        raise StoreError(f"no store at {data_dir}")
    # Read before the snapshot: the snapshot then holds at least the checkpoints below this epoch.
    proof = _epoch_proof(data_dir)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".stackwatch-backup-") as tmp:
        copy = Path(tmp) / "stackwatch.db"
        src = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        dst = sqlite3.connect(copy)
        try:
            src.backup(dst)  # one step: a consistent snapshot; the writer is not blocked (WAL)
        finally:
            src.close()
        try:
            dst.execute("PRAGMA journal_mode = DELETE")
            size = dst.execute("SELECT size FROM ledger_state").fetchone()[0]
            cps = dst.execute("SELECT body, signature, epoch FROM checkpoints ORDER BY epoch").fetchall()
            signers = dst.execute("SELECT from_epoch, public_key FROM signers ORDER BY from_epoch").fetchall()
            store_id = dst.execute("SELECT value FROM meta WHERE name = 'store_id'").fetchone()[0]
        finally:
            dst.close()
        lines = []
        for body, signature, epoch in cps:
            key = next((bytes(k) for e, k in reversed(signers) if e <= epoch), b"")
            lines.append(json.dumps(entry(bytes(body), bytes(signature), key), sort_keys=True))
        manifest = {
            "format": "stackwatch-backup/v1",
            "store_id": store_id,
            "records": size,
            "checkpoints": len(cps),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        pub = key_paths(data_dir)[1]
        if proof is not None and not isinstance(proof, str):
            epoch, tag = proof
            segment = max((int(e) for e, _ in signers if int(e) <= epoch), default=0)
            proof = json.dumps(epoch_proof_doc(epoch, tag, segment))
        tar_path = Path(tmp) / "backup.tar"
        sidecars = snapshot_sidecars(data_dir, Path(tmp))  # web users and tokens, analyze's record
        manifest["includes"] = sidecars
        with tarfile.open(tar_path, "w") as tar:
            tar.add(copy, "stackwatch.db")
            if pub.exists():
                tar.add(pub, "keys/sign.pub")
            for name in sidecars:
                tar.add(Path(tmp) / name, name)
            texts = [
                ("checkpoints.jsonl", "".join(f"{ln}\n" for ln in lines)),
                ("manifest.json", json.dumps(manifest, indent=2)),
            ]
            if proof is not None:
                texts.append((f"keys/{EPOCH_PROOF_FILE}", proof))
            for name, text in texts:
                info = tarfile.TarInfo(name)
                info.size = len(text.encode())
                info.mtime = int(time.time())
                tar.addfile(info, io.BytesIO(text.encode()))
        out = dest.with_name(f".{dest.name}.partial")
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        os.fchmod(fd, FILE_MODE)
        with open(tar_path, "rb") as fin, open(fd, "wb") as fout:
            if encrypt_key is not None:
                encrypt_stream(fin, fout, encrypt_key)
            else:
                shutil.copyfileobj(fin, fout)
            fout.flush()
            os.fsync(fout.fileno())
        os.replace(out, dest)
    return manifest


def _epoch_proof(data_dir: Path) -> tuple[int, bytes] | str | None:
    """The ratchet's epoch proof: made from the key file, or (a restored store not yet given new
    keys) the proof it was restored with, as text; None for a store without keys."""
    seal_path = key_paths(data_dir)[2]
    if seal_path.exists():
        try:
            return Sealer(seal_path).proof()
        except KeyFileError as exc:
            raise StoreError(f"cannot back up the sealing evidence: {exc}") from None
    kept = epoch_proof_path(data_dir)
    return kept.read_text() if kept.exists() else None


def _check_evidence(work: Path) -> None:
    """The backup's own lists must match its database: an emptied or cut ``checkpoints.jsonl`` or
    manifest is missing evidence, refused (verify then checks the database against them)."""
    conn = sqlite3.connect(f"{(work / 'stackwatch.db').resolve().as_uri()}?mode=ro", uri=True)
    try:
        bodies = [bytes(b).decode() for (b,) in conn.execute("SELECT body FROM checkpoints ORDER BY epoch")]
        size = conn.execute("SELECT size FROM ledger_state").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise IntegrityError(f"the backup's database cannot be read: {exc}") from None
    finally:
        conn.close()
    try:
        listed = [str(e["body"]) for e in read_entries(work / "checkpoints.jsonl")]
        manifest = json.loads((work / "manifest.json").read_text())
    except (OSError, ValueError, KeyError) as exc:
        raise IntegrityError(
            f"the backup's checkpoint list or manifest is missing or unreadable: {exc}"
        ) from None
    if listed != bodies:
        raise IntegrityError(
            f"the backup's checkpoints.jsonl lists {len(listed)} checkpoints, its database holds "
            f"{len(bodies)} (or they differ): the backup was altered"
        )
    if manifest.get("checkpoints") != len(bodies) or manifest.get("records") != size:
        raise IntegrityError("the backup's manifest does not match its database: the backup was altered")
    if bodies and not epoch_proof_path(work).exists():
        raise IntegrityError(f"the backup carries no keys/{EPOCH_PROOF_FILE}: the evidence of how many "
                             "epochs were sealed is missing")


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    for member in tar.getmembers():
        if member.name not in (*MEMBERS, *SIDECARS) or not member.isfile():
            raise IntegrityError(f"unexpected entry {member.name!r} in the backup")
        yield member


def restore(
    src: str | os.PathLike[str],
    dest_dir: str | os.PathLike[str],
    *,
    decrypt_key: bytes | None = None,
    initial_keys: list[bytes] | None = None,
    public_key: bytes | None = None,
    witnesses: list[str] | None = None,
) -> VerifyReport:
    """Unpack and fully verify a backup, then move it to ``dest_dir`` (which must not exist or be
    empty). IntegrityError (and nothing written to ``dest_dir``) when it does not verify."""
    src, dest_dir = Path(src), Path(dest_dir)
    if dest_dir.exists() and any(dest_dir.iterdir()):
        raise StoreError(f"{dest_dir} is not empty")
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_dir.parent, prefix=".stackwatch-restore-") as tmp:
        work = Path(tmp) / "store"
        tar_path = Path(tmp) / "backup.tar"
        with open(src, "rb") as fin:
            encrypted = fin.read(8) == ENC_MAGIC
            fin.seek(0)
            if encrypted and decrypt_key is None:
                raise StoreError("the backup is encrypted: give --decrypt-key")
            with open(tar_path, "wb") as fout:
                if encrypted:
                    decrypt_stream(fin, fout, decrypt_key)  # type: ignore[arg-type]
                else:
                    shutil.copyfileobj(fin, fout)
        try:
            with tarfile.open(tar_path) as tar:
                members = list(_members(tar))
                tar.extractall(work, members=members, filter="data")
        except tarfile.TarError as exc:
            raise IntegrityError(f"the backup is not a valid archive: {exc}") from None
        if (work / "keys").exists():
            os.chmod(work / "keys", 0o700)
        if not (work / "stackwatch.db").is_file():
            raise IntegrityError("the backup holds no stackwatch.db")
        _check_evidence(work)
        report = verify_store(
            work,
            initial_keys=initial_keys,
            public_key=public_key,
            witnesses=[*(witnesses or []), work / "checkpoints.jsonl"],
            local_witnesses=False,
        )
        if report.failed:
            first = report.first_bad
            raise IntegrityError(f"the backup does not verify; refusing it: {first}")
        (work / "checkpoints.jsonl").unlink()
        rebuild_derived(work / "stackwatch.db")
        make_private(work)
        protect_restored(work)
        if dest_dir.exists():
            dest_dir.rmdir()
        os.replace(work, dest_dir)
    return report
