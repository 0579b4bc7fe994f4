"""The tamper suite's attacker and its table of attacks (issue #13), kept apart from the tests so
that another record format (issue #16) runs the same table with its own attacker.

The attacker is an intruder with root on the monitor host during the current epoch: it holds the
database, the signing key and the *current* sealing key, knows the format, and after changing
records recomputes whatever depends on them (chain hashes, Merkle node cache, ledger state,
checkpoint roots), re-signs and re-seals what it can, deletes what it cannot re-make, rolls back
or deletes the sealing key file, and erases the local witness. What it cannot do is make a key of
an epoch already sealed: ``store verify --key K0`` must catch every attack in ``TAMPERS``.

An attack is data: a name, the record it targets (or None for attacks on evidence only) and a
list of steps, each the name of an ``Attacker`` method and its arguments. A format's attacker
implements the same methods; ``BACKUP_STEPS`` says how each step reads on an unpacked backup
(where the key file's place is taken by the epoch proof ``keys/seal.epoch``).
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackwatch.store.merkle import mth
from stackwatch.store.record_ledger import chain_existing, iter_ledger, key_paths
from stackwatch.store.seal import (
    Checkpoint,
    generate_signing_key,
    load_private_key,
    public_key_bytes,
    read_sealing_key,
    seal,
    sign_checkpoint,
    write_private_key,
    write_public_key,
    write_sealing_key,
)
from stackwatch.store.sealed_epochs import epoch_proof_path
from stackwatch.store.witness import CONFIG_FILE, default_witness_path, entry

Step = tuple[Any, ...]


@dataclass(frozen=True)
class Tamper:
    name: str
    steps: tuple[Step, ...]
    target: int | None = None  # the record attacked (the first one missing, for a truncation)
    evidence: str = ""  # what is left to catch it, for the table in docs/store.md
    store_warns: bool = False  # on a live store only a WARNING (exit 1) can be honest about it

    @property
    def id(self) -> str:
        return self.name


class Attacker:
    """Attacks on a SQLite ledger store (schema v3+) in ``data``. ``backup`` = an unpacked backup:
    no key file, the epoch proof instead, and the checkpoint list/manifest kept in step."""

    def __init__(self, data: Path, *, backup: bool = False) -> None:
        self.data = data
        self.backup = backup
        self.db = sqlite3.connect(data / "stackwatch.db", isolation_level=None)
        self._empty_list = False
        self._swapped = False

    def run(self, steps: tuple[Step, ...]) -> None:
        self.db.execute("BEGIN")
        for name, *args in steps:
            getattr(self, name)(*args)
        self.db.execute("COMMIT")
        if self.backup:
            self._rewrite_backup_lists()
            if self._empty_list:
                (self.data / "checkpoints.jsonl").write_text("")
        else:
            self.erase_witness()
        self.db.close()

    # --- records ---

    def flip_byte(self, seq: int) -> None:
        raw = bytearray(self.db.execute("SELECT raw FROM events WHERE seq = ?", (seq,)).fetchone()[0])
        raw[len(raw) // 2] ^= 0x04
        self.db.execute("UPDATE events SET raw = ? WHERE seq = ?", (bytes(raw), seq))

    def edit(self, seq: int) -> None:
        self.db.execute(
            "UPDATE events SET message = 'session opened', init_ip = '10.9.9.9' WHERE seq = ?", (seq,)
        )

    def delete(self, seq: int) -> None:
        self.db.execute("DELETE FROM events WHERE seq = ?", (seq,))

    def insert(self, seq: int) -> None:
        """A forged record at ``seq``, the later ones moved up."""
        last = self.db.execute("SELECT max(seq) FROM events").fetchone()[0]
        for s in range(last, seq - 1, -1):
            self.db.execute("UPDATE events SET seq = seq + 1 WHERE seq = ?", (s,))
        self.db.execute(
            "INSERT INTO events SELECT ?, time, received, source, severity, kind, action, outcome, "
            "init_name, init_id, init_project, init_domain, init_ip, init_agent, target_type, target_id, "
            "target_name, observer, request_id, 'Accepted password for root', attrs, raw, origin, ref, chain "
            "FROM events WHERE seq = ?",
            (seq, seq + 1),
        )

    def reorder(self, a: int, b: int) -> None:
        self.db.execute("UPDATE events SET seq = -1 WHERE seq = ?", (a,))
        self.db.execute("UPDATE events SET seq = ? WHERE seq = ?", (a, b))
        self.db.execute("UPDATE events SET seq = ? WHERE seq = -1", (b,))

    def truncate(self, keep: int) -> None:
        self.db.execute("DELETE FROM events WHERE seq > ?", (keep,))

    def rebuild(self) -> None:
        """Renumber densely, recompute every chain hash, the Merkle node cache and the ledger state."""
        seqs = [s for (s,) in self.db.execute("SELECT seq FROM events ORDER BY seq")]
        for new, old in enumerate(seqs, 1):
            if new != old:
                self.db.execute("UPDATE events SET seq = ? WHERE seq = ?", (new, old))
        self.db.execute("DELETE FROM merkle_nodes")
        state = chain_existing(self.db)
        size, head, merkle = state.snapshot()
        self.db.execute("UPDATE ledger_state SET size = ?, head = ?, merkle = ?", (size, head, merkle))
        state.save(self.db)

    # --- checkpoints ---

    def delete_checkpoints_from(self, seq: int) -> None:
        """Delete every checkpoint that covers record ``seq`` (and all later ones)."""
        self.db.execute("DELETE FROM checkpoints WHERE size >= ?", (seq,))

    def delete_checkpoint(self, epoch: int) -> None:
        self.db.execute("DELETE FROM checkpoints WHERE epoch = ?", (epoch,))

    def delete_all_checkpoints(self) -> None:
        self.db.execute("DELETE FROM checkpoints")

    def remake_checkpoints(self) -> None:
        """Every checkpoint re-made over the records now held: root, link, signature with the
        signing key on disk, seal with the only sealing key the attacker has (the current one)."""
        records = [rec for _, rec, _ in iter_ledger(self.db, 1)]
        current = self._current_key()
        signing = self._signing_key()
        pub = public_key_bytes(signing)
        swapped = self._swapped
        prev = None
        stored = self.db.execute("SELECT epoch, size, body FROM checkpoints ORDER BY epoch").fetchall()
        for epoch, size, body in stored:
            if size > len(records):
                self.db.execute("DELETE FROM checkpoints WHERE epoch = ?", (epoch,))
                continue
            old = Checkpoint.from_bytes(body)
            cp = Checkpoint(old.log_id, epoch, size, mth(records[:size]), old.time_us, prev or old.prev)
            if cp.to_bytes() == body and not swapped:  # untouched: keep its true seal
                prev = cp.hash()
                continue
            tag = seal(epoch, current, cp.to_bytes(), pub)
            self.db.execute(
                "UPDATE checkpoints SET body = ?, signature = ?, seal = ? WHERE epoch = ?",
                (cp.to_bytes(), sign_checkpoint(signing, cp), tag, epoch),
            )
            prev = cp.hash()

    def swap_signing_key(self) -> None:
        """A new signing key pair, every checkpoint re-signed, the signers table updated."""
        new = generate_signing_key()
        self._swapped = True
        sign_path, pub_path, _ = key_paths(self.data)
        if sign_path.exists() or not self.backup:
            write_private_key(sign_path, new)
        write_public_key(pub_path, new)
        self.db.execute("UPDATE signers SET public_key = ?", (public_key_bytes(new),))
        for epoch, body in self.db.execute("SELECT epoch, body FROM checkpoints").fetchall():
            self.db.execute("UPDATE checkpoints SET signature = ? WHERE epoch = ?", (new.sign(body), epoch))

    # --- the evidence of how many epochs were sealed ---

    def roll_back_key(self, to_epoch: int | None = None) -> None:
        """Rewrite the key file's (backup: the epoch proof's) epoch field, keeping the later key's
        bytes: to ``to_epoch``, or to the number of checkpoints left (what would look right)."""
        if to_epoch is None:
            to_epoch = self.db.execute("SELECT coalesce(max(epoch) + 1, 0) FROM checkpoints").fetchone()[0]
        if self.backup:
            path = epoch_proof_path(self.data)
            doc = json.loads(path.read_text())
            doc["epoch"] = to_epoch
            path.write_text(json.dumps(doc))
        else:
            write_sealing_key(key_paths(self.data)[2], to_epoch, self._current_key())

    def delete_key(self) -> None:
        (epoch_proof_path(self.data) if self.backup else key_paths(self.data)[2]).unlink()

    def fresh_key(self) -> None:
        """A brand-new ratchet at epoch 0 (as if the store had been made anew)."""
        if self.backup:
            epoch_proof_path(self.data).write_text(
                json.dumps({"format": "stackwatch-epoch-proof/v1", "epoch": 0, "proof": os.urandom(32).hex(),
                            "from_epoch": 0}))
        else:
            write_sealing_key(key_paths(self.data)[2], 0, os.urandom(32))

    def set_role(self, role: str) -> None:
        self.db.execute("UPDATE meta SET value = ? WHERE name = 'role'", (role,))

    def erase_witness(self) -> None:
        """Root on the host also owns the local witness beside the data folder."""
        default_witness_path(self.data).unlink(missing_ok=True)
        (self.data / CONFIG_FILE).unlink(missing_ok=True)

    # --- helpers ---

    def _current_key(self) -> bytes:
        if self.backup:  # a backup holds no key; the intruder uses the live store's (any later key)
            return os.urandom(32)
        return read_sealing_key(key_paths(self.data)[2]).key

    def _signing_key(self):  # type: ignore[no-untyped-def]
        sign_path = key_paths(self.data)[0]
        return load_private_key(sign_path) if sign_path.exists() else generate_signing_key()

    def _rewrite_backup_lists(self) -> None:
        """Keep checkpoints.jsonl and the manifest in step with the altered database."""
        db = sqlite3.connect(self.data / "stackwatch.db")
        pub = bytes(db.execute("SELECT public_key FROM signers ORDER BY from_epoch").fetchone()[0])
        lines = [json.dumps(entry(bytes(b), bytes(s), pub), sort_keys=True)
                 for b, s in db.execute("SELECT body, signature FROM checkpoints ORDER BY epoch")]
        manifest = json.loads((self.data / "manifest.json").read_text())
        manifest["checkpoints"] = len(lines)
        manifest["records"] = db.execute("SELECT size FROM ledger_state").fetchone()[0]
        db.close()
        (self.data / "checkpoints.jsonl").write_text("".join(f"{ln}\n" for ln in lines))
        (self.data / "manifest.json").write_text(json.dumps(manifest))

    def empty_checkpoint_list(self) -> None:
        """Backups only: the list of checkpoints emptied after the rest was made consistent."""
        self._empty_list = True


# --- the table ---
# The template store: the init admin event + 300 records, checkpoints at sizes
# 1, 61, 121, 181, 241, 301 (epochs 0..5), the key file at epoch 6.

REBUILT = ("rebuild",)
_RECORD_ATTACKS: tuple[tuple[str, Step, int], ...] = (
    ("flip a byte", ("flip_byte", 150), 150),
    ("edit", ("edit", 150), 150),
    ("delete", ("delete", 150), 150),
    ("insert", ("insert", 150), 150),
    ("reorder", ("reorder", 150, 152), 150),
    ("truncate anywhere", ("truncate", 150), 151),
    ("truncate at a checkpoint boundary", ("truncate", 121), 122),
)
_COVER_UPS: tuple[tuple[str, tuple[Step, ...], str], ...] = (
    ("", (), "chain hash"),
    ("; chain+Merkle+state rebuilt", (REBUILT,), "Merkle root vs signed checkpoint"),
    ("; rebuilt, checkpoints re-signed and re-sealed", (REBUILT, ("remake_checkpoints",)),
     "seal (made with a later key)"),
    ("; rebuilt, covering checkpoints deleted", (REBUILT, ("delete_checkpoints_from", 0)),
     "key file epoch (gap)"),
    ("; rebuilt, covering checkpoints deleted, key file rolled back",
     (REBUILT, ("delete_checkpoints_from", 0), ("roll_back_key",)), "key file vs ratchet from k0"),
    ("; rebuilt, covering checkpoints deleted, key file deleted",
     (REBUILT, ("delete_checkpoints_from", 0), ("delete_key",)), "missing key file"),
    ("; rebuilt, all checkpoints deleted", (REBUILT, ("delete_all_checkpoints",)),
     "no checkpoints, key file"),
    ("; rebuilt, all checkpoints deleted, key file rolled back to epoch 0",
     (REBUILT, ("delete_all_checkpoints",), ("roll_back_key", 0)), "key file vs ratchet from k0"),
    ("; rebuilt, all checkpoints deleted, key file deleted",
     (REBUILT, ("delete_all_checkpoints",), ("delete_key",)), "no checkpoints, missing key file"),
    ("; rebuilt, signing key swapped, checkpoints re-made",
     (REBUILT, ("swap_signing_key",), ("remake_checkpoints",)), "seal binds the signing key"),
)


def _fill(step: Step, target: int) -> Step:
    # ("delete_checkpoints_from", 0) means: from the checkpoint covering the target record
    return (step[0], target) if step == ("delete_checkpoints_from", 0) else step


TAMPERS: tuple[Tamper, ...] = (
    *(
        Tamper(f"{attack}{cover}", (step, *(_fill(s, target) for s in steps)), target, evidence)
        for attack, step, target in _RECORD_ATTACKS
        for cover, steps, evidence in _COVER_UPS
    ),
    Tamper("delete one checkpoint (epoch 2)", (("delete_checkpoint", 2),), 62, "checkpoint chain (gap)"),
    Tamper("delete the newest checkpoint", (("delete_checkpoint", 5),), 242, "key file epoch (gap)"),
    Tamper("delete the newest checkpoint, key file rolled back",
           (("delete_checkpoint", 5), ("roll_back_key",)), 242, "key file vs ratchet from k0"),
    Tamper("delete the newest checkpoint, key file deleted",
           (("delete_checkpoint", 5), ("delete_key",)), None, "missing key file"),
    Tamper("delete every checkpoint", (("delete_all_checkpoints",),), 1, "no checkpoints, key file"),
    Tamper("delete every checkpoint, key file rolled back to 0",
           (("delete_all_checkpoints",), ("roll_back_key", 0)), None, "key file vs ratchet from k0"),
    Tamper("delete every checkpoint, key file deleted",
           (("delete_all_checkpoints",), ("delete_key",)), None, "no checkpoints, missing key file"),
    Tamper("roll the key file back one epoch", (("roll_back_key", 5),), None, "key file vs ratchet from k0"),
    Tamper("delete the key file", (("delete_key",),), None, "missing key file"),
    Tamper("swap the signing key (all checkpoints re-signed, signers updated)", (("swap_signing_key",),), 1,
           "seal binds the signing key"),
    Tamper("truncate at a checkpoint boundary; rebuilt, covering checkpoints deleted, role rewritten to "
           "standby",
           (("truncate", 121), REBUILT, ("delete_checkpoints_from", 122), ("set_role", "standby")), 122,
           "a standby holding its primary's key (role)"),
    Tamper("truncate at a checkpoint boundary; rebuilt, covering checkpoints deleted, role rewritten to "
           "standby, key file replaced",
           (("truncate", 121), REBUILT, ("delete_checkpoints_from", 122), ("set_role", "standby"),
            ("fresh_key",)), None, "standby: WARNING only (evidence on the primary)", store_warns=True),
    Tamper("a fresh store: all checkpoints re-made with a new signing key and a new ratchet",
           (("edit", 150), REBUILT, ("swap_signing_key",), ("fresh_key",), ("remake_checkpoints",)), None,
           "key file vs ratchet from k0; seals"),
)

BACKUP_TAMPERS: tuple[Tamper, ...] = (
    *TAMPERS,
    Tamper("cut at a checkpoint boundary, checkpoint list emptied",
           (("truncate", 121), REBUILT, ("delete_checkpoints_from", 122), ("empty_checkpoint_list",)), None,
           "backup lists vs database"),
)
