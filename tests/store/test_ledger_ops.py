"""Proofs, checkpoints, backup/restore, retention and admin events, through the CLI where the
user would use it (real store folders, real subprocesses for the auditor and ingest)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackwatch.cli.store_cmd import store_group
from stackwatch.core.alert import Alert
from stackwatch.store.admin import record_admin_action
from stackwatch.store.backup import MEMBERS
from stackwatch.store.base import EventQuery
from stackwatch.store.retention import expire, parse_age, parse_size
from stackwatch.store.sqlite import SQLiteStore
from stackwatch.store.verify import verify_store
from tests.store.conftest import LedgerStore, copy_store, ledger_events
from tests.store.test_ledger_processes import CHILD

AUDITOR = [sys.executable, "-m", "stackwatch.store.auditor"]


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(store_group, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_init_keeps_keys_private_and_prints_k0_once(tmp_path: Path) -> None:
    data = tmp_path / "d"
    code, out = _cli("init", "--data", str(data))
    assert code == 0 and "INITIAL SEALING KEY k0" in out
    k0 = next(line.strip() for line in out.splitlines() if line.startswith("    "))
    assert k0 not in "".join(
        p.read_bytes().hex() + p.read_text(errors="replace") for p in (data / "keys").iterdir()
    )
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in (data / "keys").iterdir()} == {
        "sign.key": "0o600",
        "seal.key": "0o600",
        "sign.pub": "0o644",
    }
    assert oct((data / "keys").stat().st_mode & 0o777) == "0o700"
    assert _cli("init", "--data", str(data))[0] == 1  # never twice
    assert _cli("verify", "--data", str(data), "--key", k0)[0] == 0


def test_verify_cli_prints_the_first_bad_record_and_fails(
    ledger_template: LedgerStore, tmp_path: Path
) -> None:
    store = copy_store(ledger_template, tmp_path / "d")
    with sqlite3.connect(store.data / "stackwatch.db") as conn:
        conn.execute("UPDATE events SET raw = CAST('nothing to see' AS BLOB) WHERE seq = 99")
    code, out = _cli("verify", "--data", str(store.data), "--key", store.k0_text)
    assert code == 1
    assert "FIRST BAD RECORD: seq 99" in out and "nothing to see" in out and "RESULT: FAILED" in out


def test_unsealed_tail_is_a_loud_warning(ledger_template: LedgerStore, tmp_path: Path) -> None:
    store = copy_store(ledger_template, tmp_path / "d")
    s = SQLiteStore(store.data, background_index=False, checkpoint_every=10**9)
    s.append_events(ledger_events(5, 1000))
    s.flush()
    code, out = _cli("verify", "--data", str(store.data), "--key", store.k0_text)
    assert code == 1 and "WARNING: unsealed-tail" in out and "records 302..306" in out
    assert _cli("verify", "--data", str(store.data), "--key", store.k0_text, "--allow-unsealed-tail")[0] == 0
    s.close()  # a clean shutdown seals the tail
    assert _cli("verify", "--data", str(store.data), "--key", store.k0_text)[0] == 0


def test_inclusion_and_consistency_proofs_check_with_the_standalone_auditor(
    ledger_template: LedgerStore, tmp_path: Path
) -> None:
    data = str(ledger_template.data)
    proof = tmp_path / "p.json"
    assert _cli("prove", "--data", data, "123", "-o", str(proof))[0] == 0
    pub = ledger_template.public_key
    ok = subprocess.run([*AUDITOR, str(proof), "--key", pub], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("OK: leaf 122 (seq 123)")
    doc = json.loads(proof.read_text())
    assert b"record 121" in bytes.fromhex(doc["record"])
    doc["record"] = doc["record"].replace(b"record 121".hex(), b"record 999".hex())
    proof.write_text(json.dumps(doc))
    assert subprocess.run([*AUDITOR, str(proof), "--key", pub], capture_output=True).returncode == 1
    with sqlite3.connect(ledger_template.data / "stackwatch.db") as conn:
        sizes = [s for (s,) in conn.execute("SELECT size FROM checkpoints ORDER BY epoch")]
    cons = tmp_path / "c.json"
    for old in (sizes[1], 77):
        assert _cli("consistency", "--data", data, str(old), str(sizes[-1]), "-o", str(cons))[0] == 0
        ok = subprocess.run([*AUDITOR, str(cons), "--key", pub], capture_output=True, text=True)
        assert ok.returncode == 0, ok.stdout


def test_checkpoint_command_makes_a_new_epoch(ledger_template: LedgerStore, tmp_path: Path) -> None:
    store = copy_store(ledger_template, tmp_path / "d")
    before = verify_store(store.data).epochs
    code, out = _cli("checkpoint", "--data", str(store.data))
    assert code == 0 and f"epoch {before}" in out
    assert verify_store(store.data, initial_keys=[store.k0]).ok()


def test_backup_during_ingest_restores_and_verifies(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _, out = _cli("init", "--data", str(data))
    k0 = next(line.strip() for line in out.splitlines() if line.startswith("    "))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    key = tmp_path / "backup.key"
    key.write_bytes(os.urandom(32))
    proc = subprocess.Popen([sys.executable, str(script), str(data)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        while int(proc.stdout.readline()) < 1500:
            pass
        for name, extra in (("plain.bak", []), ("enc.bak", ["--encrypt-key", str(key)])):
            assert _cli("backup", "--data", str(data), str(tmp_path / name), *extra)[0] == 0
        progressed = int(proc.stdout.readline())
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert progressed > 1500  # ingest went on
    code, out = _cli("restore", str(tmp_path / "plain.bak"), str(tmp_path / "r1"), "--key", k0)
    assert code == 0, out
    code, out = _cli(
        "restore", str(tmp_path / "enc.bak"), str(tmp_path / "r2"), "--decrypt-key", str(key), "--key", k0
    )
    assert code == 0, out
    for restored in ("r1", "r2"):
        report = verify_store(tmp_path / restored, initial_keys=[bytes.fromhex(k0[:64])])
        assert not report.failed and report.records >= 1500
        assert not (tmp_path / restored / "keys" / "sign.key").exists()  # private keys never leave


def test_encrypted_backup_with_the_wrong_key_is_refused(ledger_template: LedgerStore, tmp_path: Path) -> None:
    key, wrong = tmp_path / "k", tmp_path / "w"
    key.write_bytes(os.urandom(32))
    wrong.write_bytes(os.urandom(32))
    _cli("backup", "--data", str(ledger_template.data), str(tmp_path / "b"), "--encrypt-key", str(key))
    code, out = _cli("restore", str(tmp_path / "b"), str(tmp_path / "r"), "--decrypt-key", str(wrong))
    assert code == 1 and "wrong key" in out
    assert not (tmp_path / "r").exists()
    blob = bytearray((tmp_path / "b").read_bytes())
    blob[5000] ^= 1
    (tmp_path / "b").write_bytes(bytes(blob))
    assert _cli("restore", str(tmp_path / "b"), str(tmp_path / "r"), "--decrypt-key", str(key))[0] == 1


def test_tampered_backup_is_refused(ledger_template: LedgerStore, tmp_path: Path) -> None:
    import tarfile

    _cli("backup", "--data", str(ledger_template.data), str(tmp_path / "b.tar"))
    work = tmp_path / "x"
    with tarfile.open(tmp_path / "b.tar") as tar:
        tar.extractall(work, filter="data")
    with sqlite3.connect(work / "stackwatch.db") as conn:
        conn.execute("UPDATE events SET message = 'all quiet' WHERE seq = 200")
    with tarfile.open(tmp_path / "evil.tar", "w") as tar:
        for name in MEMBERS:
            tar.add(work / name, name)
    code, out = _cli("restore", str(tmp_path / "evil.tar"), str(tmp_path / "r"))
    assert code == 1 and "seq 200" in out
    assert not (tmp_path / "r").exists()


def test_retention_keeps_what_remains_verifiable(ledger_template: LedgerStore, tmp_path: Path) -> None:
    store = copy_store(ledger_template, tmp_path / "d")
    with SQLiteStore(store.data, background_index=False) as s:
        result = expire(s, max_size=1, actor="ops")  # expire as much as possible
        assert result.pruned_to > 250 and result.admin_seq is not None
        s.append_events(ledger_events(40, 5000))
        s.checkpoint()
        s.append_events(ledger_events(10, 6000))
    report = verify_store(store.data, initial_keys=[store.k0])
    assert report.ok(), report.problems
    note = next(p for p in report.problems if p.kind == "pruned")
    assert f"records 1..{result.pruned_to}" in note.message and "attested ONLY by checkpoints" in note.message
    code, out = _cli("verify", "--data", str(store.data), "--key", store.k0_text)
    assert code == 0 and "attested ONLY by checkpoints" in out
    with SQLiteStore(store.data, read_only=True) as s:  # the retention run is itself in the log
        admin = s.search_events(EventQuery(kind="admin", action="retention.run"))
        assert admin and admin[0].event.attrs["pruned_to"] == result.pruned_to
    # proofs for the remaining records still work
    assert (
        _cli("prove", "--data", str(store.data), str(result.pruned_to + 1), "-o", str(tmp_path / "p"))[0] == 0
    )
    ok = subprocess.run([*AUDITOR, str(tmp_path / "p"), "--key", store.public_key], capture_output=True)
    assert ok.returncode == 0


def test_a_forged_retention_frontier_is_found(ledger_template: LedgerStore, tmp_path: Path) -> None:
    store = copy_store(ledger_template, tmp_path / "d")
    with SQLiteStore(store.data, background_index=False) as s:
        pruned = expire(s, max_size=1).pruned_to
    with sqlite3.connect(store.data / "stackwatch.db") as conn:  # claim fewer records were expired
        conn.execute("DELETE FROM events WHERE seq <= ?", (pruned + 5,))
        conn.execute("UPDATE ledger_state SET pruned_to = ?", (pruned + 5,))
    report = verify_store(store.data, initial_keys=[store.k0])
    assert report.failed and "pruned-frontier" in {p.kind for p in report.problems}


def test_retention_by_age(ledger_template: LedgerStore, tmp_path: Path) -> None:
    store = copy_store(ledger_template, tmp_path / "d")
    with SQLiteStore(store.data, background_index=False) as s:
        assert expire(s, max_age=parse_age("90d")).pruned_to == 0  # everything is fresh
    assert parse_size("10GB") == 10**10 and parse_age("2w") == timedelta(days=14)


def test_alert_status_changes_are_admin_events_in_the_log(
    ledger_template: LedgerStore, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    store = copy_store(ledger_template, tmp_path / "d")
    now = datetime.now(UTC)
    alert = Alert(
        rule="r1",
        title="t",
        category="auth.bruteforce",
        severity="high",
        time=now,
        last_seen=now,
        key="k",
        summary="s",
    )
    with SQLiteStore(store.data, background_index=False) as s:
        [alert_id] = s.upsert_alerts([alert])
        s.set_alert_status(alert_id, "acknowledged", actor="ops-jane", comment="looking")
        seq = record_admin_action(s, "ops-bob", "rule.change", "rules/ssh.yaml", {"enabled": False})
        assert seq is not None
        events = s.search_events(EventQuery(kind="admin", service="stackwatch", newest_first=False))
    actions = [(e.event.action, e.event.initiator.name) for e in events]
    assert ("alert.status", "ops-jane") in actions and ("rule.change", "ops-bob") in actions
    assert verify_store(store.data, initial_keys=[store.k0]).ok()


def test_admin_event_from_a_second_process_goes_through_the_outbox(
    ledger_template: LedgerStore, tmp_path: Path
) -> None:
    store = copy_store(ledger_template, tmp_path / "d")
    writer = SQLiteStore(store.data, background_index=False)
    writer.append_events(ledger_events(3, 900))  # holds the append lock
    writer.flush()
    other = SQLiteStore(store.data, background_index=False)
    assert record_admin_action(other, "ops", "response.run", "block 10.0.0.1") is None  # queued
    other.close()
    writer.append_events(ledger_events(1, 950))
    writer.close()
    with SQLiteStore(store.data, read_only=True) as s:
        assert s.search_events(EventQuery(action="response.run"))
    assert verify_store(store.data, initial_keys=[store.k0]).ok()


def test_v2_store_upgrades_and_chains_its_records(tmp_path: Path) -> None:
    from stackwatch.store.sqlite_schema import migrate

    data = tmp_path / "d"
    data.mkdir()
    conn = sqlite3.connect(data / "stackwatch.db", isolation_level=None)
    migrate(conn, target=2)
    conn.execute("INSERT INTO sources (id, host, service) VALUES (1, 'ctl-1', 'sshd')")
    for seq in (1, 2, 3):
        conn.execute(
            "INSERT INTO events VALUES (?, 0, 0, 1, 'info', 'syslog', '', '', 'root', '', '', '', '', "
            "'', '', '', '', '', '', 'old', '{}', X'6f6c64', 'file:x', 'x:1', NULL)",
            (seq,),
        )
    conn.close()
    code, out = _cli("init", "--data", str(data))
    assert code == 0
    k0 = next(line.strip() for line in out.splitlines() if line.startswith("    "))
    assert _cli("verify", "--data", str(data), "--key", k0)[0] == 0


@pytest.mark.parametrize("spec", ["syslog+udp://127.0.0.1:{port}", "http://127.0.0.1:{port}/cp"])
def test_network_witnesses_receive_checkpoints(tmp_path: Path, spec: str) -> None:
    import socket
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: list[bytes] = []
    if spec.startswith("syslog"):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        port = sock.getsockname()[1]
        threading.Thread(target=lambda: received.append(sock.recv(65536)), daemon=True).start()
    else:

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = HTTPServer(("127.0.0.1", 0), Handler)
        port = server.server_address[1]
        threading.Thread(target=server.handle_request, daemon=True).start()
    code, _ = _cli("init", "--data", str(tmp_path / "d"), "--witness", spec.format(port=port))
    assert code == 0
    deadline = time.monotonic() + 10
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    line = received[0].decode()
    assert line.startswith("<110>1 ") if spec.startswith("syslog") else line.startswith("{")
    doc = json.loads(line[line.index("{") :])
    assert doc["epoch"] == 0 and doc["size"] == 1
    witness = tmp_path / "w.jsonl"
    witness.write_text(line + "\n")
    assert verify_store(tmp_path / "d", witnesses=[witness]).ok()
