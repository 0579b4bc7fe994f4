"""``stackwatch store verify``: check a store folder without trusting anything in it.

Checks, in order: every checkpoint's Ed25519 signature (signer key per epoch from ``signers``,
or the pinned ``public_key``); the checkpoint chain (epochs dense, prev links, sizes never
shrinking) and, given the initial sealing key(s) k0, every seal (``seal.verify_seals``:
gaps, re-sealing with a later key, truncation, a rolled-back key file, an unsealed tail);
the hash chain of every stored record, recomputed from the stored columns, and the Merkle
root at every checkpoint; the frontier kept for a range expired by retention against the
checkpoint at its end; the ledger state against the records; and every witness entry against
the store's checkpoints (the ones given, the file witnesses in ``witnesses.conf`` and the
default local witness next to the data folder). With k0 it also checks the evidence of how many
epochs were sealed (``store/sealed_epochs.py``): the sealing key file must hold the key its epoch
claims, a restored store's epoch proof must be genuine, and an initialised store must have both
checkpoints and that evidence. Problems are FAIL (tampering or loss), WARN (an unsealed tail, time
going backwards) or NOTE (what was not or cannot be checked); ``first_bad`` is the first
record put in doubt.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from stackwatch.store.chain import GENESIS, verify_chain
from stackwatch.store.integrity.io import LedgerIO
from stackwatch.store.integrity.verify import IndexRow
from stackwatch.store.merkle import MerkleAccumulator
from stackwatch.store.record_ledger import iter_ledger, key_paths, scan_ledger
from stackwatch.store.seal import (
    Checkpoint,
    SealedCheckpoint,
    key_id,
    load_public_key,
    public_key_bytes,
    verify_checkpoint_signature,
    verify_seals,
)
from stackwatch.store.sealed_epochs import epoch_evidence
from stackwatch.store.verify_parallel import CHUNK, verify_records_parallel
from stackwatch.store.witness import local_witness_files, read_entries

DB_FILE: Final = "stackwatch.db"
PARALLEL_MIN: Final = 4 * CHUNK
"""Stores with at least this many records (64k) are verified by several processes: measured on
2 cores, 70k records verify ~1.6x faster so (fork and per-chunk setup are a few ms)."""
_SEAL_KINDS: Final = {"bad-seal", "resealed"}


@dataclass(frozen=True, slots=True)
class Problem:
    level: str  # FAIL, WARN, NOTE
    kind: str
    seq: int | None  # first record put in doubt
    message: str
    block: int | None = None  # format 2: the first bad block

    def __str__(self) -> str:
        where = f" at seq {self.seq}" if self.seq is not None else ""
        return f"{self.level} {self.kind}{where}: {self.message}"


@dataclass(slots=True)
class VerifyReport:
    problems: list[Problem] = field(default_factory=list)
    records: int = 0  # records checked
    size: int = 0  # tree size (records ever appended)
    pruned_to: int = 0
    epochs: int = 0
    sealed_size: int = 0
    seconds: float = 0.0
    signing_keys: list[tuple[int, str]] = field(default_factory=list)  # (from epoch, fingerprint)
    witnesses: list[str] = field(default_factory=list)  # witness files read

    blocks: int = 0  # format 2: blocks checked

    def add(self, level: str, kind: str, seq: int | None, message: str, block: int | None = None) -> None:
        self.problems.append(Problem(level, kind, seq, message, block))

    @property
    def failed(self) -> bool:
        return any(p.level == "FAIL" for p in self.problems)

    def ok(self, *, allow_unsealed_tail: bool = False) -> bool:
        for p in self.problems:
            if p.level == "FAIL" or (
                p.level == "WARN" and not (allow_unsealed_tail and p.kind == "unsealed-tail")
            ):
                return False
        return True

    @property
    def first_bad(self) -> Problem | None:
        bad = [p for p in self.problems if p.level == "FAIL"]
        with_seq = [p for p in bad if p.seq is not None]
        return min(with_seq, key=lambda p: p.seq or 0) if with_seq else (bad[0] if bad else None)


def _signer_for(signers: list[tuple[int, bytes]], epoch: int, default: bytes | None) -> bytes | None:
    key = default
    for from_epoch, pub in signers:
        if from_epoch <= epoch:
            key = pub
    return key


def verify_store(
    data_dir: str | Path,
    *,
    initial_keys: list[bytes] | None = None,
    public_key: Ed25519PublicKey | bytes | None = None,
    witnesses: list[str | Path] | None = None,
    local_witnesses: bool = True,
) -> VerifyReport:
    """Verify the store in ``data_dir`` (read-only). ``initial_keys``: k0 of each signer in order
    (the first from ``store init``, then one per restore/promotion). ``witnesses``: witness files
    to check against; with ``local_witnesses`` also the file witnesses the store is configured
    with and the default local witness, when present."""
    started = time.perf_counter()
    data_dir = Path(data_dir)
    report = VerifyReport()
    db = data_dir / DB_FILE
    if not db.is_file():
        report.add("FAIL", "missing", None, f"no store database at {db}")
        return report
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        found = local_witness_files(data_dir) if local_witnesses else []
        _verify(conn, data_dir, report, initial_keys or [], public_key, [*(witnesses or []), *found])
    except sqlite3.DatabaseError as exc:
        report.add("FAIL", "corrupt", None, f"the database cannot be read: {exc}")
    finally:
        conn.close()
    report.seconds = time.perf_counter() - started
    return report


def _verify(
    conn: sqlite3.Connection,
    data_dir: Path,
    report: VerifyReport,
    initial_keys: list[bytes],
    pinned: Ed25519PublicKey | bytes | None,
    witnesses: list[str | Path],
) -> None:
    if conn.execute("PRAGMA user_version").fetchone()[0] < 3:
        report.add(
            "FAIL",
            "not-ledger",
            None,
            "the store predates the tamper-evident ledger: open it once read-write to upgrade",
        )
        return
    state = conn.execute(
        "SELECT size, head, merkle, pruned_to, pruned_head, pruned_merkle, pruned_time "
        "FROM ledger_state WHERE id = 1"
    ).fetchone()
    if state is None:
        report.add("FAIL", "ledger-state", None, "the ledger state row is missing")
        state = (0, GENESIS, None, 0, None, None, None)
    size, _head, merkle, pruned_to, pruned_head, pruned_merkle, pruned_time = state
    max_seq = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
    blocks = _format(conn) == 2
    if blocks:  # the records are those in the blocks (an index row proves nothing)
        max_seq = conn.execute("SELECT coalesce(max(first_seq + count - 1), 0) FROM blocks").fetchone()[0]
    report.pruned_to = pruned_to
    sign_path, pub_path, _ = key_paths(data_dir)
    default_pub: bytes | None = None
    if pinned is not None:
        default_pub = pinned if isinstance(pinned, bytes) else public_key_bytes(pinned)
    elif pub_path.exists():
        default_pub = public_key_bytes(load_public_key(pub_path))
    signers = [
        (int(e), bytes(k))
        for e, k in conn.execute("SELECT from_epoch, public_key FROM signers ORDER BY from_epoch")
    ]
    if pinned is not None and signers and signers[0][1] != default_pub:
        report.add("FAIL", "wrong-key", None, "the store's first signer is not the pinned public key")
    report.signing_keys = [(e, key_id(k)) for e, k in signers] or (
        [(0, key_id(default_pub))] if default_pub is not None else []
    )
    if len(signers) > 1:
        report.add(
            "NOTE",
            "signers",
            None,
            "checkpoints are signed by "
            + ", ".join(f"key {key_id(k)} from epoch {e}" for e, k in signers)
            + " (restore or promotion)",
        )
    rows = conn.execute(
        "SELECT epoch, size, body, signature, seal FROM checkpoints ORDER BY epoch"
    ).fetchall()
    items = [SealedCheckpoint(bytes(b), bytes(t), bytes(s)) for _, _, b, s, t in rows]
    roots: dict[int, bytes] = {}
    prev_size = 0
    bodies: dict[int, bytes] = {}
    for epoch, cp_size, body, signature, _tag in rows:
        try:
            cp = Checkpoint.from_bytes(bytes(body))
        except ValueError:
            continue  # reported by verify_seals as malformed
        bodies[cp.epoch] = bytes(body)
        if cp.epoch != epoch or cp.size != cp_size:
            report.add(
                "FAIL",
                "checkpoint-row",
                prev_size + 1,
                f"checkpoint row {epoch} does not match its signed body",
            )
        key = _signer_for(signers, cp.epoch, default_pub)
        if key is None:
            report.add(
                "FAIL",
                "no-key",
                None,
                f"checkpoints exist but no public key to check them ({pub_path} missing)",
            )
            break
        if not verify_checkpoint_signature(key, bytes(body), bytes(signature)):
            report.add(
                "FAIL",
                "bad-signature",
                prev_size + 1,
                f"checkpoint epoch {cp.epoch} (size {cp.size}): "
                "Ed25519 signature does not verify: the checkpoint was replaced or altered",
            )
        else:
            roots.setdefault(cp.size, cp.root)
        prev_size = max(prev_size, cp.size)
    report.epochs = len(rows)
    role_row = conn.execute("SELECT value FROM meta WHERE name = 'role'").fetchone()
    standby = role_row is not None and role_row[0] == "standby"
    initialised = bool(rows or signers or initial_keys) or sign_path.exists() or pub_path.exists()
    evidence = epoch_evidence(data_dir, [e for e, _ in signers] or [0], initial_keys,
                              standby=standby, initialised=initialised)
    for level, kind, message in evidence.problems:
        # Without the evidence, nothing after the newest checkpoint can be shown complete.
        report.add(level, kind, prev_size + 1, message)
    if standby:
        report.add(
            "WARN",
            "standby",
            None,
            "this store is a standby: the evidence of how many epochs were sealed (the key file) is on "
            "its primary, so checkpoints deleted here at a checkpoint boundary are caught only by "
            "verifying the primary or by a witness (after store promote this store is checked fully)",
        )
    if initialised and not rows and (not standby or max(size, max_seq)):
        report.add(
            "FAIL",
            "no-checkpoints",
            1 if max(size, max_seq) else None,
            "the store was initialised (keys, signers or k0 given) but holds no checkpoint: "
            "store init always makes epoch 0, so every checkpoint was deleted",
        )

    def signer_of(epoch: int) -> bytes | None:
        return _signer_for(signers, epoch, default_pub)

    _check_seals(report, items, signers, initial_keys, max(size, max_seq), evidence.exact, signer_of)
    sealed_epochs = max((int(r[0]) for r in rows), default=-1) + 1
    if evidence.at_least is not None and evidence.at_least > sealed_epochs:
        report.add(
            "FAIL",
            "gap",
            prev_size + 1,
            f"{evidence.source} proves the ratchet reached epoch {evidence.at_least}, but the "
            f"checkpoints end at epoch {sealed_epochs - 1}: the sealed epochs after it were deleted",
        )
    if not rows and not sign_path.exists():
        report.add(
            "WARN",
            "unsealed-tail",
            1 if size else None,
            "the store has no keys and no checkpoint "
            "(run stackwatch store init): nothing is signed or sealed",
        )
    if blocks:
        _check_blocks(conn, report, roots, max(size, prev_size))
        for path in witnesses:
            _check_witness(report, Path(path), bodies, signers, default_pub)
        return
    # The chain, from the start or from the retained frontier.
    first, prev_hash, acc = 1, GENESIS, None
    if pruned_to:
        first, prev_hash = pruned_to + 1, bytes(pruned_head or b"")
        try:
            acc = MerkleAccumulator.from_bytes(bytes(pruned_merkle or b""))
        except ValueError:
            acc = None
        root = roots.get(pruned_to)
        if acc is None or acc.size != pruned_to or root is None or acc.root() != root:
            report.add(
                "FAIL",
                "pruned-frontier",
                pruned_to + 1,
                f"the Merkle frontier kept for the expired "
                f"records 1..{pruned_to} does not match a signed checkpoint at that size",
            )
            acc = None  # the chain is still checked from the kept head; Merkle roots cannot be
        attested = [e for e, b in bodies.items() if Checkpoint.from_bytes(b).size <= pruned_to]
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime((pruned_time or 0) / 1e6))
        report.add(
            "NOTE",
            "pruned",
            None,
            f"records 1..{pruned_to} were expired by retention at {when}: they "
            f"are attested ONLY by checkpoints (epochs {min(attested, default=0)}.."
            f"{max(attested, default=0)}, "
            f"root {roots.get(pruned_to, b'').hex()[:16]}… at size {pruned_to}); their content can no "
            "longer be checked",
        )
    if acc is None:
        acc = MerkleAccumulator() if first == 1 else None
    end = max(size, prev_size, max_seq)
    counted = [0]

    def counting() -> Iterator[tuple[int, bytes, bytes]]:
        for item in iter_ledger(conn, first):
            counted[0] += 1
            yield item

    if first == 1 and end >= PARALLEL_MIN and (os.cpu_count() or 1) > 1 and end == max_seq:
        # Large stores: the same check, split over processes (verify_parallel).
        fault, report.records = verify_records_parallel(data_dir / DB_FILE, end, roots)
        acc = None
    elif (fast := _fast_records(conn, first, end, prev_hash, acc, roots))[0]:
        fault, acc, report.records = None, fast[1], end - first + 1
    else:
        fault = verify_chain(
            counting(),
            prev_hash=prev_hash,
            first_seq=first,
            end_seq=end,  # type: ignore[arg-type]
            roots=({s: r for s, r in roots.items() if s >= first} or None) if acc is not None else None,
            merkle=acc,
        )
        report.records = counted[0]
    report.size = end
    if fault is not None:
        seq = fault.seq
        if fault.kind == "root":  # the first record in doubt opens the checkpoint interval
            seq = max((s for s in roots if s < fault.seq), default=first - 1) + 1
        report.add("FAIL", fault.kind, seq, fault.reason)
    elif merkle is not None and acc is not None and acc.size == size and acc.to_bytes() != bytes(merkle):
        report.add("FAIL", "ledger-state", None, "the stored Merkle state does not match the records")
    if size != max_seq and fault is None:
        report.add(
            "FAIL",
            "ledger-state",
            min(size, max_seq) + 1,
            f"the ledger state says {size} records, the events table ends at seq {max_seq}",
        )
    for path in witnesses:
        _check_witness(report, Path(path), bodies, signers, default_pub)
    if initialised and not witnesses:
        report.add(
            "NOTE",
            "witness",
            None,
            "no witness read: without one, a store wiped and rebuilt whole (new keys) is caught only "
            "with --key K0; configure an off-host witness (docs/store.md)",
        )


_INDEX_ROWS: Final = (
    "SELECT e.seq, e.time, s.host, s.service, e.severity, e.kind, e.action, e.outcome, e.init_name, "
    "e.init_id, e.init_project, e.init_ip, e.target_id, e.target_name, e.request_id "
    "FROM events AS e LEFT JOIN sources AS s ON s.id = e.source ORDER BY e.seq")


def _format(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
    return int(row[0]) if row else 1


def _check_blocks(conn: sqlite3.Connection, report: VerifyReport, roots: dict[int, bytes],
                  end_records: int) -> None:
    """Record format 2: the blocks, their chain and Merkle roots, and the index rows."""
    from stackwatch.store.integrity.sqlite_io import SQLiteLedgerIO

    io = SQLiteLedgerIO(conn)
    v2_epoch = conn.execute("SELECT value FROM meta WHERE name = 'v2_epoch'").fetchone()
    v1_roots: dict[int, bytes] = {}
    if v2_epoch is not None:  # migrated: the format 1 epochs signed roots of the record tree
        from stackwatch.store.integrity.blocks import anchor_of

        last_v1 = None
        for (body,) in conn.execute("SELECT body FROM checkpoints WHERE epoch < ? ORDER BY epoch",
                                    (int(v2_epoch[0]),)):
            last_v1 = bytes(body)
            cp = Checkpoint.from_bytes(last_v1)
            if cp.size in roots:
                v1_roots[cp.size] = roots.pop(cp.size)
        if last_v1 is None or anchor_of(last_v1) != io.anchor():
            report.add("FAIL", "anchor", 1, "the block chain's anchor is not the last format 1 checkpoint "
                       "signed before the migration", 1)
            return
    state = conn.execute("SELECT size, merkle FROM ledger_state WHERE id = 1").fetchone()
    check_block_log(io, conn.execute(_INDEX_ROWS), report, roots, end_records,
                    (int(state[0]), bytes(state[1]) if state[1] else None) if state else None,
                    v1_roots=v1_roots)


def check_block_log(
    io: LedgerIO,
    index_rows: Iterable[IndexRow],
    report: VerifyReport,
    roots: dict[int, bytes],
    end_records: int,
    state: tuple[int, bytes | None] | None,
    *,
    v1_roots: dict[int, bytes] | None = None,
) -> None:
    """Record format 2, on any backend's ``LedgerIO``: the blocks of one log, their chain and
    Merkle roots (``roots``: checkpoint size -> verified signed root), what retention expired,
    the index rows (``index_rows``, by seq) and the ledger ``state`` (size, Merkle bytes)."""
    from stackwatch.store.integrity.verify import check_blocks

    v1_roots = dict(v1_roots or {})
    prev, start = io.anchor() or GENESIS, None
    pruned = io.pruned()
    if pruned is not None:
        from stackwatch.store.integrity.blocks import tree_root

        records, blocks, prev, frontier = pruned
        try:
            acc = MerkleAccumulator.from_bytes(frontier)
        except ValueError:
            acc = None
        if acc is None or acc.size != blocks or roots.get(records) != tree_root(blocks, acc.root()):
            report.add("FAIL", "pruned-frontier", records + 1, "the Merkle frontier kept for the expired "
                       f"records 1..{records} does not match a signed checkpoint at that size",
                       max(blocks, 0) + 1)
            return
        start = (blocks + 1, records + 1, acc)
        v1_roots = {}
        report.pruned_to = records
        report.add("NOTE", "pruned", None,
                   f"records 1..{records} (blocks 1..{blocks}) were expired by retention: "
                   "they are attested ONLY by checkpoints; their content can no longer be checked")
    check = check_blocks(io, index_rows, roots=roots, end_records=end_records,
                         prev=prev, v1_roots=v1_roots, start=start)
    report.records, report.blocks = check.records, check.blocks
    last = io.blocks_covering(2**62)
    report.size = next((b.first_seq + b.count - 1 for b in io.blocks(last, last)), 0) if last else 0

    def block_of(seq: int) -> int:  # the block holding seq, or the one that would come next
        covering = io.blocks_covering(seq)
        number = covering or 1
        return number if io.block_of(seq) is not None or not covering else number + 1

    # The checks above (seals, checkpoints) name records: name their blocks too.
    report.problems = [p if p.seq is None or p.block is not None else
                       Problem(p.level, p.kind, p.seq, p.message, block_of(p.seq)) for p in report.problems]
    if check.fault is not None:
        f = check.fault
        report.add("FAIL", f.kind, f.seq, f.reason, f.block)
        return
    if check.acc is not None and state is not None and state[0] == report.size and state[1] and \
            check.acc.to_bytes() != state[1]:
        report.add("FAIL", "ledger-state", None, "the stored Merkle state does not match the blocks")


def _fast_records(
    conn: sqlite3.Connection,
    first: int,
    end: int,
    prev_hash: bytes,
    acc: MerkleAccumulator | None,
    roots: dict[int, bytes],
) -> tuple[bool, MerkleAccumulator | None]:
    """The sequential check through ``record_ledger.scan_ledger``: ``(True, advanced accumulator (a
    copy))`` if every record and root checks out, else ``(False, None)``: then the reference
    path runs and reports exactly what is wrong."""
    if end < first:
        return False, None
    work = acc.copy() if acc is not None else None
    sizes = sorted(s for s in roots if s >= first) if work is not None else []
    if sizes and sizes[-1] > end:
        return False, None  # a checkpoint beyond the records: the reference path reports it

    def root_ok(size: int) -> bool:
        return work is not None and work.root() == roots[size]

    if scan_ledger(conn, first, end, prev_hash, work, sizes, root_ok) is None:
        return False, None
    return True, work


def _check_seals(
    report: VerifyReport,
    items: list[SealedCheckpoint],
    signers: list[tuple[int, bytes]],
    initial_keys: list[bytes],
    tree_size: int,
    sealer_epoch: int | None,
    signer_of: Callable[[int], bytes | None],
) -> None:
    segments = [e for e, _ in signers] or [0]
    if not items and (sealer_epoch is None or not initial_keys):
        return
    if not initial_keys:
        report.add(
            "NOTE",
            "seals-unchecked",
            None,
            "seals not checked: give the initial sealing key with --key "
            "(signatures, links and the chain are still checked)",
        )
    keys = list(initial_keys[: len(segments)])
    if len(initial_keys) and len(keys) < len(segments):
        report.add(
            "NOTE",
            "seals-unchecked",
            None,
            f"seals from epoch {segments[len(keys)]} on not checked: "
            f"{len(segments)} signer segments, {len(keys)} keys given",
        )
    structural = verify_seals(
        keys[-1] if keys else bytes(32), items, tree_size, sealer_epoch=sealer_epoch, signer_of=signer_of
    )
    findings = [f for f in structural.findings if f.kind not in _SEAL_KINDS]
    unbound: list[int] = []
    for i, k0 in enumerate(keys):
        lo = segments[i]
        hi = segments[i + 1] if i + 1 < len(segments) else None
        run = (
            structural
            if k0 is keys[-1] and i == len(keys) - 1
            else verify_seals(k0, items, tree_size, signer_of=signer_of)
        )
        unbound += [e for e in run.unbound if e >= lo and (hi is None or e < hi)]
        findings += [
            f
            for f in run.findings
            if f.kind in _SEAL_KINDS
            and f.epoch is not None
            and f.epoch >= lo
            and (hi is None or f.epoch < hi)
        ]
    report.sealed_size = structural.sealed_size if keys else 0
    if unbound:
        report.add(
            "NOTE",
            "seal-unbound",
            None,
            f"the seals of {len(unbound)} epochs ({min(unbound)}..{max(unbound)}) predate binding the "
            "signing key to the seals: for them a swapped signing key is caught only with --public-key "
            "or a witness",
        )
    last_epoch = structural.epochs and max(Checkpoint.from_bytes(i.body).epoch for i in items)
    for f in findings:
        if f.kind == "key-behind" and f.epoch == last_epoch:
            # Exactly the newest sealed epoch: the writer died between committing the seal and
            # ratcheting (a window of one fsync). The writer erases the key when it restarts.
            report.add(
                "WARN",
                f.kind,
                None,
                f"the sealing key of the newest sealed epoch {f.epoch} still exists: "
                "the writer stopped between sealing and erasing it (a crash?); it is erased when the "
                "writer restarts (stackwatch store checkpoint). Until then that epoch can be re-sealed.",
            )
            continue
        report.add(
            f.level, f.kind, f.first_seq, (f"epoch {f.epoch}: " if f.epoch is not None else "") + f.message
        )


def _check_witness(
    report: VerifyReport,
    path: Path,
    bodies: dict[int, bytes],
    signers: list[tuple[int, bytes]],
    default_pub: bytes | None,
) -> None:
    report.witnesses.append(str(path))
    try:
        entries = read_entries(path)
    except (OSError, ValueError) as exc:
        report.add("FAIL", "witness", None, f"witness {path} cannot be read: {exc}")
        return
    if not entries:
        report.add("WARN", "witness", None, f"witness {path} holds no checkpoint")
        return
    sizes = {ep: Checkpoint.from_bytes(b).size for ep, b in bodies.items()}
    for e in entries:
        epoch, body = int(e["epoch"]), str(e["body"]).encode()
        # The first record in doubt follows the store's newest checkpoint before this epoch.
        prev_size = max((s for ep, s in sizes.items() if ep < epoch), default=0)
        ours = bodies.get(epoch)
        key = _signer_for(signers, epoch, default_pub)
        if key is None or not verify_checkpoint_signature(key, body, bytes.fromhex(e["signature"])):
            report.add(
                "FAIL",
                "witness",
                prev_size + 1,
                f"witness {path}: checkpoint epoch {epoch} was signed by a "
                "different key: the store was rebuilt or its key replaced",
            )
        elif ours is None:
            report.add(
                "FAIL",
                "witness",
                prev_size + 1,
                f"witness {path} holds checkpoint epoch {epoch} (size "
                f"{e['size']}) that the store does not have: the store was truncated or rebuilt",
            )
        elif ours != body:
            report.add(
                "FAIL",
                "witness",
                prev_size + 1,
                f"witness {path}: the store's checkpoint epoch {epoch} "
                "differs from the witnessed one: the store was rewritten or rebuilt",
            )
    last = max(int(e["epoch"]) for e in entries)
    if bodies and max(bodies) > last:
        report.add(
            "NOTE", "witness", None, f"witness {path} ends at epoch {last}, the store at {max(bodies)}"
        )
