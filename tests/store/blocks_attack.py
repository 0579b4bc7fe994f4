"""Record format 2 fixtures for the tamper and operations tests: a sealed store of several
blocks, the events it holds, and what an intruder with write access does after changing
blocks (``rechain``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import zstandard

from stackwatch.core.event import Event, Initiator
from stackwatch.store.chain import RECORD_HEAD, canonical_record_bytes, decode_record_bytes
from stackwatch.store.integrity import blocks as codec
from stackwatch.store.integrity.block_ledger import BlockLedger
from stackwatch.store.integrity.blocks import BLOCK_HEAD, BLOCK_MAGIC
from stackwatch.store.keys import init_store
from stackwatch.store.merkle import mth
from stackwatch.store.seal import Checkpoint, parse_initial_key, public_key_bytes, seal, sign_checkpoint
from stackwatch.store.sqlite import open_store
from stackwatch.store.sqlite_blocks import BlockStore
from stackwatch.store.verify import verify_store
from tests.store.conftest import LedgerStore, ledger_events
from tests.store.tamper import Attacker, Step

BATCHES = 6
PER_BATCH = 50
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@dataclass
class Sealed:
    data: Path
    k0: bytes

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.data / "stackwatch.db", isolation_level=None)

    def spans(self) -> dict[int, tuple[int, int]]:
        """block number -> (first seq, count)."""
        with self.db() as conn:
            return {n: (f, c) for n, f, c in conn.execute("SELECT id, first_seq, count FROM blocks")}

    def verify(self) -> tuple[int | None, int | None, str]:
        report = verify_store(self.data, initial_keys=[self.k0])
        first = report.first_bad
        assert first is not None, [str(p) for p in report.problems]
        return first.block, first.seq, first.kind


def event(n: int) -> Event:
    when = T0 + timedelta(seconds=n)
    return Event(
        time=when,
        received=when,
        host=f"node-{n % 3}",
        service="keystone",
        severity="info",
        message=f"Authorization failed for user{n % 7} from 10.1.{n % 5}.{n % 250}",
        kind="keystone",
        action="authenticate",
        outcome="failure",
        initiator=Initiator(name=f"user{n % 7}", source_ip=f"10.1.{n % 5}.{n % 250}"),
        raw=f"2026-05-01 12:00:{n % 60:02d}.000 1 WARNING keystone [req-{n:08x}] "
        f"Authorization failed for user{n % 7} from 10.1.{n % 5}.{n % 250}",
        origin="file:/var/log/keystone/keystone.log",
        ref=f"keystone.log:{n}",
    )


@pytest.fixture
def sealed(tmp_path: Path) -> Iterator[Sealed]:
    """A v2 store of several blocks, each sealed by its own checkpoint (a commit closes a block)."""
    data = tmp_path / "data"
    result = init_store(data, format=2, witness_file=tmp_path / "w.jsonl")
    with open_store(data, background_index=False) as store:
        assert isinstance(store, BlockStore)
        for batch in range(BATCHES):
            store.append_events([event(batch * PER_BATCH + i) for i in range(PER_BATCH)])
            store.checkpoint()
    yield Sealed(data, parse_initial_key(result.initial_key))


def rechain(conn: sqlite3.Connection) -> None:
    """What an intruder with write access does after changing blocks: recompute every chain
    hash, the Merkle node cache and the ledger state (it cannot re-sign sealed checkpoints)."""
    ledger = BlockLedger()
    for number, first, data, digests in conn.execute(
        "SELECT id, first_seq, data, digests FROM blocks ORDER BY id"
    ).fetchall():
        block = ledger.add(first, data, digests)
        conn.execute("UPDATE blocks SET id = ?, chain = ? WHERE id = ?", (block.number, block.chain, number))
    conn.execute("DELETE FROM merkle_nodes")
    conn.executemany("INSERT INTO merkle_nodes VALUES (?, ?, ?)", ledger.nodes)
    conn.execute(
        "UPDATE ledger_state SET size = ?, head = ?, merkle = ? WHERE id = 1",
        (ledger.size, ledger.head, ledger.acc.to_bytes()),
    )


# --- the data-driven tamper suite (tests/store/tamper.py) on record format 2 ---


class BlockAttacker(Attacker):
    """``tamper.Attacker`` for record format 2: the same steps, on blocks. Record steps change a
    flat list of the records (and their index rows); without ``rebuild`` the blocks get the new
    bytes under their old digests and chain (what an intruder who stops there leaves), with it
    every block is re-made, re-hashed and re-chained, the Merkle cache and ledger state too."""

    def __init__(self, data: Path, *, backup: bool = False) -> None:
        super().__init__(data, backup=backup)
        blocks = self.db.execute("SELECT id, count, data FROM blocks ORDER BY id").fetchall()
        self._counts = [(number, count) for number, count, _ in blocks]
        self.records = [r for _, _, data in blocks for r in codec.records(data)]
        self._written = False

    def run(self, steps: tuple[Step, ...]) -> None:
        self.db.execute("BEGIN")
        for name, *args in steps:
            getattr(self, name)(*args)
        if not self._written:
            self._write_back()
        self.db.execute("COMMIT")
        if self.backup:
            self._rewrite_backup_lists()
            if self._empty_list:
                (self.data / "checkpoints.jsonl").write_text("")
        else:
            self.erase_witness()
        self.db.close()

    def _at(self, seq: int) -> int:
        return next(i for i, r in enumerate(self.records) if _seq_of(r) == seq)

    def flip_byte(self, seq: int) -> None:
        i = self._at(seq)
        record = bytearray(self.records[i])
        record[RECORD_HEAD.size + decode_record_bytes(bytes(record)).raw.__len__() // 2] ^= 0x04
        self.records[i] = bytes(record)

    def _edited(self, record: bytes, seq: int, message: str, ip: str | None) -> bytes:
        fields = decode_record_bytes(record)
        norm = orjson.loads(fields.normalized)
        norm[18] = message
        if ip is not None:
            norm[11] = ip
        return canonical_record_bytes(seq, fields.raw, orjson.dumps(norm), fields.received_us, fields.origin)

    def edit(self, seq: int) -> None:
        i = self._at(seq)
        self.records[i] = self._edited(self.records[i], seq, "session opened", "10.9.9.9")
        self.db.execute("UPDATE events SET init_ip = '10.9.9.9' WHERE seq = ?", (seq,))

    def delete(self, seq: int) -> None:
        del self.records[self._at(seq)]
        self.db.execute("DELETE FROM events WHERE seq = ?", (seq,))

    def insert(self, seq: int) -> None:
        i = self._at(seq)
        forged = self._edited(self.records[i], seq, "Accepted password for root", None)
        self.records[i:] = [forged, *(_with_seq(r, _seq_of(r) + 1) for r in self.records[i:])]
        last = self.db.execute("SELECT max(seq) FROM events").fetchone()[0]
        for s in range(last, seq - 1, -1):
            self.db.execute("UPDATE events SET seq = seq + 1 WHERE seq = ?", (s,))
        self.db.execute(
            "INSERT INTO events SELECT ?, time, received, source, severity, kind, action, outcome, "
            "init_name, init_id, init_project, init_domain, init_ip, init_agent, target_type, target_id, "
            "target_name, observer, request_id, message, attrs, raw, origin, ref, chain "
            "FROM events WHERE seq = ?",
            (seq, seq + 1),
        )

    def reorder(self, a: int, b: int) -> None:
        ia, ib = self._at(a), self._at(b)
        ra, rb = self.records[ia], self.records[ib]
        self.records[ia], self.records[ib] = _with_seq(rb, a), _with_seq(ra, b)
        super().reorder(a, b)  # the index rows

    def truncate(self, keep: int) -> None:
        self.records = [r for r in self.records if _seq_of(r) <= keep]
        super().truncate(keep)

    def _write_back(self) -> None:
        """The changed bytes into the blocks they came from, digests and chain left as they were."""
        rest = list(self.records)
        for n, (number, count) in enumerate(self._counts):
            take = rest if n == len(self._counts) - 1 else rest[:count]
            rest = rest[len(take) :]
            if not take:
                self.db.execute("DELETE FROM blocks WHERE id = ?", (number,))
                continue
            data = zstandard.ZstdCompressor().compress(b"".join(take))
            self.db.execute("UPDATE blocks SET data = ? WHERE id = ?", (data, number))

    def rebuild(self) -> None:
        """Renumber densely; every block re-made at the checkpoint sizes (so checkpoints can be
        re-made too), re-hashed and re-chained; Merkle cache, ledger state, index rows in step."""
        self.records = [_with_seq(r, n) for n, r in enumerate(self.records, 1)]
        seqs = [s for (s,) in self.db.execute("SELECT seq FROM events ORDER BY seq")]
        for new, old in enumerate(seqs, 1):
            if new != old:
                self.db.execute("UPDATE events SET seq = ? WHERE seq = ?", (new, old))
        # Where the blocks ended before (a careful intruder keeps every untouched leaf as it was)
        # and the checkpoint sizes (so that checkpoints can be re-made over block ends).
        cuts = {s for (s,) in self.db.execute("SELECT size FROM checkpoints")}
        end = 0
        for _, count in self._counts:
            end += count
            cuts.add(end)
        anchor = self.db.execute("SELECT value FROM meta WHERE name = 'v2_anchor'").fetchone()
        ledger = BlockLedger(0, bytes.fromhex(anchor[0])) if anchor else BlockLedger()
        encoder = codec.BlockEncoder()
        self.db.execute("DELETE FROM blocks")
        group: list[bytes] = []
        for n, record in enumerate(self.records, 1):
            group.append(record)
            if n in cuts or n == len(self.records):
                block = ledger.add(n - len(group) + 1, *encoder.encode(group))
                self.db.execute(
                    "INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?)",
                    (block.number, block.first_seq, block.count, block.digests, block.data, block.chain),
                )
                group = []
        self.db.execute("DELETE FROM merkle_nodes")
        self.db.executemany("INSERT INTO merkle_nodes VALUES (?, ?, ?)", ledger.nodes)
        self.db.execute(
            "UPDATE ledger_state SET size = ?, head = ?, merkle = ?",
            (ledger.size, ledger.head, ledger.acc.to_bytes()),
        )
        self._written = True

    def remake_checkpoints(self) -> None:
        """Every checkpoint re-made over the blocks now held (roots as format 2 signs them),
        re-signed with the key on disk and re-sealed with the current sealing key."""
        inputs = [
            BLOCK_HEAD.pack(BLOCK_MAGIC, n, f, c) + bytes(d)
            for n, f, c, d in self.db.execute("SELECT id, first_seq, count, digests FROM blocks ORDER BY id")
        ]
        ends = {f + c - 1: n for n, f, c in self.db.execute("SELECT id, first_seq, count FROM blocks")}
        current, signing = self._current_key(), self._signing_key()
        pub = public_key_bytes(signing)
        prev = None
        for epoch, size, body in self.db.execute(
            "SELECT epoch, size, body FROM checkpoints ORDER BY epoch"
        ).fetchall():
            if size not in ends:
                self.db.execute("DELETE FROM checkpoints WHERE epoch = ?", (epoch,))
                continue
            old = Checkpoint.from_bytes(body)
            blocks = ends[size]
            cp = Checkpoint(
                old.log_id,
                epoch,
                size,
                codec.tree_root(blocks, mth(inputs[:blocks])),
                old.time_us,
                prev or old.prev,
            )
            if cp.to_bytes() == body and not self._swapped:
                prev = cp.hash()
                continue
            self.db.execute(
                "UPDATE checkpoints SET body = ?, signature = ?, seal = ? WHERE epoch = ?",
                (
                    cp.to_bytes(),
                    sign_checkpoint(signing, cp),
                    seal(epoch, current, cp.to_bytes(), pub),
                    epoch,
                ),
            )
            prev = cp.hash()


def _seq_of(record: bytes) -> int:
    return int.from_bytes(record[4:12], "big")


def _with_seq(record: bytes, seq: int) -> bytes:
    return record[:4] + seq.to_bytes(8, "big") + record[12:]


def build_block_store(data: Path, records: int, *, every: int = 50) -> LedgerStore:
    """The tamper suite's template in record format 2 (same events and checkpoint sizes)."""
    result = init_store(data, format=2, background_index=False)
    with BlockStore(data, checkpoint_every=every, batch_size=25, background_index=False) as store:
        events = ledger_events(records)
        for i in range(0, records, 10):
            store.append_events(events[i : i + 10])
    return LedgerStore(data, parse_initial_key(result.initial_key), result.initial_key, result.public_key)
