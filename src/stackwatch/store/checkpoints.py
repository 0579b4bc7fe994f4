"""Making checkpoints in the writer: sign (Ed25519), seal (ratchet), store, then witness.

A checkpoint is made in the same transaction as the records it covers: ``make`` inserts it,
the caller commits, then ``committed`` ratchets the sealing key (the key of the sealed epoch
is erased) and hands the checkpoint to the witnesses. A store without keys (``store init`` not
run yet) still chains every record; it just makes no checkpoints.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from stackwatch.store.integrity.io import CheckpointRow, LedgerIO
from stackwatch.store.integrity.sqlite_io import SQLiteLedgerIO
from stackwatch.store.record_ledger import key_paths
from stackwatch.store.seal import (
    NO_PREV,
    Checkpoint,
    Sealer,
    load_private_key,
    public_key_bytes,
    sign_checkpoint,
)
from stackwatch.store.witness import Witness

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    checkpoint: Checkpoint
    body: bytes
    signature: bytes
    seal: bytes


def ledger_io(conn: sqlite3.Connection | LedgerIO) -> LedgerIO:
    """The integrity layer's interface over ``conn`` (an sqlite3 connection is wrapped)."""
    return SQLiteLedgerIO(conn) if isinstance(conn, sqlite3.Connection) else conn


def last_checkpoint(conn: sqlite3.Connection | LedgerIO) -> StoredCheckpoint | None:
    row = ledger_io(conn).last_checkpoint()
    if row is None:
        return None
    return StoredCheckpoint(Checkpoint.from_bytes(row.body), row.body, row.signature, row.seal)


class Checkpointer:
    """Checkpoints every ``every`` records or ``interval`` seconds (checked at each commit)."""

    def __init__(
        self,
        data_dir: Path,
        log_id: str,
        conn: sqlite3.Connection | LedgerIO,
        *,
        every: int,
        interval: float,
        witnesses: list[Witness],
    ) -> None:
        self.log_id = log_id
        self.every = max(1, every)
        self.interval_us = int(interval * 1_000_000)
        self.witnesses = witnesses
        sign_path, _, seal_path = key_paths(data_dir)
        self.enabled = sign_path.exists() and seal_path.exists()
        self._key = load_private_key(sign_path) if self.enabled else None
        self.sealer = Sealer(seal_path) if self.enabled else None
        last = last_checkpoint(conn)
        self.last_size = last.checkpoint.size if last else 0
        self.last_time = last.checkpoint.time_us if last else 0
        self.prev = last.checkpoint.hash() if last else NO_PREV
        last_epoch = last.checkpoint.epoch if last else -1
        if self.sealer is not None and self.sealer.epoch <= last_epoch:
            # Crashed after committing epoch `last_epoch` but before ratcheting: erase its key now.
            log.warning(
                "sealing key was still at sealed epoch %d (crash after commit); ratcheting", self.sealer.epoch
            )
            self.sealer.advance_to(last_epoch + 1)

    @property
    def public_key(self) -> bytes | None:
        return public_key_bytes(self._key) if self._key is not None else None

    def due(self, size: int, now_us: int) -> bool:
        if not self.enabled or size == self.last_size:
            return False
        return size - self.last_size >= self.every or now_us - self.last_time >= self.interval_us

    def make(self, conn: sqlite3.Connection | LedgerIO, size: int, root: bytes,
             now_us: int) -> StoredCheckpoint:
        """Sign, seal and insert the checkpoint of the current epoch (caller's transaction)."""
        assert self.sealer is not None and self._key is not None
        cp = Checkpoint(self.log_id, self.sealer.epoch, size, root, max(now_us, self.last_time), self.prev)
        body = cp.to_bytes()
        # The seal binds the signing key: swapping the key and re-signing breaks every seal.
        tag = self.sealer.tag(cp, self.public_key)
        stored = StoredCheckpoint(cp, body, sign_checkpoint(self._key, body), tag)
        row = CheckpointRow(cp.epoch, cp.size, body, stored.signature, stored.seal)
        ledger_io(conn).insert_checkpoint(row, cp.time_us)
        return stored

    def committed(self, stored: StoredCheckpoint) -> None:
        """The transaction holding ``stored`` committed: erase the epoch's key, tell witnesses."""
        assert self.sealer is not None
        cp = stored.checkpoint
        self.sealer.advance_to(cp.epoch + 1)
        self.last_size, self.last_time, self.prev = cp.size, cp.time_us, cp.hash()
        for witness in self.witnesses:
            try:
                witness.send(stored.body, stored.signature, self.public_key or b"")
            except OSError as exc:  # a witness being down must not stop ingest; say so loudly
                log.error("witness %s did not take checkpoint epoch %d: %s", witness, cp.epoch, exc)
