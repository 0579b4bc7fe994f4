"""The PostgreSQL store's logs: keys, checkpoints, verify per writer, and what tampering it finds.

Each attack is what someone with write access to the database does (SQL on the tables); the
report must name the first bad block and record of the writer attacked, and leave the other
writers' logs clean."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from stackwatch.core.errors import StoreError
from stackwatch.store.integrity.block_ledger import BlockLedger
from stackwatch.store.postgres import open_store
from stackwatch.store.postgres.keys import init_writer
from stackwatch.store.postgres.verify import verify_postgres
from stackwatch.store.seal import parse_initial_key
from tests.store.blocks_attack import event

BATCHES = 4
PER_BATCH = 40


@dataclass
class Shared:
    url: str
    k0: dict[str, list[bytes]]
    database: str
    keys: Path

    def sql(self) -> psycopg.Connection:
        conn = psycopg.connect(self.database, autocommit=True)
        conn.execute("SET search_path TO stackwatch")
        return conn

    def reports(self) -> dict[str, object]:
        return verify_postgres(self.url, initial_keys=self.k0)  # type: ignore[return-value]

    def first_bad(self, writer: str) -> tuple[int | None, int | None, str]:
        report = verify_postgres(self.url, initial_keys=self.k0)[writer]
        first = report.first_bad
        assert first is not None, [str(p) for p in report.problems]
        return first.block, first.seq, first.kind


@pytest.fixture
def shared(pg_database: str, tmp_path: Path) -> Iterator[Shared]:
    """Two writers' logs in one fresh schema, each of BATCHES sealed blocks."""
    url = f"{pg_database}?schema=stackwatch"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS stackwatch CASCADE")
    keys: dict[str, list[bytes]] = {}
    for name in ("alpha", "beta"):
        result = init_writer(url, writer=name, keys=tmp_path / name)
        keys[name] = [parse_initial_key(result.initial_key)]
        with open_store(url, writer=name, keys=tmp_path / name) as store:
            for batch in range(BATCHES):
                store.append_events([event(batch * PER_BATCH + i) for i in range(PER_BATCH)])
                store.checkpoint()
    yield Shared(url, keys, pg_database, tmp_path)


def test_every_writers_log_verifies(shared: Shared) -> None:
    reports = verify_postgres(shared.url, initial_keys=shared.k0,
                              key_dirs={"alpha": shared.keys / "alpha", "beta": shared.keys / "beta"})
    assert sorted(reports) == ["alpha", "beta"]
    for name, report in reports.items():
        assert report.ok(), (name, [str(p) for p in report.problems])
        assert report.records == BATCHES * PER_BATCH + 1  # and the store.init admin event
        assert report.blocks == BATCHES + 1
        assert report.sealed_size == report.size


def test_a_second_process_cannot_take_a_writer_in_use(shared: Shared, tmp_path: Path) -> None:
    with open_store(shared.url, writer="alpha") as first:
        first.start_writer()
        with open_store(shared.url, writer="alpha") as second, pytest.raises(StoreError, match="in use"):
            second.append_events([event(1)])


def test_reads_span_every_writer(shared: Shared) -> None:
    from stackwatch.store.base import EventQuery

    with open_store(shared.url, read_only=True) as store:
        assert store.counts().events == 2 * (BATCHES * PER_BATCH + 1)
        hits = store.search_events(EventQuery(text="user3", limit=10_000))
        assert {h.seq >> 40 for h in hits} == {0, 1}
        assert all("user3" in h.event.message for h in hits)


