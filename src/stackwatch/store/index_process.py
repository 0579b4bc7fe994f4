"""The search indexer in a process of its own (``SQLiteStore(index_process=True)``, which
``analyze --jobs N`` asks for when N >= 2).

The indexer thread (``sqlite_index.Indexer``) competes for the writer process's GIL: on
``analyze --jobs 2`` that process is the bound (README, "analyze --jobs N"), and the index's
~6 µs a record are a quarter of its store work. This process takes them, and the record
WAL's checkpoints, to the other core. It reads what it indexes from the committed record
itself (the narrow rows' keys, format 2's messages from the blocks), so the writer hands
over nothing but a one-byte wake-up after each commit: measured cheaper for the writer than
piping the messages over (see README), and nothing is lost when either side dies.

Durability is the index's own: each indexing transaction moves the ``indexed_seq``
watermark with the entries it adds, so a killed indexer loses nothing; the writer's searches
catch up themselves (``index_pending``) and its ``close`` waits for this process, then
indexes whatever is left, and folds the index WAL as with the thread.

Protocol: the child's stdin. A newline: "there are new commits"; ``STOP`` (the writer's
close), end of file, or the writer gone (its parent process changed): index what is
committed, checkpoint, exit. End of file alone is not enough: a process the writer forks
later (``analyze``'s reader workers, a replacement of a dead one) inherits the pipe's write
end, and the pipe stays open while it lives.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import select
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Final

import stackwatch
from stackwatch.store.sqlite_index import Indexer, Messages, connect_index

log = logging.getLogger(__name__)

WAKE: Final = b"\n"
STOP: Final = b"q"

CLOSE_WAIT: Final = 600.0
"""Seconds the writer's close waits for the indexer's last catch-up before killing it (the
writer then indexes what is left itself: nothing is lost, only the other core's help)."""


class IndexProcess:
    """The writer's handle on the indexer process."""

    def __init__(self, record: Path, index: Path, *, record_format: int, store_id: str, last_seq: int,
                 interval: float, timeout: float) -> None:
        env = dict(os.environ)
        # the same stackwatch as this process's, whichever way it was found (editable, PYTHONPATH)
        package_root = str(Path(stackwatch.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            [sys.executable, "-m", "stackwatch.store.index_process", str(record), str(index),
             "--format", str(record_format), "--store-id", store_id, "--last-seq", str(last_seq),
             "--interval", str(interval), "--timeout", str(timeout)],
            stdin=subprocess.PIPE, env=env, close_fds=True)
        assert self.process.stdin is not None
        self._pipe = self.process.stdin
        os.set_blocking(self._pipe.fileno(), False)  # a wake-up never blocks the writer
        self.returncode: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def poke(self) -> None:
        """New commits: wake the indexer. A full pipe already holds a wake-up; a dead indexer
        is noticed at ``close`` (searches catch up in the writer meanwhile)."""
        if self._pipe.closed:
            return
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(self._pipe.fileno(), WAKE)

    def close(self, wait: float = CLOSE_WAIT) -> int:
        """Ask the indexer to finish (end of file), wait for it; its exit status (negative:
        the signal that ended it). Idempotent."""
        if self.returncode is not None:
            return self.returncode
        if not self._pipe.closed:
            with contextlib.suppress(BrokenPipeError):
                os.set_blocking(self._pipe.fileno(), True)  # the stop must get through
                os.write(self._pipe.fileno(), STOP)
            with contextlib.suppress(BrokenPipeError):
                self._pipe.close()
        try:
            self.returncode = self.process.wait(wait)
        except subprocess.TimeoutExpired:
            log.warning("the search indexer process did not finish in %.0f s; stopping it", wait)
            self.process.kill()
            self.returncode = self.process.wait()
        if self.returncode != 0:
            log.warning("the search indexer process ended with status %d; indexing the rest here",
                        self.returncode)
        return self.returncode


def _messages(record_format: int) -> Messages | None:
    if record_format != 2:
        return None  # format 1 keeps each message in its row
    from stackwatch.store.block_messages import block_messages

    return block_messages


def run(record: Path, index: Path, *, record_format: int, store_id: str, last_seq: int, interval: float,
        timeout: float, wake: int) -> int:
    """The indexer's loop: index and checkpoint after each wake-up (or every ``interval``
    seconds), until ``STOP``, end of file on ``wake`` or the writer's death. Exit status 0,
    or 1 when the last round failed."""
    # The record's newest seq now, not only the writer's at its open: a search of the writer
    # may have indexed further since, and an index ahead of last_seq would be rebuilt as foreign.
    probe = sqlite3.connect(f"{record.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)
    try:
        last_seq = max(last_seq, probe.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])
    finally:
        probe.close()
    conn = connect_index(index, record, store_id=store_id, last_seq=last_seq, timeout=timeout)
    indexer = Indexer(conn, background=False, messages=_messages(record_format))
    writer = os.getppid()
    try:
        while True:
            ready, _, _ = select.select([wake], [], [], interval)
            got = os.read(wake, 1 << 16) if ready else WAKE  # drains the wake-ups
            done = not got or STOP in got or os.getppid() != writer
            try:
                indexer.catch_up()
                indexer.checkpoint()
            except sqlite3.Error as exc:  # busy past the timeout, disk full: retry next round
                log.warning("background indexing failed: %s", exc)
                if done:
                    return 1
            if done:
                return 0
    finally:
        indexer.close()  # the writer's own connection stays: it folds the index WAL at its close


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stackwatch.store.index_process")
    parser.add_argument("record", type=Path, help="the store's stackwatch.db")
    parser.add_argument("index", type=Path, help="its search index, stackwatch-index.db")
    parser.add_argument("--format", type=int, required=True)
    parser.add_argument("--store-id", required=True)
    parser.add_argument("--last-seq", type=int, required=True)
    parser.add_argument("--interval", type=float, required=True)
    parser.add_argument("--timeout", type=float, required=True)
    args = parser.parse_args(argv)
    for signum in (signal.SIGINT, signal.SIGTERM):  # the writer decides when to stop (end of file)
        signal.signal(signum, signal.SIG_IGN)
    return run(args.record, args.index, record_format=args.format, store_id=args.store_id,
               last_seq=args.last_seq, interval=args.interval, timeout=args.timeout, wake=sys.stdin.fileno())


if __name__ == "__main__":
    sys.exit(main())
