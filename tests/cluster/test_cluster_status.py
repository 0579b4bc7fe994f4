"""`stackwatch cluster status` and the roles' `/metrics`, real processes on a real RabbitMQ: a
collector and two analyzers (each the active consumer of one partition and the standby of the
other) are listed with their partitions, depths and lags; after kill -9 of one analyzer the other
owns both partitions and counts a takeover; with everything stopped, status says no analyzer is
alive (exit status 1)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.clustertools import (
    AnalyzerProcess,
    CollectorProcess,
    collector_config,
    this_tree,
    unique_cluster,
    wait_until,
)
from tests.servetools import free_port

pytestmark = pytest.mark.integration

TOKEN = "t0ken"
ENV = this_tree({"SW_TEST_TOKEN": TOKEN})


def _analyzer_config(folder: Path, cluster: str, member: str, port: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{member}.yaml"
    path.write_text(
        f"hostname: mon\nstate_dir: '{folder / member}'\nstore: {{url: '{folder / 'data'}'}}\n"
        f"listen: {{metrics: '127.0.0.1:{port}', metrics_token: $env:SW_TEST_TOKEN}}\n"
        f"cluster: {{name: {cluster}, amqp_url: 'amqp://guest@127.0.0.1:5672/', partitions: 2, buckets: 16, "
        f"member: {member}}}\n"
    )
    return path


def _status(config: Path) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "stackwatch", "cluster", "status", "--config", str(config), "--json"],
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def _metrics(port: int) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read().decode()


def _sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def _send(port: int, count: int, tag: str) -> None:
    """RFC 5424 lines from 40 hosts (routed by host: both partitions get some), newline-framed."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    lines = [f"<14>1 {stamp} node{n % 40} app 1 - - {tag}-{n} done\n" for n in range(count)]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall("".join(lines).encode())


def _owners(status: dict[str, Any]) -> dict[int, str | None]:
    return {p["number"]: p["owner"] for p in status["partitions"]}


