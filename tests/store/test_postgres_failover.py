"""The High availability section of docs/store-postgres.md, run for real: a primary and two
streaming standbys made with ``pg_basebackup -R``, a writer writing through a multi-host URL
(``target_session_attrs=read-write``), the primary lost, a standby promoted with ``pg_ctl
promote`` and the writer carrying on there by itself; ``store verify --witness`` passes on the
standby that had everything and names the cut on one whose WAL stream was stopped before."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from stackwatch.cli.main import cli
from stackwatch.core.errors import StoreError
from stackwatch.store.postgres import open_store
from stackwatch.store.postgres.keys import init_writer
from stackwatch.store.postgres.verify import verify_postgres
from stackwatch.testing import make_event
from tests import pgserver
from tests.pgserver import PrivateServer

pytestmark = pytest.mark.skipif(not pgserver.available(),
                                reason="PostgreSQL's server programs are not installed")


@pytest.fixture
def servers() -> Iterator[list[PrivateServer]]:
    made: list[PrivateServer] = []
    try:
        primary = PrivateServer()
        made.append(primary)
        primary.start()
        for _ in range(2):
            made.append(PrivateServer(standby_of=primary))
            made[-1].start()
        yield made
    finally:
        for server in made:
            server.remove()


def _wait(what: str, check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _caught_up(primary: PrivateServer, standby: PrivateServer) -> None:
    with psycopg.connect(primary.url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()").fetchone()
    assert row is not None

    def replayed() -> bool:
        with psycopg.connect(standby.url, autocommit=True) as conn:
            done = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (row[0],)).fetchone()
        return bool(done and done[0])

    _wait(f"the standby on port {standby.port} to replay {row[0]}", replayed)


def _senders(primary: PrivateServer) -> int:
    with psycopg.connect(primary.url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_replication").fetchone()
    return int(row[0]) if row else 0


def _events(n: int, tag: str) -> list:  # type: ignore[type-arg]
    return [make_event(message=f"{tag} {i}") for i in range(n)]


def _verify(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["store", "verify", *args])


def test_failover_to_a_streaming_standby_and_a_lagging_one_named_by_the_witness(
        servers: list[PrivateServer], tmp_path: Path) -> None:
    primary, standby, lagging = servers
    keys, witness = tmp_path / "ana1", tmp_path / "ana1.witness.jsonl"
    options = {"writer": "ana1", "keys": keys, "witnesses": [f"file:{witness}"]}
    k0 = init_writer(primary.url, **options).initial_key  # type: ignore[arg-type]
    _wait("both standbys streaming", lambda: _senders(primary) == 2)
    both = (f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/postgres"
            "?target_session_attrs=read-write")
    with open_store(both, batch_size=100, **options) as store:
        store.append_events(_events(300, "before the cut"))
        store.checkpoint()
        size_at_cut = store._writer.ledger.size  # type: ignore[union-attr]
        _caught_up(primary, lagging)
        lagging.cut_stream()  # from here on this standby lags
        _wait("the lagging standby's stream to stop", lambda: _senders(primary) == 1)
        store.append_events(_events(200, "after the cut"))
        cut_epoch = store.checkpoint()  # in the witness; the lagging standby never gets it
        _caught_up(primary, standby)
        size_at_failover = store._writer.ledger.size  # type: ignore[union-attr]

        primary.stop()  # the primary is lost...
        standby.promote()  # ...and the standby promoted: the writer's URL finds it by itself
        store.append_events(_events(50, "after the failover"))
        for attempt in range(3):  # the commit in flight when the connection broke fails once
            try:
                store.flush()
                break
            except StoreError:
                assert attempt == 0
        store.checkpoint()
        assert store._conn.info.port == standby.port  # reconnected to the promoted standby
        assert store._writer.ledger.size == size_at_failover + 50  # type: ignore[union-attr]

    report = verify_postgres(standby.url, key_dirs={"ana1": keys}, witnesses={"ana1": [witness]})
    assert report["ana1"].ok() and report["ana1"].records == size_at_failover + 50
    ok = _verify("--data", standby.url, "--key", f"ana1={k0}", "--keys", f"ana1={keys}",
                 "--witness", f"ana1={witness}")
    assert ok.exit_code == 0 and ok.output.rstrip().endswith("RESULT: OK"), ok.output
    with psycopg.connect(standby.url) as conn:
        found = conn.execute("SELECT count(*) FROM stackwatch.events").fetchone()
    assert found is not None and found[0] >= 550  # every event, admin events besides

    lagging.promote()
    # consistent on its own: only the witness (or the keys folder's ratchet) shows what it lost
    assert not verify_postgres(lagging.url)["ana1"].failed
    cut = _verify("--data", lagging.url, "--key", f"ana1={k0}", "--witness", f"ana1={witness}")
    assert cut.exit_code == 1 and "RESULT: FAILED" in cut.output, cut.output
    assert f"holds checkpoint epoch {cut_epoch}" in cut.output and "the store does not have" in cut.output
    assert f"FIRST BAD RECORD of ana1: seq {size_at_cut + 1}:" in cut.output  # the first record it lost
