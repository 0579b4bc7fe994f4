"""The data-driven tamper suite's attacker (tests/store/tamper.py) on the shared PostgreSQL store:
the same steps, on one writer's log (writer 0, so an event's id is its seq). The intruder holds
the database and the writer's keys folder on its host (signing key, current sealing key): it
changes records in the blocks and their index rows, re-makes blocks, chain, Merkle nodes and
ledger state, re-signs and re-seals checkpoints, rolls back or deletes the sealing key file.

Not applicable here: ``set_role`` (a PostgreSQL store has no standby role: the database's own
replication), and the backup steps (a backup is a pg_dump, verified whole before it is kept)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import psycopg
import zstandard
from psycopg import sql

from stackwatch.store.integrity import blocks as codec
from stackwatch.store.integrity.block_ledger import BlockLedger
from stackwatch.store.integrity.blocks import BLOCK_HEAD, BLOCK_MAGIC
from stackwatch.store.merkle import mth
from stackwatch.store.postgres import open_store
from stackwatch.store.postgres.keys import init_writer
from stackwatch.store.postgres.verify import verify_postgres
from stackwatch.store.seal import Checkpoint, parse_initial_key, public_key_bytes, seal, sign_checkpoint
from stackwatch.store.verify import VerifyReport
from tests.pgdb import SERVER, url_of
from tests.store.blocks_attack import BlockAttacker, _seq_of, _with_seq
from tests.store.conftest import ledger_events
from tests.store.tamper import Step

WRITER = "w"
_EVENT_COLUMNS = ("time, received, source, severity, kind, action, outcome, init_name, init_id, "
                  "init_project, init_domain, init_ip, target_id, target_name, request_id, words")


@dataclass
class PGLog:
    """One writer's log in a database of its own (a copy of the template), and its keys folder."""

    url: str
    keys: Path
    k0: bytes
    public_key: str

    def verify(self) -> VerifyReport:
        """The writer's report, given its k0 and its keys folder (as ``store verify --key w=K0
        --keys w=DIR`` on its host)."""
        reports = verify_postgres(self.url, initial_keys={WRITER: [self.k0]}, key_dirs={WRITER: self.keys})
        assert set(reports) <= {WRITER, "*"}
        return reports[WRITER]


def build_pg_template(database: str, keys: Path, records: int, *, every: int = 50) -> PGLog:
    """The suite's template in ``database``: init (record 1, checkpoint at 1), then ``records``
    events appended 10 at a time in batches of 25 with a checkpoint every 50 records, closed
    cleanly: checkpoints at 1, 61, 121, 181, 241, 301 as in the embedded store's template."""
    url = url_of(database)
    result = init_writer(url, writer=WRITER, keys=keys)
    with open_store(url, writer=WRITER, keys=keys, checkpoint_every=every, batch_size=25) as store:
        events = ledger_events(records)
        for i in range(0, records, 10):
            store.append_events(events[i:i + 10])
    return PGLog(url, keys, parse_initial_key(result.initial_key), result.public_key)


def copy_template(template: PGLog, database: str, keys: Path) -> PGLog:
    """A new database made from the template's (no session may be open on it) and a copy of
    its keys folder."""
    source = template.url.rpartition("/")[2]
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(database),
                                                                     sql.Identifier(source)))
    shutil.copytree(template.keys, keys)
    return PGLog(url_of(database), keys, template.k0, template.public_key)


