"""Replication over mutual TLS on loopback: a standby with a certificate from the primary's CA
follows it (every record arrives and verifies); a standby holding a certificate from another
CA gets nothing, and the primary's sync flush says the records are not acknowledged. Every test
runs on both record formats (format 2 ships whole blocks)."""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stackwatch.core.errors import StoreError
from stackwatch.core.event import Event
from stackwatch.store.keys import init_store, promote
from stackwatch.store.replication import Standby
from stackwatch.store.seal import parse_initial_key
from stackwatch.store.sqlite import SQLiteStore, open_store
from stackwatch.store.verify import verify_store
from tests.servetools import free_port, make_certs, wait_for

T = datetime(2026, 1, 1, tzinfo=UTC)
KEYS: list[bytes] = []  # the initial sealing keys of the primary and the standby, for verification


@pytest.fixture(params=[1, 2], ids=["format1", "format2"])
def fmt(request: pytest.FixtureRequest) -> int:
    return int(request.param)


def _events(first: int, count: int) -> list[Event]:
    return [Event(time=T, received=T, host="ctl1", service="sshd", severity="info", message=f"m{n}",
                  kind="syslog", raw=f"record {n}", origin="test", ref=f"r{n}")
            for n in range(first, first + count)]


def _primary(tmp_path: Path, certs: dict[str, Path], secret: bytes,
             timeout: float, fmt: int) -> tuple[SQLiteStore, int]:
    data = tmp_path / "primary"
    KEYS.append(parse_initial_key(init_store(data, background_index=False, format=fmt).initial_key))
    port = free_port()
    tls = {"cert": str(certs["server_cert"]), "key": str(certs["server_key"]), "ca": str(certs["ca"])}
    store = open_store(data, background_index=False, replication={
        "listen": ("127.0.0.1", port), "secret": secret, "sync": True, "timeout": timeout, "tls": tls})
    return store, port


def _standby(tmp_path: Path, port: int, secret: bytes, cert: Path, key: Path,
             ca: Path, fmt: int) -> tuple[Standby, SQLiteStore, threading.Thread, list[BaseException]]:
    data = tmp_path / "standby"
    KEYS.append(parse_initial_key(init_store(data, standby=True, background_index=False,
                                             format=fmt).initial_key))
    store = open_store(data, background_index=False)
    assert store.format == fmt
    follower = Standby(store, ("127.0.0.1", port), secret,
                       tls={"cert": str(cert), "key": str(key), "ca": str(ca)})
    errors: list[BaseException] = []

    def run() -> None:
        try:
            follower.run(retry=0.2)
        except BaseException as exc:  # surfaced by the test, not lost in the thread
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return follower, store, thread, errors


def _pair(tmp_path: Path, client: str, timeout: float, fmt: int
          ) -> tuple[SQLiteStore, int, Standby, SQLiteStore, threading.Thread, list[BaseException]]:
    """A primary (server certificate from the test CA) and a standby following it with the
    ``client`` certificate pair of make_certs (``client``: the same CA; ``stranger``: another)."""
    certs = make_certs(tmp_path / "certs")
    secret = os.urandom(32)
    primary, port = _primary(tmp_path, certs, secret, timeout=timeout, fmt=fmt)
    follower, standby, thread, errors = _standby(tmp_path, port, secret, certs[f"{client}_cert"],
                                                 certs[f"{client}_key"], certs["ca"], fmt)
    return primary, port, follower, standby, thread, errors


def _checkpoints(data: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"{(data / 'stackwatch.db').as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT epoch, size, body, signature FROM checkpoints ORDER BY epoch").fetchall()
    finally:
        conn.close()


def _stop(follower: Standby, thread: threading.Thread, primary: SQLiteStore) -> None:
    try:
        primary.close()  # seals the tail, waits for the standby to store it, ends the connection
    finally:
        follower.stop.set()  # only now: a standby told to stop leaves before the next message
        thread.join(timeout=30)
    assert not thread.is_alive()


def test_standby_follows_a_primary_over_mutual_tls(tmp_path: Path, fmt: int) -> None:
    primary, _port, follower, standby, thread, errors = _pair(tmp_path, "client", timeout=20.0, fmt=fmt)
    try:
        primary.append_events(_events(1, 500))  # the first append starts the replication listener
        assert primary.replica is not None
        primary.flush()  # sync mode: returns only once the standby has committed all 500
        primary.append_events(_events(501, 250))
        primary.checkpoint()  # signed and sealed: the standby checks it and its consistency proof
        primary.flush()
        assert primary.replica.acked == primary.size == 751  # with the `store init` admin record
        # the checkpoint follows the records; the standby stores it only once it has verified it
        wait_for(lambda: errors or _checkpoints(tmp_path / "standby") == _checkpoints(tmp_path / "primary"),
                 timeout=20)
        assert not errors, errors
    finally:
        _stop(follower, thread, primary)
    standby.close()
    with open_store(tmp_path / "standby", read_only=True) as copy:
        assert copy.format == fmt
        assert copy.size == 751
        assert [s.event.raw for s in copy.get_events([2, 751])] == ["record 1", "record 750"]
    promote(tmp_path / "standby")
    report = verify_store(tmp_path / "standby", initial_keys=KEYS[-2:])
    assert report.ok(), report.problems


def test_standby_with_a_certificate_from_another_ca_gets_nothing(tmp_path: Path, fmt: int) -> None:
    primary, port, follower, standby, thread, _errors = _pair(tmp_path, "stranger", timeout=2.0, fmt=fmt)
    try:
        primary.append_events(_events(1, 50))
        with pytest.raises(StoreError, match="NOT acknowledged"):
            primary.flush()
        assert primary.replica is not None and primary.replica.acked == 0
    finally:
        follower.stop.set()
        with pytest.raises(StoreError, match="NOT acknowledged"):
            primary.close()  # its last flush is refused the same way
        thread.join(timeout=30)
    assert primary.replica is not None
    with pytest.raises(OSError):  # and the replication listener is closed all the same
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert standby.size == 0
    standby.close()


def test_the_closing_checkpoint_reaches_the_standby(tmp_path: Path, fmt: int) -> None:
    """A clean shutdown seals the tail with a checkpoint; in sync mode ``close()`` waits until the
    standby has verified and stored it, so a failover right after finds every record sealed."""
    primary, _port, follower, standby, thread, errors = _pair(tmp_path, "client", timeout=20.0, fmt=fmt)
    try:
        primary.append_events(_events(1, 300))
        primary.flush()
    finally:
        _stop(follower, thread, primary)  # close() makes the closing checkpoint
    assert not errors, errors
    standby.close()
    assert _checkpoints(tmp_path / "standby") == _checkpoints(tmp_path / "primary")
    assert _checkpoints(tmp_path / "primary")[-1][1] == 301
    promote(tmp_path / "standby")
    report = verify_store(tmp_path / "standby", initial_keys=KEYS[-2:])
    assert report.ok(), report.problems
