"""Standalone verifier for stackwatch inclusion and consistency proofs.

Needs only the Python standard library and ``cryptography`` (for the Ed25519 signature); it
imports nothing from stackwatch, so it also runs as a copied single file::

    python -m stackwatch.store.auditor proof.json [--key PUBKEY] [--old-checkpoint OLD.json]
    python auditor.py proof.json --key sign.pub

It prints ``OK: ...`` and exits 0, or ``FAIL: <reason>`` and exits 1.

Proof file format (JSON object; hashes and bytes are lowercase or uppercase hex)::

    {
      "format": "stackwatch-proof/v1",
      "type": "inclusion",
      "leaf_index": 41,                 # 0-based; the record's seq is leaf_index + 1
      "tree_size": 100,
      "record": "5357523100...",        # canonical record bytes, or instead:
      "leaf_hash": "…64 hex…",          # SHA-256(0x00 || record bytes)
      "proof": ["…64 hex…", ...],       # RFC 9162 inclusion path, leaf level first
      "checkpoint": {"body": "stackwatch-checkpoint v1\\nlog …\\n…", "signature": "…128 hex…"},
      "public_key": "…64 hex…"          # raw Ed25519 key of the store
    }

    {
      "format": "stackwatch-proof/v1",
      "type": "consistency",
      "old_size": 64, "new_size": 100,
      "old_root": "…64 hex…",           # or "old_checkpoint": {"body": …, "signature": …}
      "proof": ["…64 hex…", ...],       # RFC 9162 consistency proof
      "checkpoint": {…},                # the signed checkpoint of the new tree
      "public_key": "…64 hex…"
    }

Record format 2 (blocks; ``stackwatch.store.integrity``) has two more types: ``record-inclusion``
(a record's offset in its block, the block's digests, and the block's audit path) and
``block-consistency`` (``old_size``/``new_size`` in records, ``old_blocks``/``new_blocks`` and
``old_mth``/``new_mth``, the trees of block leaves, whose counts and hashes must make the signed
roots: ``SHA-256("stackwatch-blocks-root\0" || count || mth)``; the proof is between those trees).

Instead of ``checkpoint``, a bare ``"root"`` may be given; the result then says the root is
unsigned. The key inside the file is the prover's claim: pin the key you trust with ``--key``
(a PEM file, a file holding 64 hex digits, or the hex itself), and give the checkpoint you
kept from earlier with ``--old-checkpoint`` to check that the log only grew since.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FORMAT = "stackwatch-proof/v1"
_CHECKPOINT_RE = re.compile(
    r"stackwatch-checkpoint v1\nlog ([^\n]+)\nepoch (0|[1-9][0-9]*)\nsize (0|[1-9][0-9]*)\n"
    r"root ([0-9a-f]{64})\ntime (-?[1-9][0-9]*|0)\nprev ([0-9a-f]{64})\n\Z")


class AuditFailure(Exception):
    """Verification failed; the message is the reason shown after ``FAIL:``."""


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes | None:
    """RFC 9162 §2.1.3.2; None when the proof cannot lead to a root of that tree."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def check_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                      proof: Sequence[bytes]) -> str | None:
    """RFC 9162 §2.1.4.2; None when consistent, else the reason."""
    if not 0 <= old_size <= new_size:
        return f"old size {old_size} is larger than new size {new_size}: the log shrank"
    if old_size == new_size:
        if proof:
            return "sizes are equal, so the proof must be empty"
        return None if old_root == new_root else "same size but different roots: the log was rewritten"
    if old_size == 0:
        return None if not proof else "a proof from the empty tree must be empty"
    if not proof:
        return "empty consistency proof"
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return "proof is longer than the trees allow"
        if fn & 1 or fn == sn:
            fr, sr = _node(c, fr), _node(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return "proof is shorter than the trees need"
    if fr != old_root:
        return "proof does not lead to the old root: the old tree is not a prefix of the new one"
    if sr != new_root:
        return "proof does not lead to the new root: the new tree does not extend the old one"
    return None


def _hex(doc: dict[str, Any], key: str, size: int | None = 32) -> bytes:
    value = doc.get(key)
    if not isinstance(value, str):
        raise AuditFailure(f"'{key}' is missing or not a hex string")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise AuditFailure(f"'{key}' is not valid hex") from None
    if size is not None and len(raw) != size:
        raise AuditFailure(f"'{key}' must be {size} bytes, got {len(raw)}")
    return raw


def _int(doc: dict[str, Any], key: str) -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise AuditFailure(f"'{key}' is missing or not a non-negative integer")
    return value


def _proof(doc: dict[str, Any]) -> list[bytes]:
    items = doc.get("proof")
    if not isinstance(items, list):
        raise AuditFailure("'proof' is missing or not a list")
    return [_hex({"proof[]": h}, "proof[]") for h in items]


def load_key(spec: str) -> bytes:
    """A trusted public key: 64 hex digits, or a file holding them or a PEM key."""
    text = spec.strip()
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        try:
            text = Path(spec).read_text().strip()
        except OSError as exc:
            raise AuditFailure(f"cannot read key {spec}: {exc.strerror or exc}") from None
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text)
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        key = serialization.load_pem_public_key(text.encode())
    except ImportError:
        raise AuditFailure("reading a PEM key needs the 'cryptography' package") from None
    except ValueError:
        raise AuditFailure(f"{spec} is not an Ed25519 public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise AuditFailure(f"{spec} is not an Ed25519 public key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def check_checkpoint(cp: Any, public_key: bytes) -> dict[str, Any]:
    """Verify a signed checkpoint object; its parsed fields, or AuditFailure."""
    if not isinstance(cp, dict) or not isinstance(cp.get("body"), str):
        raise AuditFailure("checkpoint must be an object with a 'body' string")
    body = cp["body"].encode()
    signature = _hex(cp, "signature", 64)
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        raise AuditFailure("checking the signature needs the 'cryptography' package") from None
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, body)
    except (InvalidSignature, ValueError):
        raise AuditFailure("checkpoint signature does not verify with the public key") from None
    m = _CHECKPOINT_RE.match(cp["body"])
    if m is None:
        raise AuditFailure("checkpoint body is not a canonical stackwatch checkpoint")
    log, epoch, size, root, time_us, _prev = m.groups()
    return {"log": log, "epoch": int(epoch), "size": int(size), "root": bytes.fromhex(root),
            "time": int(time_us)}


