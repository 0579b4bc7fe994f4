"""Real processes: kill -9 during ingest, and standby failover on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stackwatch.store.keys import init_store
from stackwatch.store.seal import parse_initial_key
from stackwatch.store.sqlite import open_store
from stackwatch.store.verify import verify_store

# Appends 50 records at a time forever; after each flush() returns, prints the last seq: the
# records up to it are acknowledged.
CHILD = r"""
import sys
from datetime import UTC, datetime
from stackwatch.core.event import Event
from stackwatch.store.sqlite import open_store

store = open_store(sys.argv[1], background_index=False, checkpoint_every=400, batch_size=1000)
t = datetime(2026, 1, 1, tzinfo=UTC)
n = store.size
while True:
    events = [Event(time=t, received=t, host="ctl", service="sshd", severity="info", message=f"m{n + i}",
                    kind="syslog", raw=f"record {n + i + 1}", origin="test", ref=f"r{n + i + 1}")
              for i in range(50)]
    n += 50
    seqs = store.append_events(events)
    store.flush()
    print(seqs[-1], flush=True)
"""

CLI = [sys.executable, "-m", "stackwatch"]


def _run_until(proc: subprocess.Popen[str], acked: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    last = 0
    assert proc.stdout is not None
    while last < acked:
        assert time.monotonic() < deadline, "child too slow"
        line = proc.stdout.readline()
        assert line, f"child ended early: {proc.stderr.read() if proc.stderr else ''}"
        last = int(line)
    return last


def _kill9(proc: subprocess.Popen[str]) -> int:
    """SIGKILL, then the last seq the child had acknowledged (lines already in the pipe)."""
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    return max([int(x) for x in out.split()], default=0)


def _check_all(data: Path, upto: int) -> None:
    with open_store(data, read_only=True) as store:
        for start in range(2, upto + 1, 5000):
            seqs = list(range(start, min(upto, start + 4999) + 1))
            got = store.get_events(seqs)
            assert [e.seq for e in got] == seqs
            assert all(e.event.raw == f"record {e.seq}" for e in got if e.event.kind == "syslog")


@pytest.mark.parametrize("fmt", [1, 2], ids=["format1", "format2"])
def test_kill_9_during_ingest_loses_no_acknowledged_record(tmp_path: Path, fmt: int) -> None:
    data = tmp_path / "data"
    k0 = parse_initial_key(init_store(data, background_index=False, format=fmt).initial_key)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    for _round in range(3):  # kill it three times, restarting where it left off
        proc = subprocess.Popen(
            [sys.executable, str(script), str(data)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _run_until(proc, 500 * (_round + 1))
        time.sleep(0.3 + 0.2 * _round)
        acked = _kill9(proc)
        report = verify_store(
            data, initial_keys=[k0]
        )  # the crashed writer left an unsealed tail: said loudly
        assert not report.failed, report.problems
        # A crash may leave an unsealed tail, or (killed between sealing and ratcheting) the newest
        # sealed epoch's key: both are warnings until the writer restarts, never silent.
        assert {p.kind for p in report.problems if p.level != "NOTE"} <= {"unsealed-tail", "key-behind"}
        if report.sealed_size < report.size:
            assert "unsealed-tail" in {p.kind for p in report.problems}
        with open_store(data, background_index=False) as store:  # reopen as writer: recovery, seal the tail
            assert store.format == fmt and store.size >= acked
            store.checkpoint()
        report = verify_store(data, initial_keys=[k0])
        assert report.ok(), report.problems
        _check_all(data, acked)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("fmt", [1, 2], ids=["format1", "format2"])
def test_standby_failover_keeps_every_acknowledged_record(tmp_path: Path, fmt: int) -> None:
    primary, standby = tmp_path / "primary", tmp_path / "standby"
    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    secret.chmod(0o600)
    k0_primary = parse_initial_key(init_store(primary, background_index=False, format=fmt).initial_key)
    port = _free_port()
    subprocess.run(
        [
            *CLI,
            "store",
            "replicate",
            "--data",
            str(primary),
            "--listen",
            f"127.0.0.1:{port}",
            "--secret-file",
            str(secret),
        ],
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        [*CLI, "store", "init", "--standby", "--format", str(fmt), "--data", str(standby)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    k0_standby = parse_initial_key(next(line for line in out.splitlines() if line.startswith("    ")).strip())
    follower = subprocess.Popen(
        [
            *CLI,
            "store",
            "standby",
            "--data",
            str(standby),
            "--primary",
            f"127.0.0.1:{port}",
            "--secret-file",
            str(secret),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(primary)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _run_until(proc, 3000)
        acked = _kill9(proc)  # the primary dies mid-ingest
        time.sleep(0.5)
        os.kill(follower.pid, signal.SIGKILL)  # and the standby is stopped hard as well
        follower.wait(timeout=30)
    finally:
        for p in (proc, follower):
            if p.poll() is None:
                p.kill()
    subprocess.run([*CLI, "store", "promote", "--data", str(standby)], check=True, capture_output=True)
    _check_all(standby, acked)
    report = verify_store(standby, initial_keys=[k0_primary, k0_standby])
    assert report.ok(), report.problems
    with open_store(standby, background_index=False) as store:  # the promoted store takes new records
        assert store.format == fmt
        assert store.size >= acked
        store.append_events([store.get_events([2])[0].event])
    assert verify_store(standby, initial_keys=[k0_primary, k0_standby]).ok()


def test_standby_refuses_a_primary_with_the_wrong_secret(tmp_path: Path) -> None:
    from stackwatch.store.replication import Channel

    port = _free_port()
    server = socket.create_server(("127.0.0.1", port))
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    import threading

    errors: list[Exception] = []

    def serve() -> None:
        try:
            Channel.server(conn, b"the-right-secret-123")
        except Exception as exc:
            errors.append(exc)
        finally:
            conn.close()  # as the primary does: the standby then sees the connection end

    client.settimeout(10)
    t = threading.Thread(target=serve)
    t.start()
    try:
        Channel.client(client, b"a-wrong-secret-45678")
    except Exception as exc:
        errors.append(exc)
    client.close()
    t.join()
    server.close()
    assert errors and "secret" in str(errors[0])
