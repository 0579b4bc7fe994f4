"""A private PostgreSQL server for a test that stops and starts it (the shared one at :5432 serves
the other tests meanwhile): initdb in a temporary folder, trust auth on 127.0.0.1 and a free port,
run as the ``postgres`` user when the tests run as root (PostgreSQL refuses to run as root).

``PrivateServer(standby_of=primary)`` is a streaming standby of ``primary`` made as an operator
makes one: ``pg_basebackup -R -X stream`` (initdb's defaults already allow it: wal_level replica,
wal senders, a trusted replication line for 127.0.0.1)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.servetools import free_port


def _bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        raise AssertionError("PostgreSQL's server programs (pg_ctl) are not installed")
    return found[-1].parent


def available() -> bool:
    """Whether PostgreSQL's server programs are installed (Debian: postgresql)."""
    return bool(sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")))


class PrivateServer:
    def __init__(self, standby_of: PrivateServer | None = None) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="sw-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.folder, "postgres", "postgres")
        if standby_of is None:
            self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        else:  # -R: standby.signal and primary_conninfo, so it starts as the primary's standby
            self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(standby_of.port), "-U", "postgres",
                      "-D", str(self.data), "-R", "-X", "stream", "--no-sync", "-c", "fast")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run([*self._as, str(_bin() / program), *args], capture_output=True, text=True,
                              timeout=120, check=False)
        if done.returncode != 0:
            raise AssertionError(f"{program} failed: {done.stdout}\n{done.stderr}")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.folder / "server.log"), "-o",
                  f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def cut_stream(self) -> None:
        """A standby stops receiving WAL (a network cut, a lagging asynchronous standby): its
        primary_conninfo emptied and the configuration reloaded, so its WAL receiver stops."""
        with (self.data / "postgresql.auto.conf").open("a") as conf:
            conf.write("primary_conninfo = ''\n")
        self._run("pg_ctl", "-D", str(self.data), "reload")

    def promote(self) -> None:
        """Promote a standby (waits until it accepts writes)."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "promote")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "fast", "stop")

    def remove(self) -> None:
        with contextlib.suppress(AssertionError):
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def private_server(standby_of: PrivateServer | None = None) -> Iterator[PrivateServer]:
    server = PrivateServer(standby_of)
    try:
        server.start()
        yield server
    finally:
        server.remove()
