"""End to end: a brute force streamed in over syslog reaches the webhook within a second;
heartbeats are stored; /metrics and /healthz answer on the self-monitoring listener."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stackwatch.store import EventQuery, open_store
from tests.servetools import HookReceiver, ServeProcess, free_port, serve_config, wait_for

pytestmark = pytest.mark.integration


def _line(i: int, text: str) -> bytes:
    stamp = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    body = f"<38>1 {stamp} cmp{i % 3} sshd {1000 + i} - - {text}".encode()
    return b"%d %s" % (len(body), body)


def test_brute_force_over_syslog_alerts_at_the_webhook_within_a_second(tmp_path: Path) -> None:
    port, http = free_port(), free_port()
    with HookReceiver() as hook:
        config = serve_config(
            tmp_path,
            f"  - {{type: syslog_tcp, name: tcp, listen: '127.0.0.1:{port}'}}\n",
            sinks=f"  - {{type: webhook, name: hook, url: '{hook.url}', secret: $env:SW_HOOK}}\n",
            extra=f"listen: {{metrics: '127.0.0.1:{http}', metrics_token: $env:SW_METRICS}}\n"
            "limits: {heartbeat_interval: 200ms}\n",
        )
        serve = ServeProcess(config, {"SW_HOOK": "k", "SW_METRICS": "t0ken"}).start()
        try:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                for i in range(200):  # ordinary traffic first
                    sock.sendall(
                        _line(i, f"Accepted publickey for deploy from 192.0.2.{i % 250} port 4000 ssh2")
                    )
                time.sleep(0.3)
                for i in range(9):
                    sock.sendall(_line(i, "Failed password for root from 203.0.113.66 port 5022 ssh2"))
                    time.sleep(0.02)
                assert hook.requests == []  # nine is below the threshold
                sock.sendall(_line(9, "Failed password for root from 203.0.113.66 port 5022 ssh2"))
                crossed = time.time()
                wait_for(lambda: hook.requests, 5, 0.005)
            latency = hook.requests[0]["time"] - crossed
            metrics = _get(f"http://127.0.0.1:{http}/metrics", "t0ken")
            health = _get(f"http://127.0.0.1:{http}/healthz")
            with pytest.raises(urllib.error.HTTPError) as denied:
                _get(f"http://127.0.0.1:{http}/metrics", "wrong")
        finally:
            assert serve.stop() == 0, serve.log()
        document = hook.documents()[0]
    assert latency < 1.0, f"alert took {latency:.3f}s"
    assert document["alert"]["source_ip"] == "203.0.113.66" and document["change"] == "new"
    assert 'stackwatch_records_received_total{source="tcp"} 210' in metrics
    assert "stackwatch_queue_depth" in metrics and "stackwatch_store_bytes" in metrics
    assert 'stackwatch_alert_changes_total{category="auth.bruteforce",severity="high"}' in metrics
    assert '"status":"ok"' in health and denied.value.code == 401
    with open_store(tmp_path / "data") as store:
        beats = store.search_events(EventQuery(service="stackwatch", action="monitor.heartbeat", limit=100))
        stored_alert = store.alerts()[0]
    assert beats and beats[0].event.kind == "heartbeat" and beats[0].event.host == "testmon"
    assert stored_alert.alert.source_ip == "203.0.113.66" and stored_alert.id == document["id"]


def _get(url: str, token: str | None = None) -> str:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read().decode()