def _signed_root(doc: dict[str, Any], size: int, key: bytes | None,
                 what: str = "checkpoint") -> tuple[bytes, str]:
    if what in doc:
        if key is None:
            raise AuditFailure("a public key is needed to check the checkpoint ('public_key' or --key)")
        cp = check_checkpoint(doc[what], key)
        if cp["size"] != size:
            raise AuditFailure(f"{what} is for tree size {cp['size']}, the proof for {size}")
        return cp["root"], f"signed checkpoint of log {cp['log']} epoch {cp['epoch']}"
    root_key = "root" if what == "checkpoint" else "old_root"
    if root_key in doc:
        return _hex(doc, root_key), "UNSIGNED root (no checkpoint given)"
    raise AuditFailure(f"'{what}' (or '{root_key}') is missing")


def audit(doc: Any, trusted_key: bytes | None = None, old_checkpoint: Any = None) -> str:
    """Verify one proof document; the OK message, or AuditFailure with the reason."""
    if not isinstance(doc, dict):
        raise AuditFailure("proof file must hold a JSON object")
    if doc.get("format") != FORMAT:
        raise AuditFailure(f"unknown format {doc.get('format')!r}; expected {FORMAT!r}")
    key = None
    if "public_key" in doc:
        key = _hex(doc, "public_key")
    if trusted_key is not None:
        if key is not None and key != trusted_key:
            raise AuditFailure("the proof's public key is not the trusted key")
        key = trusted_key
    pinned = "trusted key" if trusted_key is not None else "key from the proof file (pin it with --key)"
    kind = doc.get("type")
    proof = _proof(doc)
    if kind == "inclusion":
        index, size = _int(doc, "leaf_index"), _int(doc, "tree_size")
        if "record" in doc:
            record = _hex(doc, "record", None)
            leaf = hashlib.sha256(b"\x00" + record).digest()
            if "leaf_hash" in doc and _hex(doc, "leaf_hash") != leaf:
                raise AuditFailure("'leaf_hash' is not the hash of 'record'")
            claimed = int.from_bytes(record[4:12], "big") if record[:4] == b"SWR1" else index + 1
            if len(record) >= 12 and claimed != index + 1:  # canonical record bytes carry their seq
                raise AuditFailure(f"record says seq {claimed}, "
                                   f"the proof is for leaf {index} (seq {index + 1})")
        else:
            leaf = _hex(doc, "leaf_hash")
        root, source = _signed_root(doc, size, key)
        computed = root_from_inclusion(leaf, index, size, proof)
        if computed is None:
            raise AuditFailure(f"proof has the wrong length for leaf {index} in a tree of size {size}")
        if computed != root:
            raise AuditFailure(f"proof leads to root {computed.hex()}, the {source} says {root.hex()}")
        return (f"leaf {index} (seq {index + 1}) is in the tree of size {size}, root {root.hex()}; "
                f"{source}; {pinned}")
    if kind == "consistency":
        old_size, new_size = _int(doc, "old_size"), _int(doc, "new_size")
        if old_checkpoint is not None:
            doc = {**doc, "old_checkpoint": old_checkpoint}
        old_root, old_source = _signed_root(doc, old_size, key, "old_checkpoint")
        new_root, source = _signed_root(doc, new_size, key)
        reason = check_consistency(old_size, new_size, old_root, new_root, proof)
        if reason is not None:
            raise AuditFailure(reason)
        return (f"tree of size {old_size} (root {old_root.hex()}, {old_source}) is a prefix of size "
                f"{new_size} "
                f"(root {new_root.hex()}, {source}); {pinned}")
    if kind == "record-inclusion":
        return _audit_block_record(doc, proof, key, pinned)
    if kind == "block-consistency":
        if old_checkpoint is not None:
            doc = {**doc, "old_checkpoint": old_checkpoint}
        return _audit_block_consistency(doc, proof, key, pinned)
    raise AuditFailure(f"unknown proof type {kind!r}; expected 'inclusion', 'record-inclusion', "
                       "'consistency' or 'block-consistency'")


