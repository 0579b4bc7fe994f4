"""Real rsyslog forwarding to `stackwatch serve`: over TCP (LF framing) and over TLS with
mutual authentication (RFC 5425, octet counting); `logger` sending to rsyslog over UDP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackwatch.store import EventQuery, open_store
from tests.servetools import (
    HookReceiver,
    Rsyslog,
    ServeProcess,
    free_port,
    logger,
    make_certs,
    serve_config,
    udp_port_bound,
    wait_for,
)

pytestmark = pytest.mark.integration

FAILURE = "Failed password for invalid user oracle from 198.51.100.77 port 40022 ssh2"


def _relay(in_port: int, forward: str) -> str:
    return (
        f'module(load="imudp")\ninput(type="imudp" address="127.0.0.1" port="{in_port}")\n'
        f'action(type="omfwd" target="127.0.0.1" {forward} template="RSYSLOG_SyslogProtocol23Format"\n'
        '       action.resumeRetryCount="-1" queue.type="LinkedList" queue.size="10000")\n'
    )


def _run(tmp_path: Path, sources: str, relay: str, env: dict[str, str] | None = None) -> tuple[list, list]:
    in_port = free_port(2)
    with HookReceiver() as hook:
        config = serve_config(
            tmp_path, sources, sinks=f"  - {{type: webhook, name: hook, url: '{hook.url}'}}\n"
        )
        serve = ServeProcess(config, env).start()
        try:
            with Rsyslog(tmp_path / "rsyslog", _relay(in_port, relay)) as rsyslog:
                wait_for(lambda: udp_port_bound(in_port), 15)
                for _ in range(12):
                    logger(in_port, FAILURE)
                try:
                    wait_for(lambda: hook.requests, 15)
                except AssertionError:
                    raise AssertionError(
                        f"no alert; serve log:\n{serve.log()}\nrsyslog:\n{rsyslog.output()}"
                    ) from None
        finally:
            assert serve.stop() == 0, serve.log()
        documents = hook.documents()
    with open_store(tmp_path / "data") as store:
        events = store.search_events(EventQuery(service="sshd", limit=100))
    return documents, events


def test_rsyslog_forwards_over_tcp(tmp_path: Path) -> None:
    port = free_port()
    documents, events = _run(
        tmp_path,
        f"  - {{type: syslog_tcp, name: tcp, listen: '127.0.0.1:{port}'}}\n",
        f'port="{port}" protocol="tcp"',
    )  # rsyslog's default: LF ("traditional") framing
    assert len(events) == 12
    event = events[0].event
    assert event.action == "authenticate" and event.outcome == "failure"
    assert event.initiator.source_ip == "198.51.100.77" and event.initiator.name == "oracle"
    assert event.origin == "syslog:tcp/tcp" and event.raw.startswith("<38>1 ")
    assert documents[0]["alert"]["category"] == "auth.bruteforce"
    assert documents[0]["alert"]["source_ip"] == "198.51.100.77"


def test_rsyslog_forwards_over_mutual_tls(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "tls")
    port = free_port()
    sources = (
        f"  - type: syslog_tcp\n    name: tls\n    listen: '127.0.0.1:{port}'\n    tls:\n"
        f"      cert: '{certs['server_cert']}'\n      key: '{certs['server_key']}'\n"
        f"      client_ca: '{certs['ca']}'\n      require_client_cert: true\n"
    )
    relay = (
        f'port="{port}" protocol="tcp" TCP_Framing="octet-counted"\n'
        f'       StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name"'
        f' StreamDriverPermittedPeers="localhost"\n'
        f'       StreamDriver.CAFile="{certs["ca"]}" StreamDriver.CertFile="{certs["client_cert"]}"'
        f' StreamDriver.KeyFile="{certs["client_key"]}"'
    )
    documents, events = _run(tmp_path, sources, relay)
    assert len(events) == 12 and events[0].event.origin == "syslog:tls/tls"
    assert all(e.event.raw.endswith(FAILURE) for e in events)
    assert json.dumps(documents[0]).count("198.51.100.77") >= 1


def test_logger_over_udp_straight_to_serve(tmp_path: Path) -> None:
    port = free_port(2)
    config = serve_config(tmp_path, f"  - {{type: syslog_udp, name: udp, listen: '127.0.0.1:{port}'}}\n")
    serve = ServeProcess(config).start()
    try:
        for i in range(5):
            logger(port, f"Accepted publickey for deploy from 192.0.2.{i} port 50000 ssh2")
    finally:
        assert serve.stop() == 0, serve.log()
    with open_store(tmp_path / "data") as store:
        events = [
            s.event for s in store.search_events(EventQuery(service="sshd", limit=100, newest_first=False))
        ]
    assert [e.initiator.source_ip for e in events] == [f"192.0.2.{i}" for i in range(5)]
    assert all(e.action == "authenticate" and e.outcome == "success" for e in events)
