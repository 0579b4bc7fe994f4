"""The search indexer in a process of its own (store/index_process.py): it indexes by itself,
a search sees every committed event whatever it is doing, and killing it (or its writer) for
real loses no index entry: the ``indexed_seq`` watermark moves with the entries."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stackwatch.store import open_store
from stackwatch.store.base import EventQuery
from stackwatch.store.sqlite import INDEX_FILE, SQLiteStore
from stackwatch.testing import make_event

T0 = datetime(2026, 3, 1, tzinfo=UTC)
SRC = Path(__file__).resolve().parents[2] / "src"


def _events(first: int, n: int) -> list:
    return [make_event(time=T0 + timedelta(seconds=i), message=f"login failed word{i % 7} n{i}",
                       request_id=f"req-{i}", initiator={"source_ip": f"10.0.{i % 3}.1", "name": f"u{i % 5}"})
            for i in range(first, first + n)]


def _answers(store: SQLiteStore) -> list[tuple[int, list[int]]]:
    """How many events a few searches of each index structure find (full text, IP, user,
    request id), and the seqs of their newest 10,000."""
    queries = [EventQuery(text="word3", limit=10_000), EventQuery(text="login failed", limit=10_000),
               EventQuery(source_ip="10.0.1.1", limit=10_000), EventQuery(user="u2", limit=10_000),
               EventQuery(request_id="req-7", limit=10_000)]
    return [(store.count_events(q), [stored.seq for stored in store.search_events(q)]) for q in queries]


def _index_watermark(data: Path) -> tuple[int, int, int]:
    """indexed_seq, and how many full-text rows and request-id keys the index file holds."""
    conn = sqlite3.connect(f"{(data / INDEX_FILE).as_uri()}?mode=ro", uri=True)
    try:
        seq = conn.execute("SELECT value FROM meta WHERE name = 'indexed_seq'").fetchone()[0]
        # contentless: counted through the index, every test message holds the word
        texts = conn.execute("SELECT count(*) FROM events_fts WHERE events_fts MATCH 'login'").fetchone()[0]
        keys = conn.execute("SELECT count(*) FROM event_keys WHERE value LIKE 'req-%'").fetchone()[0]
        return seq, texts, keys
    finally:
        conn.close()


def _wait(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not reaped yet) is not alive
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("fmt", [1, 2])
def test_the_process_indexes_by_itself_and_answers_as_the_thread(fmt: int, tmp_path: Path) -> None:
    with open_store(tmp_path / "thread", format=fmt) as store:
        store.append_events(_events(0, 3000))
        store.flush()
        expected = _answers(store)
    assert all(seqs for _, seqs in expected) and expected[1][0] == 3000
    store = open_store(tmp_path / "proc", format=fmt, index_process=True, index_interval=60)
    try:
        child = store._index_process
        assert child is not None and child.pid != os.getpid() and _alive(child.pid)
        store.append_events(_events(0, 3000))
        store.flush()  # the commit wakes it: no search, no interval (60 s) needed
        _wait(lambda: store.counts().unindexed == 0)
        assert _index_watermark(tmp_path / "proc")[0] == 3000
        assert _answers(store) == expected
    finally:
        store.close()
    assert child.returncode == 0 and not _alive(child.pid)
    assert not (tmp_path / "proc" / f"{INDEX_FILE}-wal").exists()  # the close folded the index's WAL
    with open_store(tmp_path / "proc", read_only=True) as again:
        assert again.counts().unindexed == 0 and _answers(again) == expected


@pytest.mark.parametrize("fmt", [1, 2])
def test_killing_the_indexer_loses_no_entry(fmt: int, tmp_path: Path) -> None:
    """SIGKILL while it indexes a large backlog: what it committed is whole under its
    watermark, a search catches up in the writer, the close finishes the index."""
    store = open_store(tmp_path, format=fmt, index_process=True, index_interval=60)
    try:
        child = store._index_process
        assert child is not None
        for first in range(0, 60_000, 20_000):
            store.append_events(_events(first, 20_000))
            store.flush()
        os.kill(child.pid, signal.SIGKILL)  # most likely inside an indexing transaction
        _wait(lambda: not _alive(child.pid))
        seq, texts, keys = _index_watermark(tmp_path)
        assert texts == seq and keys == seq  # nothing half-indexed, nothing above the watermark
        store.append_events(_events(60_000, 500))
        store.flush()  # the wake-up finds no reader: the writer goes on
        assert store.count_events(EventQuery(text="login failed")) == 60_500  # a search catches up here
        store.append_events(_events(60_500, 500))
    finally:
        store.close()
    assert child.returncode == -signal.SIGKILL
    assert _index_watermark(tmp_path) == (61_000, 61_000, 61_000)  # the close indexed the rest
    with open_store(tmp_path) as again:
        assert again.counts().unindexed == 0
        assert again.count_events(EventQuery(text="login failed")) == 61_000


WRITER = textwrap.dedent("""
    import sys, time
    from datetime import UTC, datetime, timedelta
    from stackwatch.store import open_store
    from stackwatch.testing import make_event
    T0 = datetime(2026, 3, 1, tzinfo=UTC)
    store = open_store(sys.argv[1], format=int(sys.argv[2]), index_process=True, index_interval=60)
    store.append_events([make_event(time=T0 + timedelta(seconds=i), message=f"login m{i}",
                                    request_id=f"req-{i}")
                         for i in range(5000)])
    store.flush()
    print(store._index_process.pid, flush=True)
    time.sleep(600)
""")


@pytest.mark.parametrize("fmt", [1, 2])
def test_the_indexer_finishes_and_exits_when_its_writer_is_killed(fmt: int, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(fmt)],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert writer.stdout is not None
        pid = int(writer.stdout.readline())
        writer.kill()
        writer.wait(30)
        _wait(lambda: not _alive(pid))  # end of file on its pipe: it indexes what is committed, exits
    finally:
        if writer.poll() is None:
            writer.kill()
    assert _index_watermark(tmp_path) == (5000, 5000, 5000)


def test_close_ends_the_indexer_while_a_later_fork_holds_its_pipe(tmp_path: Path) -> None:
    """``analyze --jobs N`` forks reader workers after the store started its indexer (a dead
    worker's replacement): they inherit the pipe's write end, so end of file never comes
    while they live; the close's stop byte must end the indexer all the same."""
    store = open_store(tmp_path, index_process=True, index_interval=60)
    holder = multiprocessing.get_context("fork").Process(target=time.sleep, args=(120,), daemon=True)
    try:
        holder.start()  # holds a copy of every fd of this process, the indexer's pipe among them
        store.append_events(_events(0, 1000))
        started = time.monotonic()
        store.close()
        assert time.monotonic() - started < 20
        assert store._index_process is not None and store._index_process.returncode == 0
    finally:
        holder.kill()
        holder.join()
    assert _index_watermark(tmp_path) == (1000, 1000, 1000)


def test_an_index_ahead_of_the_writers_open_is_not_taken_for_foreign(tmp_path: Path) -> None:
    """The writer may index further (a search) before its indexer process has connected: the
    process checks the index against the record as it is then, and does not rebuild it."""
    with open_store(tmp_path) as store:
        store.append_events(_events(0, 500))
        store_id = store._store_id
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "stackwatch.store.index_process",
                           str(tmp_path / "stackwatch.db"), str(tmp_path / INDEX_FILE), "--format", "2",
                           "--store-id", store_id, "--last-seq", "0", "--interval", "60", "--timeout", "30"],
                          input=b"q", capture_output=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert b"rebuilding" not in done.stderr
    assert _index_watermark(tmp_path) == (500, 500, 500)
