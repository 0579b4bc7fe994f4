"""deny_address against a real HAProxy (Debian's) in front of a local HTTP service, through its
real admin socket: a denied address gets 403 (others still pass), an expired entry is gone,
undo removes it, allowlisted addresses are refused; report-only and dry runs change nothing."""

from __future__ import annotations

import http.client
import io
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from stackwatch.cli.main import cli
from stackwatch.core.alert import Alert
from stackwatch.core.event import Event
from stackwatch.respond.applied import AppliedLedger
from stackwatch.respond.approvals import ApprovalQueue
from stackwatch.respond.counter_run import countermeasure_pass
from stackwatch.respond.haproxy import HAProxyError, RuntimeApi
from stackwatch.respond.policy import ResponsePolicy
from stackwatch.store import EventQuery, open_store
from stackwatch.store.admin import AUDIT_SPOOL
from stackwatch.store.verify import verify_store
from tests.servetools import ServeProcess, free_port, logger, serve_config, wait_for

ATTACKER, BYSTANDER, MANAGER = "127.0.0.2", "127.0.0.3", "127.0.0.4"
CONFIG = """\
global
    stats socket {folder}/admin.sock mode 600 level admin
    pidfile {folder}/haproxy.pid

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend api
    bind 127.0.0.1:{port}
    http-request deny deny_status 403 if {{ src,map_ip({map}) -m found }}
    default_backend service

backend service
    server s1 127.0.0.1:{backend}
"""


