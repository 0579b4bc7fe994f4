"""The command line on a shared PostgreSQL store, as real processes: two analyzers writing
one store at once, then alerts, report, search, store verify / prove / backup / restore and
the web API over it."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from stackwatch.scenario import demo_dataset
from tests.pgdb import fresh_database

SRC = str(Path(__file__).resolve().parents[2] / "src")


def cli(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-m", "stackwatch", *args], capture_output=True, text=True,
                          input=stdin, env=env, timeout=600, check=False)
    if check:
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
    return done


def start(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-m", "stackwatch", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def k0_of(output: str) -> str:
    match = re.search(r"keep it OFFLINE:\s+(\S+)", output, re.I)
    assert match, output
    return match.group(1)


class Shared:
    def __init__(self, url: str, root: Path) -> None:
        self.url = url
        self.root = root
        self.logs = demo_dataset(root / "logs", seed=7)
        self.k0: dict[str, str] = {}

    def writer_url(self, name: str) -> str:
        return f"{self.url}?writer={name}&keys={self.root / name}"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """Two analyzers (writers a1, a2, each with its keys) analyzing the demo logs at once."""
    with fresh_database() as url:
        store = Shared(url, tmp_path_factory.mktemp("pgcli"))
        for name in ("a1", "a2"):
            store.k0[name] = k0_of(cli("store", "init", "--data", url, "--writer", name,
                                       "--keys", str(store.root / name)).stdout)
        runs = [start("analyze", str(store.logs), "--data", store.writer_url(name), "--format", "json")
                for name in ("a1", "a2")]
        for run in runs:
            _, err = run.communicate(timeout=600)
            assert run.returncode == 0, err[-2000:]
        yield store


@pytest.fixture(scope="module")
def embedded(shared: Shared) -> list[dict[str, object]]:
    """The same logs analyzed into an embedded store: what the shared one must also say."""
    data = shared.root / "sqlite"
    cli("analyze", str(shared.logs), "--data", str(data))
    return json.loads(cli("alerts", "--data", str(data), "-f", "json").stdout)  # type: ignore[no-any-return]


def _identity(alerts: list[dict[str, object]]) -> set[tuple[object, ...]]:
    return {(a["Rule"], a["Host"], a["Category"], a["Source IP"], a["User"]) for a in alerts}


def test_two_analyzers_make_each_alert_once(shared: Shared, embedded: list[dict[str, object]]) -> None:
    alerts = json.loads(cli("alerts", "--data", shared.url, "-f", "json").stdout)
    assert alerts
    assert len(alerts) == len(embedded)
    assert _identity(alerts) == _identity(embedded)


def test_both_logs_hold_every_event_and_reads_span_them(shared: Shared) -> None:
    sources = json.loads(cli("sources", "--data", shared.url, "-f", "json").stdout)
    embedded = json.loads(cli("sources", "--data", str(shared.root / "sqlite"), "-f", "json").stdout)
    # every event twice (two writers read the same logs), each log once; admin events aside
    counts = {(s["Host"], s["Service"]): s["Events"] for s in sources}
    for s in embedded:
        assert counts[(s["Host"], s["Service"])] == 2 * s["Events"]


def test_report_and_search_read_the_shared_store(shared: Shared) -> None:
    report = cli("report", "auth", "--data", shared.url, "--since", "2000-01-01")
    assert "Failures by source IP" in report.stdout
    found = json.loads(cli("search", "--data", shared.url, "--since", "2000-01-01", "-f", "json",
                           "--limit", "5", "action:authenticate AND outcome:failure").stdout)
    assert len(found) == 5


def test_store_verify_checks_every_writer(shared: Shared) -> None:
    done = cli("store", "verify", "--data", shared.url, "--key", f"a1={shared.k0['a1']}",
               "--key", f"a2={shared.k0['a2']}", "--keys", f"a1={shared.root / 'a1'}",
               "--keys", f"a2={shared.root / 'a2'}")
    assert "writer a1:" in done.stdout and "writer a2:" in done.stdout
    assert done.stdout.rstrip().endswith("RESULT: OK")


def test_a_proof_of_an_event_checks_offline(shared: Shared, tmp_path: Path) -> None:
    proof = tmp_path / "proof.json"
    cli("store", "prove", "--data", shared.url, str((1 << 40) | 17), "-o", str(proof))  # a2's 17th record
    audited = subprocess.run([sys.executable, "-m", "stackwatch.store.auditor", str(proof)],
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": SRC},
                             check=False)
    assert audited.returncode == 0, audited.stdout
    assert audited.stdout.startswith("OK")


def test_backup_then_restore_into_another_database(shared: Shared, tmp_path: Path) -> None:
    dump = tmp_path / "store.dump"
    cli("store", "backup", "--data", shared.url, str(dump))
    with fresh_database() as other:
        done = cli("store", "restore", str(dump), other, "--key", f"a1={shared.k0['a1']}",
                   "--key", f"a2={shared.k0['a2']}")
        assert "verified records of 2 writers" in done.stdout
        assert cli("store", "verify", "--data", other).returncode == 0


def test_the_login_attempts_match_a_recount(shared: Shared) -> None:
    """Two analyzers read the same logs: each writer's attempts agree with a recount of its
    events, each login counted once (by whichever writer committed it first)."""
    done = cli("store", "attempts", "--data", shared.url)
    assert "writer a1:" in done.stdout and "writer a2:" in done.stdout
    assert done.stdout.rstrip().endswith("match a recount of the stored events")


def test_folder_only_commands_say_so(shared: Shared) -> None:
    done = cli("store", "migrate", "--data", shared.url, check=False)
    assert done.returncode == 2
    assert "postgresql:// store" in done.stderr
    done = cli("store", "promote", "--data", shared.url, check=False)  # the database's job: what to run
    assert done.returncode == 2 and "pg_ctl promote" in done.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_web_serves_the_shared_store(shared: Shared, tmp_path: Path) -> None:
    folder = tmp_path / "web"
    cli("user", "add", "ops", "--role", "responder", "--password-stdin", "--data", str(folder),
        stdin="a-long-enough-password\n")
    token = cli("user", "token", "ops", "--data", str(folder)).stdout.split()[-1]
    port = _free_port()
    web = start("web", "--data", str(folder), "--store", shared.url, "--listen", f"127.0.0.1:{port}")
    try:
        body = None
        for _ in range(100):
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/alerts?limit=500",
                                                 headers={"Authorization": f"Bearer {token}"})
                with urllib.request.urlopen(request, timeout=5) as response:
                    body = json.loads(response.read())
                break
            except OSError:
                time.sleep(0.2)
        assert body is not None, web.stderr.read() if web.poll() is not None else "web did not answer"
        alerts = body["alerts"] if isinstance(body, dict) else body
        assert len(alerts) == len(json.loads(cli("alerts", "--data", shared.url, "-f", "json").stdout))
        # a change made in the web: stored in the shared store, its admin event queued for a writer's log
        change = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/alerts/bulk", method="POST",
            data=json.dumps({"ids": [alerts[0]["id"]], "action": "acknowledge"}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(change, timeout=10) as response:
            assert response.status == 200
        stored = json.loads(cli("alerts", "--data", shared.url, "-f", "json", "--status",
                                "acknowledged").stdout)
        assert [a["ID"] for a in stored] == [alerts[0]["id"]]
        with psycopg.connect(shared.url, autocommit=True) as conn:
            queued = conn.execute("SELECT count(*) FROM stackwatch.admin_outbox "
                                  "WHERE convert_from(event, 'UTF8') LIKE '%alert.status%'").fetchone()
        assert queued == (1,)
    finally:
        web.terminate()
        web.wait(timeout=30)
