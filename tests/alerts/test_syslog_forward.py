"""Forwarding to another SIEM: RFC 5424 and CEF over UDP, TCP (octet counting) and TLS,
received by real sockets; and by a real rsyslog over TCP."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from pathlib import Path

import pytest

from stackwatch.alerts.base import Notification
from stackwatch.alerts.syslog_forward import SyslogForwardSink, cef, rfc5424
from stackwatch.config import parse_config
from stackwatch.core.alert import Alert
from stackwatch.parsers.framing import parse_text
from stackwatch.sources.syslog_tcp import StreamFramer
from tests.servetools import make_certs, run

RFC5424 = re.compile(r"^<(\d+)>1 \S+ (\S+) stackwatch - ALERT \[stackwatch@32473 (.*)\] (.*)$")


def test_rfc5424_message(alert: Alert) -> None:
    line = rfc5424(Notification.of("new", alert, 9), "local4", "monitor1")
    match = RFC5424.match(line)
    assert match is not None and match.group(1) == str(20 * 8 + 3) and match.group(2) == "monitor1"
    assert 'category="auth.bruteforce"' in match.group(3) and 'id="9"' in match.group(3)
    assert match.group(4) == "12 failed ssh logins from 203.0.113.9"
    # Our own syslog parser reads it back.
    (event,) = parse_text(line + "\n")
    assert event.service == "stackwatch" and event.host == "monitor1"


def test_cef_escapes_and_maps_severity(alert: Alert) -> None:
    alert.title = "pipe | and back\\slash"
    alert.summary = "a=b\nnext"
    line = cef(Notification.of("new", alert, 3))
    assert line.startswith("CEF:0|stackwatch|stackwatch|")
    assert "|pipe \\| and back\\\\slash|8|" in line
    assert "msg=a\\=b\\nnext" in line and "src=203.0.113.9" in line and "cat=auth.bruteforce" in line
    assert "externalId=3" in line and re.search(r"rt=\d{13}", line)


async def _tcp_receiver(ssl_context: ssl.SSLContext | None = None) -> tuple[asyncio.Server, list[bytes]]:
    frames: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = StreamFramer(65536)
        while data := await reader.read(65536):
            frames.extend(frame for frame, _ in framer.feed(data))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ssl_context)
    return server, frames


@pytest.mark.parametrize("fmt", ["rfc5424", "cef"])
def test_tcp_octet_counted(alert: Alert, fmt: str) -> None:
    async def scenario() -> list[bytes]:
        server, frames = await _tcp_receiver()
        port = server.sockets[0].getsockname()[1]
        sink = SyslogForwardSink(
            parse_config(
                f"sinks:\n  - {{type: syslog, address: '127.0.0.1:{port}', transport: tcp, format: {fmt}}}\n"
            ).sinks[0]
        )
        await sink.send(Notification.of("new", alert, 1))
        await sink.send(Notification.of("resolved", alert, 1))
        for _ in range(100):
            if len(frames) == 2:
                break
            await asyncio.sleep(0.01)
        await sink.close()
        server.close()
        return frames

    frames = run(scenario())
    assert len(frames) == 2
    text = frames[1].decode()
    assert (
        ("CEF:0|stackwatch" in text and "act=resolved" in text)
        if fmt == "cef"
        else 'change="resolved"' in text
    )


def test_tls_to_a_siem_that_checks_us(alert: Alert, tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "tls")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs["ca"]))
    server_context.load_cert_chain(str(certs["server_cert"]), str(certs["server_key"]))
    server_context.verify_mode = ssl.CERT_REQUIRED

    async def scenario() -> list[bytes]:
        server, frames = await _tcp_receiver(server_context)
        port = server.sockets[0].getsockname()[1]
        sink = SyslogForwardSink(
            parse_config(
                f"sinks:\n  - {{type: syslog, address: '127.0.0.1:{port}', transport: tls, format: cef,"
                f" ca_file: '{certs['ca']}', cert: '{certs['client_cert']}', key: '{certs['client_key']}'}}\n"
            ).sinks[0]
        )
        await sink.send(Notification.of("new", alert, 1))
        for _ in range(200):
            if frames:
                break
            await asyncio.sleep(0.01)
        await sink.close()
        server.close()
        return frames

    (frame,) = run(scenario())
    assert b"CEF:0|stackwatch|stackwatch|" in frame


def test_udp(alert: Alert) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        port = receiver.getsockname()[1]
        sink = SyslogForwardSink(
            parse_config(
                f"sinks:\n  - {{type: syslog, address: '127.0.0.1:{port}', transport: udp}}\n"
            ).sinks[0]
        )

        async def send() -> None:
            await sink.send(Notification.of("new", alert, 1))
            await sink.close()

        run(send())
        data = receiver.recv(65536)
    assert RFC5424.match(data.decode())