def _alpha_block(conn: psycopg.Connection, number: int) -> tuple[int, int, bytes]:
    row = conn.execute("SELECT first_seq, count, data FROM blocks WHERE writer = 0 AND number = %s",
                       (number,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), bytes(row[2])


def _flip_byte(conn: psycopg.Connection) -> None:
    _, _, data = _alpha_block(conn, 3)
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0x01
    conn.execute("UPDATE blocks SET data = %s WHERE writer = 0 AND number = 3", (bytes(damaged),))


def _delete_block(conn: psycopg.Connection) -> None:
    conn.execute("DELETE FROM blocks WHERE writer = 0 AND number = 2")


def _truncate_tail(conn: psycopg.Connection) -> None:
    conn.execute("DELETE FROM blocks WHERE writer = 0 AND number = 5")
    conn.execute("DELETE FROM events WHERE writer = 0 AND seq > 121")


def _alter_index_row(conn: psycopg.Connection) -> None:
    conn.execute("UPDATE events SET init_ip = '192.0.2.1' WHERE writer = 0 AND seq = 50")


def _delete_index_row(conn: psycopg.Connection) -> None:
    conn.execute("DELETE FROM events WHERE writer = 0 AND seq = 50")


def _rewrite_and_rechain(conn: psycopg.Connection) -> None:
    """Drop block 3's records' last one, re-make every later chain hash and the ledger state: the
    signed checkpoints' roots no longer match."""
    from stackwatch.store.integrity import blocks as codec

    records = codec.records(_alpha_block(conn, 3)[2])
    encoded, digests = codec.BlockEncoder().encode([*records[:-1], records[-2]])
    conn.execute("UPDATE blocks SET data = %s, digests = %s WHERE writer = 0 AND number = 3",
                 (encoded, digests))
    ledger = BlockLedger()
    for number, first_seq, blob, digest in conn.execute(
            "SELECT number, first_seq, data, digests FROM blocks WHERE writer = 0 "
            "ORDER BY number").fetchall():
        block = ledger.add(first_seq, bytes(blob), bytes(digest))
        conn.execute("UPDATE blocks SET chain = %s WHERE writer = 0 AND number = %s", (block.chain, number))
    conn.execute("UPDATE ledger_state SET head = %s, merkle = %s WHERE writer = 0",
                 (ledger.head, ledger.acc.to_bytes()))


def _forge_checkpoint(conn: psycopg.Connection) -> None:
    conn.execute("UPDATE checkpoints SET signature = (SELECT signature FROM checkpoints WHERE writer = 1 "
                 "AND epoch = 2) WHERE writer = 0 AND epoch = 2")


def _move_an_id(conn: psycopg.Connection) -> None:
    conn.execute("UPDATE events SET id = id + 1000000 WHERE writer = 0 AND seq = 7")


ATTACKS: list[tuple[str, Callable[[psycopg.Connection], None], str, int | None, int | None]] = [
    # name, attack, kind, first bad block, first bad seq (of alpha's log)
    ("flipped byte", _flip_byte, "record", 3, None),
    ("deleted block", _delete_block, "missing-block", 2, 2),
    ("truncated tail", _truncate_tail, "truncated", 5, 122),
    ("altered index row", _alter_index_row, "index-row", 3, 50),
    ("deleted index row", _delete_index_row, "index-row", 3, 50),
    ("rewritten and re-chained", _rewrite_and_rechain, "record", 3, 81),
    ("signature from another log", _forge_checkpoint, "bad-signature", None, None),
]


@pytest.mark.parametrize(("attack", "kind", "block", "seq"), [a[1:] for a in ATTACKS],
                         ids=[a[0] for a in ATTACKS])
def test_tampering_with_one_writers_log_is_found_there_only(
        shared: Shared, attack: Callable[[psycopg.Connection], None], kind: str, block: int | None,
        seq: int | None) -> None:
    with shared.sql() as conn:
        attack(conn)
    reports = verify_postgres(shared.url, initial_keys=shared.k0)
    assert reports["beta"].ok(), [str(p) for p in reports["beta"].problems]
    assert not reports["alpha"].ok()
    first = reports["alpha"].first_bad
    assert first is not None
    assert first.kind == kind, [str(p) for p in reports["alpha"].problems]
    if block is not None:
        assert first.block == block
    if seq is not None:
        assert first.seq == seq


def test_a_moved_event_id_is_found(shared: Shared) -> None:
    with shared.sql() as conn:
        _move_an_id(conn)
    reports = verify_postgres(shared.url, initial_keys=shared.k0)
    assert "*" in reports and reports["*"].failed
    assert "ids were moved" in str(reports["*"].problems[0])


def _cut_at_a_checkpoint(conn: psycopg.Connection) -> None:
    """Delete alpha's newest checkpoint with the block it sealed, and roll its ledger state back
    to the checkpoint before: what is left is a consistent, shorter log."""
    conn.execute("DELETE FROM checkpoints WHERE writer = 0 AND epoch = (SELECT max(epoch) FROM checkpoints "
                 "WHERE writer = 0)")
    conn.execute("DELETE FROM blocks WHERE writer = 0 AND number = 5")
    conn.execute("DELETE FROM events WHERE writer = 0 AND seq > 121")
    ledger = BlockLedger()
    for first_seq, blob, digest in conn.execute(
            "SELECT first_seq, data, digests FROM blocks WHERE writer = 0 ORDER BY number").fetchall():
        ledger.add(first_seq, bytes(blob), bytes(digest))
    conn.execute("UPDATE ledger_state SET size = %s, head = %s, merkle = %s WHERE writer = 0",
                 (ledger.size, ledger.head, ledger.acc.to_bytes()))


def test_a_log_cut_at_a_checkpoint_is_caught_by_its_writers_key_folder(shared: Shared) -> None:
    with shared.sql() as conn:
        _cut_at_a_checkpoint(conn)
    # the database alone cannot tell: it says so
    alone = verify_postgres(shared.url, initial_keys=shared.k0)["alpha"]
    assert any(p.kind == "epochs-unchecked" for p in alone.problems)
    folders = {"alpha": shared.keys / "alpha", "beta": shared.keys / "beta"}
    reports = verify_postgres(shared.url, initial_keys=shared.k0, key_dirs=folders)
    assert reports["beta"].ok(), [str(p) for p in reports["beta"].problems]
    assert reports["alpha"].failed
    assert reports["alpha"].first_bad is not None and reports["alpha"].first_bad.kind == "gap"


def test_writers_of_two_stores_in_one_database_do_not_lock_each_other(pg_database: str) -> None:
    with open_store(pg_database, schema="first", writer="same") as one, \
            open_store(pg_database, schema="second", writer="same") as two:
        assert one.start_writer().writer == two.start_writer().writer == 0
        one.append_events([event(1)])
        two.append_events([event(2)])


def test_a_writers_witness_catches_a_cut_log(pg_database: str, tmp_path: Path) -> None:
    url = f"{pg_database}?schema=witnessed"
    witness = tmp_path / "alpha.witness.jsonl"
    init_writer(url, writer="alpha", keys=tmp_path / "alpha", witnesses=[f"file:{witness}"])
    with open_store(url, writer="alpha", keys=tmp_path / "alpha", witnesses=[f"file:{witness}"]) as store:
        for batch in range(BATCHES):
            store.append_events([event(batch * PER_BATCH + i) for i in range(PER_BATCH)])
            store.checkpoint()
    assert verify_postgres(url, witnesses={"alpha": [witness]})["alpha"].ok()
    ok = _cli_verify("--data", url, "--witness", f"alpha={witness}")
    assert ok.exit_code == 0 and f"witnesses read: {witness}" in ok.output, ok.output
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("SET search_path TO witnessed")
        _cut_at_a_checkpoint(conn)
    report = verify_postgres(url, witnesses={"alpha": [witness]})["alpha"]
    assert report.failed
    assert any(p.kind == "witness" and "does not have" in p.message for p in report.problems)
    # the command line: the writer's witness file (WRITER=FILE) catches the cut without its keys
    cut = _cli_verify("--data", url, "--witness", f"alpha={witness}")
    assert cut.exit_code == 1 and "FAIL: witness" in cut.output and "RESULT: FAILED" in cut.output, cut.output
    assert _cli_verify("--data", url).exit_code == 0  # without it the cut log looks whole
    unknown = _cli_verify("--data", url, "--witness", f"beta={witness}")
    assert unknown.exit_code == 2 and "beta" in unknown.output
    missing = _cli_verify("--data", url, "--witness", f"alpha={tmp_path / 'nothing.jsonl'}")
    assert missing.exit_code == 2 and "no such witness file" in missing.output


def _cli_verify(*args: str):  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from stackwatch.cli.main import cli

    return CliRunner().invoke(cli, ["store", "verify", *args])