class PGAttacker(BlockAttacker):
    """``BlockAttacker``'s record steps (on the flat list of records) with this store's tables;
    the key-file steps act on the writer's keys folder (``self.data``)."""

    def __init__(self, log: PGLog) -> None:
        self.data = log.keys
        self.backup = False
        self._empty_list = False
        self._swapped = False
        self.db = psycopg.connect(log.url)  # one transaction: the whole attack commits at once
        self.db.execute("SET search_path TO stackwatch")
        blocks = self.db.execute("SELECT number, count, data FROM blocks WHERE writer = 0 "
                                 "ORDER BY number").fetchall()
        self._counts = [(int(n), int(c)) for n, c, _ in blocks]
        self.records = [r for _, _, data in blocks for r in codec.records(bytes(data))]
        self._written = False

    def run(self, steps: tuple[Step, ...]) -> None:
        for name, *args in steps:
            getattr(self, name)(*args)
        if not self._written:
            self._write_back()
        self.db.commit()
        self.db.close()

    # --- index rows (id = seq: writer 0) ---

    def edit(self, seq: int) -> None:
        i = self._at(seq)
        self.records[i] = self._edited(self.records[i], seq, "session opened", "10.9.9.9")
        self.db.execute("UPDATE events SET init_ip = '10.9.9.9' WHERE writer = 0 AND seq = %s", (seq,))

    def delete(self, seq: int) -> None:
        del self.records[self._at(seq)]
        self.db.execute("DELETE FROM events WHERE writer = 0 AND seq = %s", (seq,))

    def insert(self, seq: int) -> None:
        i = self._at(seq)
        forged = self._edited(self.records[i], seq, "Accepted password for root", None)
        self.records[i:] = [forged, *(_with_seq(r, _seq_of(r) + 1) for r in self.records[i:])]
        last = self.db.execute("SELECT max(seq) FROM events WHERE writer = 0").fetchone()[0]
        for s in range(last, seq - 1, -1):
            self._move(s, s + 1)
        self.db.execute(f"INSERT INTO events (id, writer, seq, {_EVENT_COLUMNS}) "
                        f"SELECT %s, 0, %s, {_EVENT_COLUMNS} FROM events WHERE writer = 0 AND seq = %s",
                        (seq, seq, seq + 1))

    def reorder(self, a: int, b: int) -> None:
        ia, ib = self._at(a), self._at(b)
        ra, rb = self.records[ia], self.records[ib]
        self.records[ia], self.records[ib] = _with_seq(rb, a), _with_seq(ra, b)
        self._move(a, -1)
        self._move(b, a)
        self._move(-1, b)

    def truncate(self, keep: int) -> None:
        self.records = [r for r in self.records if _seq_of(r) <= keep]
        self.db.execute("DELETE FROM events WHERE writer = 0 AND seq > %s", (keep,))

    def _move(self, old: int, new: int) -> None:
        self.db.execute("UPDATE events SET seq = %s, id = %s WHERE writer = 0 AND seq = %s", (new, new, old))

    # --- blocks, ledger, checkpoints ---

    def _write_back(self) -> None:
        rest = list(self.records)
        for n, (number, count) in enumerate(self._counts):
            take = rest if n == len(self._counts) - 1 else rest[:count]
            rest = rest[len(take):]
            if not take:
                self.db.execute("DELETE FROM blocks WHERE writer = 0 AND number = %s", (number,))
                continue
            data = zstandard.ZstdCompressor().compress(b"".join(take))
            self.db.execute("UPDATE blocks SET data = %s WHERE writer = 0 AND number = %s", (data, number))

    def rebuild(self) -> None:
        self.records = [_with_seq(r, n) for n, r in enumerate(self.records, 1)]
        seqs = [s for (s,) in self.db.execute("SELECT seq FROM events WHERE writer = 0 ORDER BY seq")]
        for new, old in enumerate(seqs, 1):
            if new != old:
                self._move(old, new)
        cuts = {s for (s,) in self.db.execute("SELECT size FROM checkpoints WHERE writer = 0")}
        end = 0
        for _, count in self._counts:
            end += count
            cuts.add(end)
        ledger = BlockLedger()
        encoder = codec.BlockEncoder()
        self.db.execute("DELETE FROM blocks WHERE writer = 0")
        group: list[bytes] = []
        for n, record in enumerate(self.records, 1):
            group.append(record)
            if n in cuts or n == len(self.records):
                block = ledger.add(n - len(group) + 1, *encoder.encode(group))
                self.db.execute("INSERT INTO blocks VALUES (0, %s, %s, %s, %s, %s, %s)",
                                (block.number, block.first_seq, block.count, block.digests, block.data,
                                 block.chain))
                group = []
        self.db.execute("DELETE FROM merkle_nodes WHERE writer = 0")
        with self.db.cursor() as cur:
            cur.executemany("INSERT INTO merkle_nodes VALUES (0, %s, %s, %s)", ledger.nodes)
        self.db.execute("UPDATE ledger_state SET size = %s, head = %s, merkle = %s WHERE writer = 0",
                        (ledger.size, ledger.head, ledger.acc.to_bytes()))
        self._written = True

    def delete_checkpoints_from(self, seq: int) -> None:
        self.db.execute("DELETE FROM checkpoints WHERE writer = 0 AND size >= %s", (seq,))

    def delete_checkpoint(self, epoch: int) -> None:
        self.db.execute("DELETE FROM checkpoints WHERE writer = 0 AND epoch = %s", (epoch,))

    def delete_all_checkpoints(self) -> None:
        self.db.execute("DELETE FROM checkpoints WHERE writer = 0")

    def remake_checkpoints(self) -> None:
        spans = self.db.execute("SELECT number, first_seq, count, digests FROM blocks WHERE writer = 0 "
                                "ORDER BY number").fetchall()
        inputs = [BLOCK_HEAD.pack(BLOCK_MAGIC, n, f, c) + bytes(d) for n, f, c, d in spans]
        ends = {f + c - 1: n for n, f, c, _ in spans}
        current, signing = self._current_key(), self._signing_key()
        pub = public_key_bytes(signing)
        prev = None
        stored = self.db.execute("SELECT epoch, size, body FROM checkpoints WHERE writer = 0 "
                                 "ORDER BY epoch").fetchall()
        for epoch, size, body in stored:
            body = bytes(body)
            if size not in ends:
                self.delete_checkpoint(epoch)
                continue
            old = Checkpoint.from_bytes(body)
            blocks = ends[size]
            root = codec.tree_root(blocks, mth(inputs[:blocks]))
            cp = Checkpoint(old.log_id, epoch, size, root, old.time_us, prev or old.prev)
            if cp.to_bytes() == body and not self._swapped:
                prev = cp.hash()
                continue
            self.db.execute("UPDATE checkpoints SET body = %s, signature = %s, seal = %s "
                            "WHERE writer = 0 AND epoch = %s",
                            (cp.to_bytes(), sign_checkpoint(signing, cp),
                             seal(epoch, current, cp.to_bytes(), pub), epoch))
            prev = cp.hash()

    def swap_signing_key(self) -> None:
        from stackwatch.store.record_ledger import key_paths
        from stackwatch.store.seal import generate_signing_key, write_private_key, write_public_key

        new = generate_signing_key()
        self._swapped = True
        sign_path, pub_path, _ = key_paths(self.data)
        write_private_key(sign_path, new)
        write_public_key(pub_path, new)
        self.db.execute("UPDATE signers SET public_key = %s WHERE writer = 0", (public_key_bytes(new),))
        for epoch, body in self.db.execute("SELECT epoch, body FROM checkpoints WHERE writer = 0").fetchall():
            self.db.execute("UPDATE checkpoints SET signature = %s WHERE writer = 0 AND epoch = %s",
                            (new.sign(bytes(body)), epoch))

    def roll_back_key(self, to_epoch: int | None = None) -> None:
        if to_epoch is None:
            row = self.db.execute(
                "SELECT coalesce(max(epoch) + 1, 0) FROM checkpoints WHERE writer = 0").fetchone()
            to_epoch = int(row[0])
        super().roll_back_key(to_epoch)

    def set_role(self, role: str) -> None:
        raise NotImplementedError("a PostgreSQL store has no standby role")
