"""Real rsyslog (Debian's omrelp, librelp) sending over RELP to `stackwatch serve`: kill -9 of
serve mid-stream and a restart lose nothing and store nothing twice; RELP over mutual TLS."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from stackwatch.store import EventQuery, open_store
from tests.servetools import Rsyslog, ServeProcess, free_port, make_certs, serve_config, wait_for

pytestmark = pytest.mark.integration


def _stored(data: Path) -> list:
    if not (data / "stackwatch.db").exists():
        return []
    with open_store(data, read_only=True) as store:
        return [s.event for s in store.search_events(EventQuery(service="app", limit=10_000))]


def _relay(log: Path, port: int, tls: str = "") -> str:
    """rsyslog reading ``log`` (imfile) and forwarding with omrelp through a disk-assisted queue,
    retrying for ever: what docs/node-setup.md recommends."""
    return (
        'module(load="imfile")\nmodule(load="omrelp")\n'
        f'input(type="imfile" file="{log}" tag="app:" facility="local0" severity="info")\n'
        f'action(type="omrelp" target="127.0.0.1" port="{port}"'
        f' template="RSYSLOG_SyslogProtocol23Format"{tls}\n'
        '       windowSize="1024" action.resumeRetryCount="-1" action.resumeInterval="1"\n'
        '       queue.type="LinkedList" queue.filename="relp-fwd" queue.saveOnShutdown="on"\n'
        '       queue.size="100000")\n'
    )


def test_kill_9_mid_stream_loses_nothing_and_stores_nothing_twice(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "app.log"
    log.touch()
    total = 4000
    # commits a second apart: at each kill, records received but not yet committed are in flight
    config = serve_config(
        tmp_path,
        f"  - {{type: relp, name: relp, listen: '127.0.0.1:{port}'}}\n",
        extra="limits: {commit_interval: 1s}\n",
    )

    def write() -> None:
        with log.open("a") as handle:
            for i in range(total):
                handle.write(f"record {i}\n")
                if i % 40 == 0:
                    handle.flush()
                    time.sleep(0.02)

    serve = ServeProcess(config).start()
    with Rsyslog(tmp_path / "rsyslog", _relay(log, port)) as rsyslog:
        writer = threading.Thread(target=write)
        writer.start()
        try:
            for threshold in (600, 2000):  # kill twice while lines are flowing
                wait_for(lambda threshold=threshold: len(_stored(tmp_path / "data")) >= threshold, 60)
                serve.kill()
                time.sleep(1.0)  # rsyslog notices, queues on disk, retries
                serve = ServeProcess(config).start()
            writer.join(120)
            try:
                wait_for(lambda: len(_stored(tmp_path / "data")) >= total, 90, 0.2)
            except AssertionError:
                raise AssertionError(
                    f"{len(_stored(tmp_path / 'data'))} of {total} stored\nserve:\n{serve.log()}"
                    f"\nrsyslog:\n{rsyslog.output()}"
                ) from None
            time.sleep(1.0)  # anything stored twice would arrive now
        finally:
            writer.join(120)
            assert serve.stop() == 0, serve.log()
    events = _stored(tmp_path / "data")
    counts = Counter(int(e.message.rsplit(" ", 1)[1]) for e in events)
    assert sorted(counts) == list(range(total)), f"lost: {sorted(set(range(total)) - set(counts))[:20]}"
    assert max(counts.values()) == 1, f"stored twice: {[n for n, c in counts.items() if c > 1][:10]}"
    assert all(e.origin == "relp:relp" for e in events)


def test_relp_over_mutual_tls(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "tls")
    port = free_port()
    log = tmp_path / "app.log"
    log.write_text("".join(f"record {i}\n" for i in range(50)))
    sources = (
        f"  - type: relp\n    name: relps\n    listen: '127.0.0.1:{port}'\n    tls:\n"
        f"      cert: '{certs['server_cert']}'\n      key: '{certs['server_key']}'\n"
        f"      client_ca: '{certs['ca']}'\n      require_client_cert: true\n"
    )
    tls = (
        f'\n       tls="on" tls.caCert="{certs["ca"]}" tls.myCert="{certs["client_cert"]}"'
        f' tls.myPrivKey="{certs["client_key"]}" tls.authMode="name" tls.permittedPeer=["localhost"]'
    )
    serve = ServeProcess(serve_config(tmp_path, sources)).start()
    try:
        with Rsyslog(tmp_path / "rsyslog", _relay(log, port, tls)) as rsyslog:
            try:
                wait_for(lambda: len(_stored(tmp_path / "data")) >= 50, 30, 0.2)
            except AssertionError:
                raise AssertionError(f"serve:\n{serve.log()}\nrsyslog:\n{rsyslog.output()}") from None
    finally:
        assert serve.stop() == 0, serve.log()
    events = _stored(tmp_path / "data")
    assert sorted(int(e.message.rsplit(" ", 1)[1]) for e in events) == list(range(50))
    assert events[0].origin == "relp:relps" and events[0].service == "app"


def test_relp_tls_refuses_a_sender_without_our_certificate(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "tls")
    port = free_port()
    log = tmp_path / "app.log"
    log.write_text("record 1\n")
    sources = (
        f"  - type: relp\n    name: relps\n    listen: '127.0.0.1:{port}'\n    tls:\n"
        f"      cert: '{certs['server_cert']}'\n      key: '{certs['server_key']}'\n"
        f"      client_ca: '{certs['ca']}'\n      require_client_cert: true\n"
    )
    tls = (  # a certificate from another CA
        f'\n       tls="on" tls.caCert="{certs["ca"]}" tls.myCert="{certs["stranger_cert"]}"'
        f' tls.myPrivKey="{certs["stranger_key"]}" tls.authMode="name" tls.permittedPeer=["localhost"]'
    )
    serve = ServeProcess(serve_config(tmp_path, sources)).start()
    try:
        with Rsyslog(tmp_path / "rsyslog", _relay(log, port, tls)):
            time.sleep(4)  # several connection attempts (resumeInterval 1s)
    finally:
        assert serve.stop() == 0, serve.log()
    assert _stored(tmp_path / "data") == []


def test_a_malformed_session_is_closed_with_a_log_line_and_loses_nothing_else(tmp_path: Path) -> None:
    """While rsyslog streams over RELP, another client opens a session, sends two good messages
    and then garbage: serve says why it closes that session; every line of both is stored."""
    import socket

    from stackwatch.sources.relp_frames import encode

    port = free_port()
    log = tmp_path / "app.log"
    log.touch()
    config = serve_config(tmp_path, f"  - {{type: relp, name: relp, listen: '127.0.0.1:{port}'}}\n")
    serve = ServeProcess(config).start()
    try:
        with Rsyslog(tmp_path / "rsyslog", _relay(log, port)):
            with log.open("a") as handle:
                handle.write("".join(f"record {i}\n" for i in range(300)))
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                offers = b"relp_version=0\nrelp_software=test\ncommands=syslog"
                good = [b"<14>1 2026-12-06T10:00:00.00000%dZ node9 app - - record %d" % (i, 1000 + i)
                        for i in range(2)]
                raw.sendall(encode(1, "open", offers) + encode(2, "syslog", good[0])
                            + encode(3, "syslog", good[1]) + b"4 syslog 5 abc\x00\x01\x02garbage\n")
                raw.settimeout(10)
                received = b""
                while chunk := raw.recv(65536):  # until serve closes the session
                    received += chunk
            assert b"0 serverclose 0\n" in received
            wait_for(lambda: len(_stored(tmp_path / "data")) >= 302, 60, 0.2)
    finally:
        assert serve.stop() == 0, serve.log()
    reason = "syslog frame 4: no LF after its 5 data bytes"
    assert f"relp relp: closing the session from 127.0.0.1: {reason}" in serve.log()
    numbers = sorted(int(e.message.rsplit(" ", 1)[1]) for e in _stored(tmp_path / "data"))
    assert numbers == [*range(300), 1000, 1001]
