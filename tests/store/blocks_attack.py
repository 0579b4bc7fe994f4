"""Record format 2 fixtures for the tamper and operations tests: a sealed store of several
blocks, the events it holds, and what an intruder with write access does after changing
blocks (``rechain``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stackwatch.core.event import Event, Initiator
from stackwatch.store.integrity.ledger import BlockLedger
from stackwatch.store.keys import init_store
from stackwatch.store.seal import parse_initial_key
from stackwatch.store.sqlite import open_store
from stackwatch.store.sqlite_blocks import BlockStore
from stackwatch.store.verify import verify_store

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