_DIGEST = 16  # record format 2: bytes of a record's digest in its block's leaf


def _audit_block_record(doc: dict[str, Any], proof: list[bytes], key: bytes | None, pinned: str) -> str:
    """Record format 2: the record is at ``offset`` of block ``block``, whose leaf is in the tree."""
    seq, number, first, offset = (_int(doc, k) for k in ("seq", "block", "first_seq", "offset"))
    size = _int(doc, "tree_size")
    record, digests = _hex(doc, "record", None), _hex(doc, "digests", None)
    if len(digests) % _DIGEST or not 0 <= offset < len(digests) // _DIGEST or first + offset != seq:
        raise AuditFailure("offset, first seq and digests do not place the record in its block")
    claimed = int.from_bytes(record[4:12], "big") if record[:4] == b"SWR1" else -1
    if claimed != seq:
        raise AuditFailure(f"record says seq {claimed}, the proof is for seq {seq}")
    digest = digests[offset * _DIGEST:(offset + 1) * _DIGEST]
    if hashlib.sha256(b"\x00" + record).digest()[:_DIGEST] != digest:
        raise AuditFailure(f"the record is not the one the block's digest {offset} names")
    count = len(digests) // _DIGEST
    leaf = hashlib.sha256(b"\x00SWB1" + number.to_bytes(8, "big") + first.to_bytes(8, "big")
                          + count.to_bytes(4, "big") + digests).digest()
    if key is None:
        raise AuditFailure("a public key is needed to check the checkpoint ('public_key' or --key)")
    cp = check_checkpoint(doc.get("checkpoint"), key)
    if cp["size"] < seq:
        raise AuditFailure(f"the checkpoint covers records 1..{cp['size']}, not record {seq}")
    mth = root_from_inclusion(leaf, number - 1, size, proof)
    if mth is None:
        raise AuditFailure(f"proof has the wrong length for block {number} in a tree of {size} blocks")
    # The signed root binds the block count to the Merkle tree hash (integrity.blocks.tree_root).
    computed = hashlib.sha256(b"stackwatch-blocks-root\x00" + size.to_bytes(8, "big") + mth).digest()
    if computed != cp["root"]:
        raise AuditFailure(f"proof leads to root {computed.hex()}, "
                           f"the signed checkpoint says {cp['root'].hex()}")
    return (f"record {seq} (offset {offset} of block {number}) is in the tree of {size} blocks, root "
            f"{computed.hex()}; signed checkpoint of log {cp['log']} epoch {cp['epoch']} "
            f"({cp['size']} records); {pinned}")


