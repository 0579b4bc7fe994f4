"""A UDP flood on loopback against a running `stackwatch serve`: every datagram sent is either
stored or counted as dropped (by the kernel's receive buffer, the queue or the rate limit), in
/metrics and in the drop alert, whose summary agrees with its own numbers."""

from __future__ import annotations

import re
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from stackwatch.pipeline.selfmon import RULE_DROPPED
from stackwatch.store import open_store
from tests.servetools import ServeProcess, free_port, serve_config, wait_for

pytestmark = pytest.mark.integration

SENT = 30_000


def _metrics(port: int) -> dict[str, int]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                     headers={"Authorization": "Bearer t0ken"})
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
    wanted = {
        "committed": r'stackwatch_events_committed_total\{source="udp"\} (\d+)',
        "kernel": r'stackwatch_records_dropped_total\{source="udp",reason="kernel"\} (\d+)',
        "queue_full": r'stackwatch_records_dropped_total\{source="udp",reason="queue_full"\} (\d+)',
        "rate_limit": r'stackwatch_records_dropped_total\{source="udp",reason="rate_limit"\} (\d+)',
    }
    found = {name: re.search(pattern, text) for name, pattern in wanted.items()}
    assert all(found.values()), text
    return {name: int(match.group(1)) for name, match in found.items() if match}


def test_a_udp_flood_is_stored_or_counted_as_dropped(tmp_path: Path) -> None:
    port, http = free_port(socket.SOCK_DGRAM), free_port()
    config = serve_config(
        tmp_path,
        f"  - {{type: syslog_udp, name: udp, listen: '127.0.0.1:{port}', receive_buffer: 64k}}\n",
        extra=f"listen: {{metrics: '127.0.0.1:{http}', metrics_token: $env:SW_METRICS}}\n"
        "limits: {drop_check_interval: 500ms}\n",
    )
    serve = ServeProcess(config, {"SW_METRICS": "t0ken"}).start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for i in range(SENT):
                sock.sendto(b"<13>Dec  6 10:00:00 cmp1 flood: datagram %d" % i, ("127.0.0.1", port))

        def settled() -> dict[str, int] | None:
            figures = _metrics(http)
            return figures if sum(figures.values()) >= SENT else None

        figures = wait_for(settled, timeout=60, interval=0.2)
        time.sleep(1.5)  # a drop check or two after the flood
    finally:
        assert serve.stop() == 0, serve.log()
    assert figures["kernel"] > 0  # 64 KiB of buffer cannot hold a flood from a tight loop
    assert sum(figures.values()) == SENT
    with open_store(tmp_path / "data") as store:
        stored = store.counts().events
        (alert,) = [a.alert for a in store.alerts() if a.alert.rule == RULE_DROPPED]
    dropped = figures["kernel"] + figures["queue_full"] + figures["rate_limit"]
    assert alert.details["dropped"] == dropped and alert.details["dropped_kernel"] == figures["kernel"]
    assert f"{dropped} in total: {figures['kernel']} by the kernel" in alert.summary
    assert stored >= figures["committed"]  # the rest are heartbeats
