"""Creating a store's keys (``stackwatch store init``) and promoting a standby.

``<data>/keys/`` (mode 0700) holds ``sign.key`` (Ed25519, PKCS#8 PEM, 0600), ``sign.pub``
(0644) and ``seal.key`` (the current epoch's ratchet key, 0600). The initial sealing key k0 is
returned once, to be printed and kept offline; it is not stored anywhere.

A store that already has checkpoints (restored from a backup, whose private keys are never
included, or a standby being promoted) starts a new signer segment: its new keys sign and
seal from the next epoch on, recorded in ``signers``; verification then takes one k0 per
segment.

``store init`` also makes the store private (data folder 0700, database files 0600: every
event is readable by whoever reads them) and, when no witness is configured, gives the store a
local witness file outside the data folder (``witness.default_witness_path``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackwatch.core.errors import StoreError
from stackwatch.store.admin import admin_event
from stackwatch.store.permissions import make_private
from stackwatch.store.record_ledger import key_paths
from stackwatch.store.seal import (
    Sealer,
    format_initial_key,
    generate_signing_key,
    new_initial_key,
    public_key_bytes,
    write_private_key,
    write_public_key,
)
from stackwatch.store.sqlite import SQLiteStore, open_store, stored_format
from stackwatch.store.witness import CONFIG_FILE, configured, default_witness_path, parse_witness


@dataclass(frozen=True, slots=True)
class InitResult:
    initial_key: str  # k0, formatted: print once, keep offline
    public_key: str  # hex
    epoch: int  # first epoch of this signer
    standby: bool


def _create_keys(data_dir: Path, first_epoch: int) -> tuple[bytes, bytes]:
    sign_path, pub_path, seal_path = key_paths(data_dir)
    if sign_path.exists() or seal_path.exists():
        raise StoreError(f"{sign_path.parent} already holds keys: the store is initialised")
    sign_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(sign_path.parent, 0o700)
    key = generate_signing_key()
    write_private_key(sign_path, key)
    write_public_key(pub_path, key)
    k0 = new_initial_key()
    sealer = Sealer.create(seal_path, k0)
    if first_epoch:
        sealer.advance_to(first_epoch)
    return k0, public_key_bytes(key)


def init_store(
    data_dir: str | os.PathLike[str],
    *,
    standby: bool = False,
    witnesses: list[str] | None = None,
    witness_file: str | os.PathLike[str] | None = None,
    local_witness: bool = True,
    actor: str = "stackwatch",
    format: int | None = None,
    **options: Any,
) -> InitResult:
    """Create keys (and the first checkpoint, unless a standby). With no witness given or
    configured, the checkpoints also go to a local witness file (``witness_file``, default
    ``default_witness_path``) unless ``local_witness`` is False."""
    data_dir = Path(data_dir)
    witnesses = list(witnesses or [])
    for spec in witnesses:
        parse_witness(spec)  # refuse a bad spec before creating anything
    if witness_file is not None:
        witnesses.append(f"file:{Path(witness_file).absolute()}")
    elif local_witness and not witnesses and not configured(data_dir):
        witnesses.append(f"file:{default_witness_path(data_dir)}")
    for spec in witnesses:
        witness = parse_witness(spec)
        inside = getattr(witness, "path", None)
        if inside is not None and Path(inside).absolute().is_relative_to(data_dir.absolute()):
            raise StoreError(f"witness {spec!r} is inside the data folder: whoever rewrites the store "
                             "rewrites it too; put it outside (another mount or host)")
    found = stored_format(data_dir)
    if format is not None and found is not None and found != format:
        raise StoreError(f"the store in {data_dir} is in record format {found}"
                         + (": convert it with stackwatch store migrate" if format == 2 else ""))
    make_private(data_dir)
    with open_store(data_dir, format=format, **options) as store:
        last = store._conn.execute("SELECT max(epoch) FROM checkpoints").fetchone()[0]
        first_epoch = 0 if last is None else last + 1
        if standby and (store.size or last is not None):
            raise StoreError("a standby starts from an empty store")
        if witnesses:
            (data_dir / CONFIG_FILE).write_text("".join(f"{w}\n" for w in witnesses))
            os.chmod(data_dir / CONFIG_FILE, 0o600)
        k0, pub = _create_keys(data_dir, first_epoch)
        if standby:
            store._write(lambda: store._conn.execute("UPDATE meta SET value = 'standby' WHERE name = 'role'"))
            store._role = "standby"
        else:
            _start_segment(store, first_epoch, pub, "init" if first_epoch == 0 else "restore", actor)
    make_private(data_dir)
    return InitResult(format_initial_key(k0), pub.hex(), first_epoch, standby)


def _start_segment(store: SQLiteStore, epoch: int, pub: bytes, reason: str, actor: str) -> None:
    """Record the signer segment, an admin event and its checkpoint, in one transaction."""
    now = store._clock.now()
    from stackwatch.store.rows import to_micros

    if store._append_lock is None:
        store._take_append_lock()

    def insert(conn: Any) -> None:
        conn.execute("INSERT INTO signers VALUES (?, ?, ?, ?)", (epoch, pub, reason, to_micros(now)))
        conn.execute("UPDATE meta SET value = 'primary' WHERE name = 'role'")

    store._role = "primary"
    store._queue_admin(
        admin_event(
            actor, f"store.{reason}", str(store.data_dir), {"epoch": epoch, "public_key": pub.hex()}, now=now
        )
    )
    store._write_rows(force_checkpoint=True, checkpoints=[insert])


def promote(data_dir: str | os.PathLike[str], *, actor: str = "stackwatch", **options: Any) -> int:
    """Make a standby the primary: its own keys sign and seal from the next epoch. Returns it."""
    with open_store(data_dir, **options) as store:
        if store.role != "standby":
            raise StoreError(f"the store in {data_dir} is not a standby")
        sign_path, _, _ = key_paths(Path(data_dir))
        if not sign_path.exists():
            raise StoreError("the standby has no keys (stackwatch store init --standby)")
        store._take_append_lock(replicate=False)
        assert store._checkpointer is not None and store._checkpointer.sealer is not None
        epoch = store._checkpointer.sealer.epoch
        pub = store._checkpointer.public_key
        assert pub is not None
        _start_segment(store, epoch, pub, "promote", actor)
    return epoch