def _blocks_root(blocks: int, mth: bytes) -> bytes:
    """The root a format 2 checkpoint signs: the block count bound to the Merkle tree hash."""
    return hashlib.sha256(b"stackwatch-blocks-root\x00" + blocks.to_bytes(8, "big") + mth).digest()


def _audit_block_consistency(doc: dict[str, Any], proof: list[bytes], key: bytes | None, pinned: str) -> str:
    """Record format 2: the tree of ``old_blocks`` block leaves (the store at ``old_size``
    records) is a prefix of the tree of ``new_blocks`` (at ``new_size``)."""
    old_size, new_size = _int(doc, "old_size"), _int(doc, "new_size")
    old_blocks, new_blocks = _int(doc, "old_blocks"), _int(doc, "new_blocks")
    old_mth, new_mth = _hex(doc, "old_mth"), _hex(doc, "new_mth")
    if old_size > new_size or old_blocks > new_blocks:
        raise AuditFailure(f"old size {old_size} ({old_blocks} blocks) is larger than new size "
                           f"{new_size} ({new_blocks} blocks): the log shrank")
    old_root, old_source = _signed_root(doc, old_size, key, "old_checkpoint")
    new_root, source = _signed_root(doc, new_size, key)
    if _blocks_root(old_blocks, old_mth) != old_root:
        raise AuditFailure(f"{old_blocks} blocks with tree hash {old_mth.hex()} do not make the old root "
                           f"{old_root.hex()}")
    if _blocks_root(new_blocks, new_mth) != new_root:
        raise AuditFailure(f"{new_blocks} blocks with tree hash {new_mth.hex()} do not make the new root "
                           f"{new_root.hex()}")
    reason = check_consistency(old_blocks, new_blocks, old_mth, new_mth, proof)
    if reason is not None:
        raise AuditFailure(reason)
    return (f"the store at {old_size} records ({old_blocks} blocks, root {old_root.hex()}, {old_source}) "
            f"is a prefix of the store at {new_size} records ({new_blocks} blocks, root {new_root.hex()}, "
            f"{source}); {pinned}")


def _signed(body: bytes, signature: bytes) -> dict[str, str]:
    return {"body": body.decode(), "signature": signature.hex()}


def inclusion_document(leaf_index: int, tree_size: int, proof: Sequence[bytes], checkpoint_body: bytes,
                       signature: bytes, public_key: bytes, *, record: bytes | None = None,
                       leaf_hash: bytes | None = None) -> dict[str, Any]:
    """The JSON object ``stackwatch store prove`` writes (give ``record`` or ``leaf_hash``)."""
    doc: dict[str, Any] = {"format": FORMAT, "type": "inclusion", "leaf_index": leaf_index,
                           "tree_size": tree_size}
    if record is not None:
        doc["record"] = record.hex()
    if leaf_hash is not None:
        doc["leaf_hash"] = leaf_hash.hex()
    doc.update(proof=[h.hex() for h in proof], checkpoint=_signed(checkpoint_body, signature),
               public_key=public_key.hex())
    return doc