def test_cluster_status_and_metrics_follow_owners_and_a_takeover(tmp_path: Path) -> None:
    cluster = unique_cluster()
    tcp = free_port()
    collector_http = free_port()
    ports = {"a": free_port(), "b": free_port()}
    collector = CollectorProcess(
        collector_config(
            tmp_path / "c",
            cluster,
            f"  - {{type: syslog_tcp, name: tcp, listen: '127.0.0.1:{tcp}'}}\n",
            partitions=2,
            buckets=16,
            hostname="coll1",
            top=f"listen: {{metrics: '127.0.0.1:{collector_http}', metrics_token: $env:SW_TEST_TOKEN}}\n",
        ),
        ENV,
    )
    configs = {m: _analyzer_config(tmp_path, cluster, m, ports[m]) for m in ports}
    analyzers: dict[str, AnalyzerProcess] = {}
    try:
        collector.start()
        analyzers["a"] = AnalyzerProcess(configs["a"], "0", "a", env=ENV)
        analyzers["b"] = AnalyzerProcess(configs["b"], "1", "b", env=ENV)
        time.sleep(2.5)  # each subscribed to the other's partition as its standby
        _send(tcp, 400, "first")

        def all_owned() -> dict[str, Any] | None:
            # Who is active where depends on who subscribed first (a loaded machine may start b
            # after a's standby delay): any owner, the other analyzer its standby.
            code, status = _status(configs["a"])
            settled = all(
                p["owner"] in ("a", "b") and p["standbys"] == [{"a": "b", "b": "a"}[p["owner"]]]
                for p in status["partitions"]
            )
            return status if code == 0 and settled else None

        status = wait_until(all_owned, 40, "every partition owned, the other analyzer its standby")
        owners = _owners(status)
        assert [c["member"] for c in status["collectors"]] == ["coll1"]
        assert status["collectors"][0]["events"] >= 400
        assert sorted(a["member"] for a in status["analyzers"]) == ["a", "b"]
        # RabbitMQ counts only the active consumer of a single-active-consumer queue: standbys from the beats
        assert all(p["consumers"] == 1 and p["exists"] and p["depth"] >= 0 for p in status["partitions"])
        assert all(
            p["commit_lag"] is not None and p["last_commit_age"] is not None for p in status["partitions"]
        )
        for beat in status["analyzers"]:
            assert beat["active"] == sorted(n for n, o in owners.items() if o == beat["member"])
        text = subprocess.run(
            [sys.executable, "-m", "stackwatch", "cluster", "status", "--config", str(configs["b"])],
            env={**os.environ, **ENV},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert text.returncode == 0, text.stderr
        assert "2 analyzers" in text.stdout and f"sw.{cluster}.p001" in text.stdout

        victim = owners[0]
        survivor = {"a": "b", "b": "a"}[victim]
        metrics = _metrics(ports[victim])
        for number, owner in owners.items():
            active = _sample(metrics, "stackwatch_partition_active", partition=str(number))
            assert active == (1 if owner == victim else 0)  # 0: a standby there
            assert _sample(metrics, "stackwatch_partition_queue_depth", partition=str(number)) is not None
        assert (_sample(metrics, "stackwatch_analyzer_events_stored_total", partition="0") or 0) > 0
        assert _sample(metrics, "stackwatch_analyzer_commit_lag_seconds", partition="0") is not None
        assert _sample(metrics, "stackwatch_analyzer_takeovers_total", member=victim) == 0
        assert _sample(_metrics(collector_http), "stackwatch_info", role="collector", member="coll1") == 1

        def stored() -> float:
            return sum(
                _sample(_metrics(ports[o]), "stackwatch_analyzer_events_stored_total", partition=str(n)) or 0
                for n, o in owners.items()
            )

        wait_until(
            lambda: stored() == 400, 20, "every line stored once (the collector sends no heartbeat events)"
        )

        analyzers[victim].kill()
        _send(tcp, 200, "second")

        def survivor_owns_all() -> dict[str, Any] | None:
            code, status = _status(configs[survivor])
            return status if code == 0 and set(_owners(status).values()) == {survivor} else None

        status = wait_until(survivor_owns_all, 40, "the standby owning the killed analyzer's partitions")
        taken = sum(1 for o in owners.values() if o == victim)  # each committed a checkpoint before the kill
        assert [a["member"] for a in status["analyzers"]] == [survivor]
        assert status["analyzers"][0]["takeovers"] == taken
        assert all(p["consumers"] == 1 for p in status["partitions"])
        assert (
            _sample(_metrics(ports[survivor]), "stackwatch_analyzer_takeovers_total", member=survivor)
            == taken
        )
        assert _sample(_metrics(ports[survivor]), "stackwatch_partition_active", partition="0") == 1

        assert analyzers[survivor].stop() == 0, analyzers[survivor].log()
        assert collector.stop() == 0, collector.log()
        code, status = _status(configs[survivor])  # the stopped members said so in their last beat
        assert code == 1 and status["analyzers"] == [] and status["collectors"] == []
        assert all(p["consumers"] == 0 for p in status["partitions"])
    finally:
        for process in [*analyzers.values(), collector]:
            process.kill()
        from tests.cluster.clustertools import Consumer

        with Consumer(cluster, partitions=2):  # deletes the cluster's topology on exit
            pass


def test_status_says_when_the_broker_cannot_be_reached(tmp_path: Path) -> None:
    config = tmp_path / "sw.yaml"
    config.write_text(
        f"cluster: {{name: {unique_cluster()}, amqp_url: 'amqp://guest@127.0.0.1:{free_port()}/'}}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "stackwatch", "cluster", "status", "--config", str(config)],
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "cannot read the cluster" in done.stderr


def test_an_analyzer_that_loses_the_broker_says_so_and_exits(tmp_path: Path) -> None:
    """Its /healthz turns 503 and the process exits non-zero (systemd's Restart=on-failure starts
    it again) instead of idling with no consumer while the broker is back."""
    from tests.cluster.clustertools import Consumer, TcpProxy

    cluster = unique_cluster()
    proxy = TcpProxy()
    port = free_port()
    config = _analyzer_config(tmp_path, cluster, "a", port)
    config.write_text(config.read_text().replace("127.0.0.1:5672", f"127.0.0.1:{proxy.port}"))
    analyzer = AnalyzerProcess(config, "0", "a", env=ENV, started=False)
    try:
        analyzer.start()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
        time.sleep(3)  # subscribed to every partition (its standby ones after the delay)
        proxy.cut()
        assert analyzer.proc is not None
        assert analyzer.proc.wait(30) != 0
        assert "lost the broker connection" in analyzer.log()
    finally:
        analyzer.kill()
        proxy.close()
        with Consumer(cluster, partitions=2):
            pass