@dataclass
class Front:
    port: int
    socket: str
    map: str
    restart: Any = None  # stops the test's haproxy and starts a new one (the map file read again)


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def front(tmp_path: Path) -> Iterator[Front]:
    backend = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    folder = tmp_path / "haproxy"
    folder.mkdir()
    deny_map = folder / "stackwatch-deny.map"
    deny_map.write_text("")
    port = free_port()
    config = folder / "haproxy.cfg"
    backend_port = backend.server_address[1]
    config.write_text(CONFIG.format(folder=folder, port=port, map=deny_map, backend=backend_port))
    check = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        procs.append(subprocess.Popen(["haproxy", "-db", "-f", str(config)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        wait_for(lambda: (folder / "admin.sock").exists() and _status(port, "127.0.0.1") == 200, 15, 0.1)

    def restart() -> None:
        procs[-1].terminate()
        procs[-1].wait(10)
        (folder / "admin.sock").unlink(missing_ok=True)
        start()

    try:
        start()
        yield Front(port, str(folder / "admin.sock"), str(deny_map), restart)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        backend.shutdown()
        backend.server_close()


def _status(port: int, source: str) -> int | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(source, 0))
    try:
        conn.request("GET", "/v3/")
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def _alert(address: str, key: str = "k") -> Alert:
    now = datetime.now(UTC)
    return Alert(rule="brute", title="brute force", category="auth.bruteforce", severity="high", time=now,
                 last_seen=now, key=key, source_ip=address)


def _policy(front: Front, mode: str = "act", **extra: Any) -> ResponsePolicy:
    deny = {"mode": mode, "socket": front.socket, "map": front.map, "allowlist": [f"{MANAGER}/32"], **extra}
    return ResponsePolicy.from_mapping({"respond": {"approval": False, "grace": 0, "retries": 0,
                                                    "countermeasures": {"deny_address": deny}}})


def _run(pol: ResponsePolicy, data: Path, alerts: list[Alert], dry_run: bool = False) -> Any:
    with open_store(data) as store, ApprovalQueue.open(data, store=store) as queue, \
            AppliedLedger.open(data) as ledger:
        return countermeasure_pass(pol, cloud=None, store=store, queue=None if dry_run else queue,
                                   ledger=None if dry_run else ledger, alerts=alerts, dry_run=dry_run,
                                   out=io.StringIO(), own={"127.0.0.1"})


def _events(data: Path) -> list:
    with open_store(data) as store:
        query = EventQuery(kind="response", newest_first=False, limit=100)
        found = [s.event for s in store.search_events(query)]
    return [(e.action, e.attrs.get("result"), e.target.id) for e in found]


def test_a_denied_address_gets_403_until_undone(front: Front, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _status(front.port, ATTACKER) == 200
    _run(_policy(front, mode="report"), data, [_alert(ATTACKER)])  # report-only: never fires
    _run(_policy(front), data, [_alert(ATTACKER)], dry_run=True)  # dry run: nothing changes
    assert RuntimeApi(front.socket).show_map(front.map) == {} and _status(front.port, ATTACKER) == 200

    report = _run(_policy(front), data, [_alert(ATTACKER), _alert(MANAGER, "m"), _alert("127.0.0.1", "o")])
    assert [r.status for r in report.run.results] == ["done"]
    assert _status(front.port, ATTACKER) == 403 and _status(front.port, BYSTANDER) == 200
    assert _status(front.port, MANAGER) == 200  # allowlisted: refused, never denied
    assert sorted((r.planned.resource_id, r.detail) for r in report.refused) == [
        ("127.0.0.1", "127.0.0.1 is the monitor's own address"), (MANAGER, f"{MANAGER} is in the allowlist")]

    queue_id = report.run.results[0].queue_id
    result = CliRunner().invoke(cli, ["respond", "undo", str(queue_id), "--dry-run", "--data", str(data)])
    assert result.exit_code == 0 and "would undo deny_address address 127.0.0.2" in result.output
    assert _status(front.port, ATTACKER) == 403
    result = CliRunner().invoke(cli, ["respond", "undo", str(queue_id), "--data", str(data)])
    assert result.exit_code == 0, result.output
    assert _status(front.port, ATTACKER) == 200 and RuntimeApi(front.socket).show_map(front.map) == {}
    assert _events(data) == [
        ("response.deny_address", "refused", MANAGER), ("response.deny_address", "refused", "127.0.0.1"),
        ("response.deny_address", "done", ATTACKER), ("response.undo_deny_address", "done", ATTACKER)]
    assert verify_store(data).ok(allow_unsealed_tail=True)


def test_entries_haproxy_lost_in_a_restart_are_added_back(front: Front, tmp_path: Path) -> None:
    """Runtime map entries live in the process: a restart reads the (empty) map file again.
    The next pass adds back what the ledger says is still in force, as an event."""
    data = tmp_path / "data"
    report = _run(_policy(front, expiry="1h"), data, [_alert(ATTACKER), _alert(BYSTANDER, "b")])
    assert [r.status for r in report.run.results] == ["done", "done"]
    assert _status(front.port, ATTACKER) == 403
    bystander = next(r.queue_id for r in report.run.results if r.planned.resource_id == BYSTANDER)
    undo = CliRunner().invoke(cli, ["respond", "undo", str(bystander), "--data", str(data)])
    assert undo.exit_code == 0, undo.output
    value = RuntimeApi(front.socket).show_map(front.map)[ATTACKER]

    front.restart()
    assert _status(front.port, ATTACKER) == 200 and RuntimeApi(front.socket).show_map(front.map) == {}
    again = _run(_policy(front, expiry="1h"), data, [])
    assert [(r.status, r.planned.resource_id) for r in again.restored] == [("done", ATTACKER)]
    assert _status(front.port, ATTACKER) == 403 and _status(front.port, BYSTANDER) == 200  # undone stays out
    assert RuntimeApi(front.socket).show_map(front.map) == {ATTACKER: value}  # the same expiry
    assert _run(_policy(front, expiry="1h"), data, []).restored == []  # present: nothing to do
    assert _events(data)[-1] == ("response.restore_deny_address", "done", ATTACKER)
    assert verify_store(data).ok(allow_unsealed_tail=True)


def test_an_expired_entry_is_removed(front: Front, tmp_path: Path) -> None:
    data = tmp_path / "data"
    started = int(time.time())
    report = _run(_policy(front, expiry=1), data, [_alert(ATTACKER)])
    assert [r.status for r in report.run.results] == ["done"] and _status(front.port, ATTACKER) == 403
    (value,) = RuntimeApi(front.socket).show_map(front.map).values()
    assert value.startswith("stackwatch:")  # the expiry, visible in HAProxy
    assert int(value.split(":")[1]) in (started + 1, started + 2)
    result = CliRunner().invoke(cli, ["respond", "expire", "--data", str(data)])
    assert "nothing has expired" in result.output and _status(front.port, ATTACKER) == 403
    time.sleep(1.2)
    result = CliRunner().invoke(cli, ["respond", "expire", "--data", str(data)])
    assert result.exit_code == 0, result.output
    assert RuntimeApi(front.socket).show_map(front.map) == {} and _status(front.port, ATTACKER) == 200
    assert [e[:2] for e in _events(data)] == [("response.deny_address", "done"),
                                              ("response.expire_deny_address", "done")]


def test_a_failing_socket_is_reported_and_the_retry_is_idempotent(front: Front, tmp_path: Path) -> None:
    data = tmp_path / "data"
    broken = _policy(front, socket=str(tmp_path / "missing.sock"))
    report = _run(broken, data, [_alert(ATTACKER)])
    (result,) = report.run.results
    assert result.status == "failed" and "missing.sock" in result.detail
    # the queued action keeps its socket; the operator fixes the socket and `respond run` retries it
    with ApprovalQueue.open(data) as queue:
        (item,) = queue.actions()
        assert item.status == "failed"
    RuntimeApi(front.socket).add_map(front.map, ATTACKER, "stackwatch:0")  # someone added it meanwhile
    fixed = _run(_policy(front), data, [_alert(ATTACKER, "second")])
    assert [r.status for r in fixed.run.results] == ["done"]  # add is idempotent: no error, one entry
    assert list(RuntimeApi(front.socket).show_map(front.map)) == [ATTACKER]


def test_runtime_api_errors_are_clear(front: Front, tmp_path: Path) -> None:
    api = RuntimeApi(front.socket)
    with pytest.raises(HAProxyError, match="Unknown map identifier"):
        api.show_map(str(tmp_path / "nope.map"))
    assert api.del_map(front.map, "192.0.2.1") is False  # not there: already removed
    with pytest.raises(HAProxyError, match="separator"):
        api.command("show map x; shutdown sessions")


def test_the_cli_plans_waits_for_approval_and_runs_without_a_cloud(front: Front, tmp_path: Path) -> None:
    """plan (pending) -> approve -> run: HAProxy's deny map needs no OpenStack credentials."""
    data = tmp_path / "data"
    with open_store(data) as store:
        store.upsert_alerts([_alert(ATTACKER)])
        store.flush()
    config = tmp_path / "policy.yaml"
    config.write_text(
        "respond:\n  approval: true\n  grace: 0\n  countermeasures:\n    deny_address:\n      mode: act\n"
        f"      socket: {front.socket}\n      map: {front.map}\n      expiry: 1h\n"
    )
    runner = CliRunner(env={"OS_CLOUD": "", "OS_AUTH_URL": ""})
    dry = runner.invoke(cli, ["respond", "plan", "--config", str(config), "--dry-run", "--data", str(data)])
    assert dry.exit_code == 0, dry.output
    assert "would deny_address address 127.0.0.2" in dry.output
    planned = runner.invoke(cli, ["respond", "plan", "--config", str(config), "--data", str(data)])
    assert planned.exit_code == 0, planned.output
    assert "1 countermeasure(s) wait for approval" in planned.output and _status(front.port, ATTACKER) == 200
    listed = runner.invoke(cli, ["respond", "list", "--data", str(data)])
    (line,) = listed.output.splitlines()
    assert "pending" in line and "deny_address address 127.0.0.2" in line and "[alert brute:k]" in line
    queue_id = line.split()[0]
    approved = runner.invoke(cli, ["respond", "approve", queue_id, "--actor", "alice", "--data", str(data)])
    assert approved.exit_code == 0, approved.output
    ran = runner.invoke(cli, ["respond", "run", "--config", str(config), "--data", str(data)])
    assert ran.exit_code == 0, ran.output
    assert _status(front.port, ATTACKER) == 403
    assert [e[:2] for e in _events(data)] == [("response.approve", None), ("response.deny_address", "done")]


def test_while_serve_holds_the_store_the_events_go_to_its_spool(front: Front, tmp_path: Path) -> None:
    """Only one process appends to a store: the commands spool what they record, for serve."""
    data = tmp_path / "data"
    config = tmp_path / "policy.yaml"
    config.write_text(
        "respond:\n  approval: false\n  grace: 0\n  countermeasures:\n    deny_address:\n      mode: act\n"
        f"      socket: {front.socket}\n      map: {front.map}\n"
    )
    with open_store(data) as holder:  # stands for serve: it holds the append lock from its first append
        holder.upsert_alerts([_alert(ATTACKER)])
        holder.flush()
        now = datetime.now(UTC)
        holder.append_events([Event(time=now, received=now, host="mon", service="stackwatch", message="held",
                                    origin="test", ref="held")])
        holder.flush()
        ran = CliRunner().invoke(cli, ["respond", "plan", "--config", str(config), "--data", str(data)])
        assert ran.exit_code == 0, ran.output
        assert _status(front.port, ATTACKER) == 403
    spooled = [orjson.loads(line) for line in (data / AUDIT_SPOOL).read_bytes().splitlines()]
    assert [(e["action"], e["attrs"]["result"]) for e in spooled] == [("response.deny_address", "done")]


def test_serve_denies_a_brute_forcing_address_without_a_cloud(front: Front, tmp_path: Path) -> None:
    """A real serve process, no respond.cloud: its own countermeasure cadence plans, runs (no
    approval asked) and records deny_address for the brute-force alert it raised; the cloud
    action in the same policy is reported only, with the reason in serve's log."""
    port = free_port()
    respond = (
        "respond:\n  approval: false\n  grace: 0\n  retries: 0\n  countermeasure_interval: 1s\n"
        "  countermeasures:\n"
        "    deny_address: {mode: act, on: [auth.bruteforce], expiry: 1h,"
        f" socket: '{front.socket}', map: '{front.map}'}}\n"
        "    disable_account: {mode: act, on: [auth.bruteforce]}\n"
    )
    config = serve_config(tmp_path, f"  - {{type: syslog_tcp, name: tcp, listen: '127.0.0.1:{port}'}}\n",
                          extra=respond)
    serve = ServeProcess(config).start()
    try:
        assert _status(front.port, ATTACKER) == 200
        for i in range(12):
            logger(port, f"Failed password for root from {ATTACKER} port {40000 + i} ssh2", transport="--tcp")
        wait_for(lambda: _status(front.port, ATTACKER) == 403, 30, 0.2)
        assert _status(front.port, BYSTANDER) == 200
        wait_for(lambda: "disable_account: report only, no respond.cloud" in serve.log(), 10, 0.1)
    finally:
        assert serve.stop() == 0, serve.log()
    assert ("response.deny_address", "done", ATTACKER) in _events(tmp_path / "data")
    assert not [e for e in _events(tmp_path / "data") if e[0].endswith("disable_account")]
    assert verify_store(tmp_path / "data").ok(allow_unsealed_tail=True)
