"""Signed checkpoints and forward-secure seals.

**Checkpoints.** A ``Checkpoint`` states "log L had ``size`` records with Merkle root R at time
T"; checkpoints are chained (``prev`` is the hash of the previous checkpoint's bytes) and
numbered by ``epoch`` (0, 1, 2...: one checkpoint per epoch, even when no record arrived).
Canonical bytes are a small fixed-order text, so an auditor can read what was signed::

    stackwatch-checkpoint v1
    log <log id>
    epoch <decimal>
    size <decimal>
    root <64 hex>
    time <microseconds since the epoch, decimal>
    prev <64 hex>

(each line ends with ``\\n``; decimals without leading zeros; ``from_bytes`` accepts only
bytes that re-encode identically). They are signed with Ed25519: anyone holding the public
key can check them, offline, with ``auditor.py``.

**Seals** (Schneier–Kelsey). The sealer holds one MAC key, for the current epoch only. At the
end of epoch i it computes ``tag = HMAC-SHA256(k_i, "stackwatch-seal2\\0" || i || P || checkpoint)``
where P is the raw Ed25519 public key that signs the checkpoint: the seal binds the signing key,
so an intruder who swaps the signing key and re-signs every checkpoint breaks every seal (stores
sealed before this binding carry ``"stackwatch-seal\\0" || i || checkpoint`` tags, still accepted
and reported as not binding the key). Then it replaces the key on disk by ``k_{i+1} =
HMAC-SHA256(k_i, "stackwatch-ratchet")`` (atomic rename) before the tag is handed out. An
intruder who takes the machine in epoch j holds only ``k_j`` and cannot forge or re-make a seal
for any epoch before j. The verifier starts from ``k_0``, printed once at ``store init`` and kept
offline.

Limits, said plainly: Python cannot wipe a ``bytes`` object and a rename does not scrub disk
blocks, so "erased" means "no longer referenced or named"; records after the last seal (the
unsealed tail) are protected only by the chain and signatures, which an intruder holding the
signing key can re-make. ``verify_seals`` therefore reports the tail as a WARNING, never PASS,
and treats gaps, truncation and re-sealing (the journald FSS failures CVE-2023-31438,
CVE-2023-31439, systemd#15425) as FAIL.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Final, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from stackwatch.core.errors import StoreError

NO_PREV: Final = bytes(32)
"""``prev`` of the epoch-0 checkpoint."""
RATCHET_LABEL: Final = b"stackwatch-ratchet"
SEAL_LABEL: Final = b"stackwatch-seal\x00"
BOUND_SEAL_LABEL: Final = b"stackwatch-seal2\x00"
"""Seals that also cover the signing public key (binding it to the forward-secure ratchet)."""
EPOCH_PROOF_LABEL: Final = b"stackwatch-epoch\x00"
KEY_FILE_MAGIC: Final = b"SWK1"

_CHECKPOINT_RE: Final = re.compile(
    rb"stackwatch-checkpoint v1\nlog ([^\n]+)\nepoch (0|[1-9][0-9]*)\nsize (0|[1-9][0-9]*)\n"
    rb"root ([0-9a-f]{64})\ntime (-?[1-9][0-9]*|0)\nprev ([0-9a-f]{64})\n\Z")


class KeyFileError(StoreError):
    """A key file is missing, malformed or readable by others."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    log_id: str
    epoch: int
    size: int
    root: bytes
    time_us: int
    prev: bytes = NO_PREV

    def __post_init__(self) -> None:
        if not self.log_id or "\n" in self.log_id or self.log_id != self.log_id.strip():
            raise ValueError("checkpoint log id must be non-empty, one line, without outer spaces")
        if self.epoch < 0 or self.size < 0 or len(self.root) != 32 or len(self.prev) != 32:
            raise ValueError("checkpoint epoch/size must be >= 0 and hashes 32 bytes")

    def to_bytes(self) -> bytes:
        return (f"stackwatch-checkpoint v1\nlog {self.log_id}\nepoch {self.epoch}\nsize {self.size}\n"
                f"root {self.root.hex()}\ntime {self.time_us}\nprev {self.prev.hex()}\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        """Parse canonical bytes; ``ValueError`` for anything that is not exactly canonical."""
        m = _CHECKPOINT_RE.match(data)
        if m is None:
            raise ValueError("not a canonical stackwatch checkpoint")
        log, epoch, size, root, time_us, prev = m.groups()
        try:
            cp = cls(log.decode(), int(epoch), int(size), bytes.fromhex(root.decode()), int(time_us),
                     bytes.fromhex(prev.decode()))
        except UnicodeDecodeError:
            raise ValueError("checkpoint log id is not UTF-8") from None
        if cp.to_bytes() != data:
            raise ValueError("checkpoint bytes are not canonical")
        return cp

    def hash(self) -> bytes:
        """What the next checkpoint's ``prev`` must be."""
        return sha256(self.to_bytes()).digest()


# --- Ed25519 signing ---

def generate_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def sign_checkpoint(key: Ed25519PrivateKey, checkpoint: Checkpoint | bytes) -> bytes:
    """Ed25519 signature (64 bytes) over the checkpoint's canonical bytes."""
    body = checkpoint.to_bytes() if isinstance(checkpoint, Checkpoint) else checkpoint
    return key.sign(body)


def verify_checkpoint_signature(public_key: Ed25519PublicKey | bytes, body: bytes, signature: bytes) -> bool:
    try:
        pub = public_key if isinstance(public_key, Ed25519PublicKey) else Ed25519PublicKey.from_public_bytes(
            public_key)
        pub.verify(signature, body)
    except (InvalidSignature, ValueError):
        return False
    return True


def public_key_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The raw 32-byte public key (what proof exports carry, hex-encoded)."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey | bytes) -> str:
    """Short fingerprint: the first 8 bytes of SHA-256 of the raw public key, hex."""
    raw = public_key if isinstance(public_key, bytes) else public_key_bytes(public_key)
    return sha256(raw).digest()[:8].hex()


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write to a temporary file in the same directory, fsync, rename over ``path``, fsync dir."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        os.fchmod(fd, mode)  # the umask must not widen or narrow it
        os.write(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _read_private(path: Path) -> bytes:
    try:
        st = os.stat(path)
        if st.st_mode & 0o077:
            raise KeyFileError(f"{path}: key file is accessible by group/others "
                               f"(mode {stat.S_IMODE(st.st_mode):04o}); chmod 600 it")
        return Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: {exc.strerror or exc}") from None


def write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    """PKCS#8 PEM, mode 0600."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    _write_atomic(Path(path), pem, 0o600)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    data = _read_private(Path(path))
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 key")
    return key


def write_public_key(path: Path, key: Ed25519PrivateKey | Ed25519PublicKey) -> None:
    """SubjectPublicKeyInfo PEM, mode 0644 (public by design)."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    _write_atomic(Path(path), pub.public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A PEM public key, or the raw key as 64 hex characters."""
    try:
        data = Path(path).read_bytes().strip()
    except OSError as exc:
        raise KeyFileError(f"{path}: {exc.strerror or exc}") from None
    try:
        if re.fullmatch(rb"[0-9a-fA-F]{64}", data):
            return Ed25519PublicKey.from_public_bytes(bytes.fromhex(data.decode()))
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise KeyFileError(f"{path}: not an Ed25519 public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path}: not an Ed25519 key")
    return key


# --- the forward-secure MAC ratchet ---

def new_initial_key() -> bytes:
    """A fresh k_0 (32 random bytes)."""
    return secrets.token_bytes(32)


def next_key(key: bytes) -> bytes:
    """``k_{i+1} = HMAC-SHA256(k_i, "stackwatch-ratchet")``: one way, so k_i cannot be recovered."""
    return hmac.digest(key, RATCHET_LABEL, "sha256")


def key_for_epoch(initial_key: bytes, epoch: int) -> bytes:
    """k_epoch derived from k_0 (the verifier's side)."""
    k = initial_key
    for _ in range(epoch):
        k = hmac.digest(k, RATCHET_LABEL, "sha256")
    return k


def seal(epoch: int, key: bytes, checkpoint_bytes: bytes, public_key: bytes | None = None) -> bytes:
    """The seal tag of one epoch's checkpoint under that epoch's key; with ``public_key`` (the raw
    Ed25519 key that signs it) the tag also binds the signing key."""
    if public_key is None:
        return hmac.digest(key, SEAL_LABEL + epoch.to_bytes(8, "big") + checkpoint_bytes, "sha256")
    if len(public_key) != 32:
        raise ValueError("a bound seal takes the raw 32-byte Ed25519 public key")
    return hmac.digest(key, BOUND_SEAL_LABEL + epoch.to_bytes(8, "big") + public_key + checkpoint_bytes,
                       "sha256")


def epoch_proof(epoch: int, key: bytes) -> bytes:
    """Public evidence that the ratchet reached ``epoch``: ``HMAC(k_epoch, label || epoch)``. Only
    the holder of k_epoch makes it (an intruder holding a later key cannot), anyone holding k_0
    checks it; it reveals nothing usable about the key. Backups carry it instead of the key file."""
    return hmac.digest(key, EPOCH_PROOF_LABEL + epoch.to_bytes(8, "big"), "sha256")


def find_key_epoch(initial_key: bytes, key: bytes, start: int, limit: int) -> int | None:
    """The epoch e in ``start..limit`` whose ratchet key is ``key`` (None if none): tells which
    epoch a key file rolled back (its epoch field rewritten) really belongs to."""
    k = key_for_epoch(initial_key, start)
    for e in range(start, limit + 1):
        if hmac.compare_digest(k, key):
            return e
        k = next_key(k)
    return None


def format_initial_key(key: bytes) -> str:
    """k_0 as printed once at ``store init``: hex plus a 4-hex checksum that catches typos."""
    return f"{key.hex()}-{sha256(b'stackwatch-k0' + key).hexdigest()[:4]}"


def parse_initial_key(text: str) -> bytes:
    m = re.fullmatch(r"\s*([0-9a-fA-F]{64})-([0-9a-fA-F]{4})\s*", text)
    if m is None:
        raise ValueError("an initial sealing key looks like 64 hex digits, '-', 4 hex digits")
    key = bytes.fromhex(m.group(1))
    if format_initial_key(key).split("-")[1] != m.group(2).lower():
        raise ValueError("initial sealing key checksum does not match (typo?)")
    return key


class SealingKey(NamedTuple):
    epoch: int
    key: bytes


def write_sealing_key(path: Path, epoch: int, key: bytes) -> None:
    """Key file: ``b"SWK1" || epoch (8 bytes, big endian) || key (32 bytes)``, mode 0600,
    replaced atomically so the previous epoch's key is no longer on the file system's name."""
    if len(key) != 32 or epoch < 0:
        raise ValueError("a sealing key is 32 bytes with an epoch >= 0")
    _write_atomic(Path(path), KEY_FILE_MAGIC + epoch.to_bytes(8, "big") + key, 0o600)


def read_sealing_key(path: Path) -> SealingKey:
    data = _read_private(Path(path))
    if len(data) != 44 or data[:4] != KEY_FILE_MAGIC:
        raise KeyFileError(f"{path}: not a stackwatch sealing key file")
    return SealingKey(int.from_bytes(data[4:12], "big"), data[12:])


class Sealer:
    """The sealing side: holds only the current epoch's key, kept in ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.epoch, self._key = read_sealing_key(self.path)

    @classmethod
    def create(cls, path: Path, initial_key: bytes) -> Sealer:
        """Start at epoch 0 with ``initial_key`` (which the caller prints once, then drops)."""
        write_sealing_key(path, 0, initial_key)
        return cls(path)

    def seal(self, checkpoint: Checkpoint, public_key: bytes | None = None) -> bytes:
        """Seal the current epoch's checkpoint, then ratchet: the key file holds k_{i+1} before
        the tag is returned. A crash before the caller stores the tag leaves a missing epoch,
        which verification reports; it never leaves k_i behind."""
        if checkpoint.epoch != self.epoch:
            raise ValueError(f"checkpoint is for epoch {checkpoint.epoch}, "
                             f"the sealer is at epoch {self.epoch}")
        tag = seal(self.epoch, self._key, checkpoint.to_bytes(), public_key)
        self.advance_to(self.epoch + 1)
        return tag

    def tag(self, checkpoint: Checkpoint, public_key: bytes | None = None) -> bytes:
        """The seal tag of the current epoch's checkpoint *without* ratcheting: for a writer that
        stores the tag in a transaction and calls ``advance_to(epoch + 1)`` once it committed
        (a crash in between leaves the key of a sealed epoch, which the store ratchets away at
        its next start and ``verify_seals`` reports as key-behind until then; it never leaves
        a missing epoch)."""
        if checkpoint.epoch != self.epoch:
            raise ValueError(f"checkpoint is for epoch {checkpoint.epoch}, "
                             f"the sealer is at epoch {self.epoch}")
        return seal(self.epoch, self._key, checkpoint.to_bytes(), public_key)

    def proof(self) -> tuple[int, bytes]:
        """``(epoch, epoch_proof)`` of the current key (what a backup carries instead of it)."""
        return self.epoch, epoch_proof(self.epoch, self._key)

    def advance_to(self, epoch: int) -> None:
        """Ratchet forward to ``epoch`` (e.g. past epochs already sealed before a crash)."""
        if epoch < self.epoch:
            raise ValueError("the ratchet only moves forward")
        k = self._key
        for _ in range(epoch - self.epoch):
            k = next_key(k)
        write_sealing_key(self.path, epoch, k)
        self.epoch, self._key = epoch, k


# --- verification ---

class SealedCheckpoint(NamedTuple):
    """One stored checkpoint: its canonical bytes, seal tag and (optional) Ed25519 signature."""

    body: bytes
    tag: bytes
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class Finding:
    level: str  # "FAIL" or "WARN"
    kind: str  # malformed, gap, reordered, resealed, bad-seal, bad-signature, broken-link, truncated,
    #            time-backwards, key-behind, unsealed-tail
    epoch: int | None
    first_seq: int | None  # the first record the finding puts in doubt, when there is one
    message: str

    def __str__(self) -> str:
        where = f"epoch {self.epoch}" if self.epoch is not None else "store"
        seq = f", from seq {self.first_seq}" if self.first_seq is not None else ""
        return f"{self.level} {self.kind} ({where}{seq}): {self.message}"


@dataclass(slots=True)
class SealReport:
    """``status`` is PASS only with no finding at all; an unsealed tail alone is WARN."""

    findings: list[Finding] = field(default_factory=list)
    epochs: int = 0  # seals checked
    sealed_size: int = 0  # tree size attested by the last valid seal before any FAIL
    tree_size: int = 0
    roots: dict[int, bytes] = field(default_factory=dict)  # size -> root from correctly sealed checkpoints
    unbound: list[int] = field(default_factory=list)  # epochs whose seal predates binding the signing key

    @property
    def status(self) -> str:
        levels = {f.level for f in self.findings}
        return "FAIL" if "FAIL" in levels else "WARN" if levels else "PASS"

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first_failure(self) -> Finding | None:
        return next((f for f in self.findings if f.level == "FAIL"), None)

    def __str__(self) -> str:
        head = (f"seals: {self.status}: {self.epochs} epochs, sealed size {self.sealed_size}, "
                f"store size {self.tree_size}")
        return "\n".join([head, *(f"  {f}" for f in self.findings)])


_DIAGNOSE_LIMIT: Final = 8  # bad seals for which later keys are tried (each costs one pass over epochs)
_LOOKAHEAD: Final = 64  # an intruder can ratchet *forward* from the key it stole, so look past the end


def verify_seals(initial_key: bytes, seals: Iterable[SealedCheckpoint], tree_size: int, *,
                 public_key: Ed25519PublicKey | bytes | None = None,
                 sealer_epoch: int | None = None,
                 signer_of: Callable[[int], bytes | None] | None = None) -> SealReport:
    """Check every seal from k_0, the checkpoint chain, sizes and (with ``public_key``) signatures.

    ``seals`` in stored order; ``tree_size`` is the number of records the store holds now;
    ``sealer_epoch`` is the epoch in the sealer's key file, if known (it exposes deleted
    trailing seals, and a key file rolled back to an epoch already sealed). ``signer_of(epoch)``
    is the raw public key said to sign that epoch (default: ``public_key``): a seal must bind it,
    so a swapped signing key breaks the seals; a seal made before binding (no key in the tag) is
    accepted and its epoch listed in ``unbound``.
    """
    if signer_of is None:
        pinned = public_key_bytes(public_key) if isinstance(public_key, Ed25519PublicKey) else public_key
        signer_of = lambda _epoch: pinned  # noqa: E731
    items = list(seals)
    report = SealReport(tree_size=tree_size)
    add = report.findings.append
    parsed: list[Checkpoint | None] = []
    for i, item in enumerate(items):
        try:
            parsed.append(Checkpoint.from_bytes(item.body))
        except ValueError as exc:
            parsed.append(None)
            add(Finding("FAIL", "malformed", None, None, f"stored checkpoint #{i + 1}: {exc}"))
    top_epoch = max([c.epoch for c in parsed if c is not None] + [sealer_epoch or 0])
    key, key_epoch = initial_key, 0
    expected, prev_hash, prev_size, prev_time = 0, NO_PREV, 0, None
    diagnosed = 0
    failed = bool(report.findings)
    for item, cp in zip(items, parsed, strict=True):
        if cp is None:
            continue
        report.epochs += 1
        first_seq = prev_size + 1
        if cp.epoch < expected:
            add(Finding("FAIL", "reordered", cp.epoch, None,
                        f"a checkpoint for epoch {cp.epoch} appears after epoch {expected - 1}"))
            failed = True
            continue
        if cp.epoch > expected:
            gap = f"{expected}" if cp.epoch == expected + 1 else f"{expected}..{cp.epoch - 1}"
            add(Finding("FAIL", "gap", expected, first_seq, f"seal for epoch {gap} missing"))
            failed = True
        while key_epoch < cp.epoch:
            key, key_epoch = next_key(key), key_epoch + 1
        signer = signer_of(cp.epoch)
        sealed_ok = signer is not None and hmac.compare_digest(
            item.tag, seal(cp.epoch, key, item.body, signer))
        if not sealed_ok and hmac.compare_digest(item.tag, seal(cp.epoch, key, item.body)):
            sealed_ok = True
            report.unbound.append(cp.epoch)
        if not sealed_ok:
            later = None
            if diagnosed < _DIAGNOSE_LIMIT:
                diagnosed += 1
                later = _find_later_key(key, cp.epoch, top_epoch + _LOOKAHEAD, item, signer)
            if later is not None:
                add(Finding("FAIL", "resealed", cp.epoch, first_seq,
                            f"sealed with the key of later epoch {later}: re-made after "
                            f"epoch {cp.epoch}'s key "
                            "was erased (the checkpoint or the records it attests were rewritten)"))
            else:
                signed_by = f" and its signing key {key_id(signer)}" if signer is not None else ""
                add(Finding("FAIL", "bad-seal", cp.epoch, first_seq,
                            f"seal tag does not match the checkpoint{signed_by}: the checkpoint or its seal "
                            "was altered, or the signing key was replaced"))
            failed = True
        if public_key is not None and not verify_checkpoint_signature(public_key, item.body, item.signature):
            add(Finding("FAIL", "bad-signature", cp.epoch, first_seq, "Ed25519 signature does not verify"))
            failed = True
        if cp.prev != prev_hash:
            add(Finding("FAIL", "broken-link", cp.epoch, first_seq,
                        "prev does not match the previous checkpoint: a checkpoint was replaced or removed"))
            failed = True
        if cp.size < prev_size:
            add(Finding("FAIL", "truncated", cp.epoch, cp.size + 1,
                        f"tree size went backwards from {prev_size} to {cp.size}"))
            failed = True
        if prev_time is not None and cp.time_us < prev_time:
            add(Finding("WARN", "time-backwards", cp.epoch, None,
                        "checkpoint time is earlier than the previous one"))
        if sealed_ok:
            report.roots.setdefault(cp.size, cp.root)
            if not failed:
                report.sealed_size = cp.size
        expected, prev_hash, prev_time = cp.epoch + 1, sha256(item.body).digest(), cp.time_us
        prev_size = max(prev_size, cp.size)
    if tree_size < prev_size:
        add(Finding("FAIL", "truncated", None, tree_size + 1,
                    f"the store holds {tree_size} records but a checkpoint attests {prev_size}"))
    if sealer_epoch is not None and sealer_epoch > expected:
        gap = f"{expected}" if sealer_epoch == expected + 1 else f"{expected}..{sealer_epoch - 1}"
        add(Finding("FAIL", "gap", expected, prev_size + 1,
                    f"the sealer is at epoch {sealer_epoch} but seals end before it: epoch {gap} missing"))
    elif sealer_epoch is not None and sealer_epoch < expected:
        add(Finding("FAIL", "key-behind", sealer_epoch, None,
                    f"the sealer's key file is at epoch {sealer_epoch}, already sealed: a sealed epoch's key "
                    "still exists (key file restored or rolled back)"))
    if tree_size > prev_size:
        add(Finding("WARN", "unsealed-tail", None, prev_size + 1,
                    f"records {prev_size + 1}..{tree_size} are not sealed yet; they are not forward-secure "
                    "until the next seal"))
    return report


def _find_later_key(key: bytes, epoch: int, limit: int, item: SealedCheckpoint,
                    signer: bytes | None) -> int | None:
    """Which later epoch's key made this tag, if any (tells re-sealing from corruption)."""
    k = key
    for e in range(epoch + 1, limit + 1):
        k = next_key(k)
        for claimed in (epoch, e):  # tag over the original epoch number, or re-labelled
            if hmac.compare_digest(item.tag, seal(claimed, k, item.body, signer)) or hmac.compare_digest(
                    item.tag, seal(claimed, k, item.body)):
                return e
    return None
