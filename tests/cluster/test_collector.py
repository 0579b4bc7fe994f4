"""`serve --role collector` as real processes, real RabbitMQ: lines from `logger --tcp` and tailed
files arrive in the partition queues, each event stored exactly once (one home copy), and a
keystone brute force written by three controllers and read by two collectors lands in one
partition."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from tests.cluster.clustertools import (
    CollectorProcess,
    Consumer,
    collector_config,
    markers,
    unique_cluster,
    wait_until,
)
from tests.servetools import free_port

pytestmark = pytest.mark.integration

BRUTE = "f05115da-9716-450c-a39a-d30657030483"  # keystone brute force from one address
ATTACKER = "203.0.113.77"


def _keystone_failure(n: int) -> str:
    return (f"2026-03-01 12:{n // 60:02d}:{n % 60:02d}.000 3279 WARNING keystone.common.wsgi "
            f"[req-{n:08d}-8591-4629-99a1-bdcd85b046b4 - - - - -] Authorization failed. The request you "
            f"have made requires authentication. from {ATTACKER}")


def _metric(port: int, name: str) -> float:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                     headers={"Authorization": "Bearer t0ken"})
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def _send_tcp(port: int, lines: list[str], folder: Path) -> None:
    batch = folder / f"lines-{port}.txt"
    batch.write_text("\n".join(lines) + "\n")
    subprocess.run(["logger", "--server", "127.0.0.1", "--port", str(port), "--tcp", "--rfc5424", "-t", "app",
                    "-p", "local0.info", "-f", str(batch)], check=True, timeout=60)


def test_two_collectors_publish_every_line_once_and_route_a_brute_force_to_one_partition(
        tmp_path: Path) -> None:
    cluster = unique_cluster()
    logs = {host: tmp_path / host / "keystone.log" for host in ("ctl1", "ctl2", "ctl3")}
    for path in logs.values():
        path.parent.mkdir()
        path.write_text("")

    def file_source(host: str) -> str:
        return (f"  - {{type: file, name: {host}-keystone, paths: ['{logs[host]}'], start_at: beginning, "
                f"host: {host}, service: keystone, poll_interval: 100ms}}\n")

    ports = [free_port(), free_port()]
    http = free_port()
    configs = [
        collector_config(tmp_path / "a", cluster, file_source("ctl1") + file_source("ctl2")
                         + f"  - {{type: syslog_tcp, name: tcp, listen: '127.0.0.1:{ports[0]}'}}\n",
                         hostname="colla",
                         top=f"listen: {{metrics: '127.0.0.1:{http}', metrics_token: $env:SW_TEST_TOKEN}}\n"),
        collector_config(tmp_path / "b", cluster, file_source("ctl3")
                         + f"  - {{type: syslog_tcp, name: tcp, listen: '127.0.0.1:{ports[1]}'}}\n",
                         hostname="collb"),
    ]
    with Consumer(cluster) as consumer:
        collectors = [CollectorProcess(config, {"SW_TEST_TOKEN": "t0ken"}).start() for config in configs]
        try:
            for n in range(45):  # one attack, three controllers, two collectors
                with logs[f"ctl{n % 3 + 1}"].open("a") as handle:
                    handle.write(_keystone_failure(n) + "\n")
            for index, port in enumerate(ports):
                _send_tcp(port, [f"job done marker-{index}-{n} ok" for n in range(300)], tmp_path)
            received = consumer.received

            def complete() -> bool:
                homes = received.homes()
                return (len(markers(homes, "marker")) >= 600
                        and sum(1 for e in homes if e.service == "keystone") >= 45)

            wait_until(complete, 60, "every line's home copy")
            acknowledged = "stackwatch_collector_acknowledged_events_total"
            # colla read ctl1's and ctl2's 30 keystone lines and its 300 TCP lines
            wait_until(lambda: _metric(http, acknowledged) == 330, 10, "the acknowledged count in /metrics")
            with pytest.raises(urllib.error.HTTPError, match="401"):
                urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=5)
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=5) as response:
                assert json.loads(response.read())["status"] == "ok"
            for collector in collectors:
                assert collector.stop() == 0, collector.log()
        finally:
            for collector in collectors:
                collector.kill()
        homes = received.homes()
        counts = Counter(markers(homes, "marker"))
        assert sorted(counts) == sorted(f"marker-{i}-{n}" for i in range(2) for n in range(300))
        assert set(counts.values()) == {1}  # each stored exactly once
        keystone = [e for e in homes if e.service == "keystone"]
        assert len(keystone) == 45 and len({e.ref for e in keystone}) == 45
        assert {e.host for e in keystone} == {"ctl1", "ctl2", "ctl3"}
        brute = [(queue, event) for queue, _, event, rules, _ in received.copies() if BRUTE in rules]
        assert len(brute) == 45  # every attempt evaluated by the brute-force rule, once
        assert len({queue for queue, _ in brute}) == 1  # in one partition
        collectors_seen = {c for _, c, _, _ in received.batches}
        assert collectors_seen == {"colla", "collb"}
        for name in collectors_seen:  # per collector, batch seqs are unique (nothing published twice)
            seqs = [s for _, c, _, s in received.batches if c == name]
            assert len(seqs) == len(set(seqs))
    assert not consumer.errors
