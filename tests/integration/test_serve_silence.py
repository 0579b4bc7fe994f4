"""A silence is honoured by delivery: while it lasts, ``serve`` stores the muted alert (marked
silenced) but calls no sink for it; an alert the silence does not cover still reaches the
webhook (a real HTTP receiver)."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stackwatch.store import open_store
from stackwatch.store.base import AlertQuery
from tests.servetools import HookReceiver, ServeProcess, free_port, serve_config, wait_for

pytestmark = pytest.mark.integration
RULE = "5d0c3a52-1f6e-4c1e-9a55-0d7c2b9f0a01"  # the serve test rule: ssh brute force by source IP
MUTED, LOUD = "203.0.113.66", "203.0.113.77"


def _line(i: int, ip: str) -> bytes:
    stamp = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    text = f"Failed password for root from {ip} port 5022 ssh2"
    body = f"<38>1 {stamp} cmp1 sshd {1000 + i} - - {text}".encode()
    return b"%d %s" % (len(body), body)


def test_a_silenced_alert_is_stored_and_marked_but_not_sent(tmp_path: Path) -> None:
    port = free_port()
    with HookReceiver() as hook:
        config = serve_config(
            tmp_path,
            f"  - {{type: syslog_tcp, name: tcp, listen: '127.0.0.1:{port}'}}\n",
            sinks=f"  - {{type: webhook, name: hook, url: '{hook.url}', secret: $env:SW_HOOK}}\n",
        )
        with open_store(tmp_path / "data") as store:
            silence = store.create_silence(RULE, MUTED, ends=datetime.now(UTC) + timedelta(hours=1),
                                           actor="rex", reason="pen test from this address")
        serve = ServeProcess(config, {"SW_HOOK": "k"}).start()
        try:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                for i in range(10):
                    sock.sendall(_line(i, MUTED))
                for i in range(10):
                    sock.sendall(_line(i, LOUD))
            wait_for(lambda: hook.requests, 10, 0.01)
            time.sleep(1.0)  # room for a (wrong) delivery of the muted alert
        finally:
            assert serve.stop() == 0, serve.log()
        sent = [d["alert"]["source_ip"] for d in hook.documents()]
    assert sent and set(sent) == {LOUD}
    with open_store(tmp_path / "data") as store:
        stored = {a.alert.source_ip: a for a in store.alerts(AlertQuery(rule=RULE))}
    assert stored[MUTED].silenced_by == silence.id
    assert stored[LOUD].silenced_by is None