def block_inclusion_document(seq: int, block: int, first_seq: int, digests: bytes, record: bytes,
                             tree_size: int, proof: Sequence[bytes], checkpoint_body: bytes, signature: bytes,
                             public_key: bytes) -> dict[str, Any]:
    """Record format 2: record ``seq`` at its offset in ``block``, and the block's Merkle proof."""
    return {"format": FORMAT, "type": "record-inclusion", "seq": seq, "block": block, "first_seq": first_seq,
            "offset": seq - first_seq, "record": record.hex(), "digests": digests.hex(),
            "tree_size": tree_size,
            "proof": [h.hex() for h in proof], "checkpoint": _signed(checkpoint_body, signature),
            "public_key": public_key.hex()}


def consistency_document(old_size: int, new_size: int, proof: Sequence[bytes], checkpoint_body: bytes,
                         signature: bytes, public_key: bytes, *, old_root: bytes | None = None,
                         old_checkpoint: tuple[bytes, bytes] | None = None) -> dict[str, Any]:
    """The JSON object ``stackwatch store consistency`` writes (old tree by root or checkpoint)."""
    doc: dict[str, Any] = {"format": FORMAT, "type": "consistency", "old_size": old_size,
                           "new_size": new_size}
    if old_root is not None:
        doc["old_root"] = old_root.hex()
    if old_checkpoint is not None:
        doc["old_checkpoint"] = _signed(*old_checkpoint)
    doc.update(proof=[h.hex() for h in proof], checkpoint=_signed(checkpoint_body, signature),
               public_key=public_key.hex())
    return doc


def block_consistency_document(old_size: int, new_size: int, old_blocks: int, new_blocks: int,
                               old_mth: bytes, new_mth: bytes, proof: Sequence[bytes], checkpoint_body: bytes,
                               signature: bytes, public_key: bytes, *, old_root: bytes | None = None,
                               old_checkpoint: tuple[bytes, bytes] | None = None) -> dict[str, Any]:
    """Record format 2: ``stackwatch store consistency`` over block leaves (sizes in records)."""
    doc: dict[str, Any] = {"format": FORMAT, "type": "block-consistency", "old_size": old_size,
                           "new_size": new_size, "old_blocks": old_blocks, "new_blocks": new_blocks,
                           "old_mth": old_mth.hex(), "new_mth": new_mth.hex()}
    if old_root is not None:
        doc["old_root"] = old_root.hex()
    if old_checkpoint is not None:
        doc["old_checkpoint"] = _signed(*old_checkpoint)
    doc.update(proof=[h.hex() for h in proof], checkpoint=_signed(checkpoint_body, signature),
               public_key=public_key.hex())
    return doc


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except OSError as exc:
        raise AuditFailure(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise AuditFailure(f"{path} is not valid JSON: {exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Verify a stackwatch inclusion or consistency proof offline.")
    parser.add_argument("proof", help="proof JSON file")
    parser.add_argument("--key", help="trusted Ed25519 public key: 64 hex digits, or a file (hex or PEM)")
    parser.add_argument("--old-checkpoint", help="JSON file with a signed checkpoint you kept earlier "
                        '({"body": ..., "signature": ...}) for a consistency proof')
    args = parser.parse_args(argv)
    try:
        key = load_key(args.key) if args.key else None
        old = _read_json(args.old_checkpoint) if args.old_checkpoint else None
        message = audit(_read_json(args.proof), key, old)
    except AuditFailure as exc:
        print(f"FAIL: {exc}")
        return 1
    print(f"OK: {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
