"""Syslog over UDP with the real `logger`: parsing, drops counted (queue full, over rate), truncation."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path

from stackwatch.config import parse_config
from stackwatch.sources.base import SourceContext
from stackwatch.sources.syslog_udp import UdpSyslogSource
from tests.servetools import run


def _source(tmp_path: Path, extra: str = "") -> UdpSyslogSource:
    settings = parse_config(f"sources:\n  - {{type: syslog_udp, listen: '127.0.0.1:0'{extra}}}\n").sources[0]
    context = SourceContext(queue_size=1000, wake=asyncio.Event(), state_dir=str(tmp_path), hostname="t")
    return UdpSyslogSource(settings, context)


async def _logger(port: int, *args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "logger", "--server", "127.0.0.1", "--port", str(port), "--udp", *args
    )
    assert await proc.wait() == 0


async def _settle(source: UdpSyslogSource, count: int) -> None:
    for _ in range(300):
        if source.counters.received + source.counters.dropped >= count:
            return
        await asyncio.sleep(0.01)


def test_logger_rfc5424_over_udp_is_parsed(tmp_path: Path) -> None:
    async def scenario() -> list:
        source = _source(tmp_path)
        await source.start()
        await _logger(
            source.address[1],
            "--rfc5424",
            "-t",
            "sshd",
            "-p",
            "auth.info",
            "Failed password for invalid user admin from 198.51.100.4 port 5555 ssh2",
        )
        await _logger(source.address[1], "-t", "sudo", "-p", "authpriv.notice", "plain rfc3164 message")
        await _settle(source, 2)
        events = source.decode(source.queue.take(10))
        await source.stop()
        return events

    first, second = run(scenario())
    assert first.service == "sshd" and first.action == "authenticate" and first.outcome == "failure"
    assert first.initiator.source_ip == "198.51.100.4" and first.initiator.name == "admin"
    assert second.service == "sudo" and second.message == "plain rfc3164 message"
    assert first.origin == "syslog:udp/syslog_udp"


def test_full_queue_drops_and_counts(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int]:
        source = _source(tmp_path, ", queue_size: 5")
        await source.start()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for i in range(40):
                sock.sendto(b"<13>datagram %d" % i, ("127.0.0.1", source.address[1]))
        await _settle(source, 40)
        await source.stop()
        return source.counters.received, source.counters.dropped_queue_full

    received, dropped = run(scenario())
    assert received == 5 and dropped == 35


def test_over_rate_datagrams_are_dropped_and_counted(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int]:
        source = _source(tmp_path, ", rate_limit: 10, burst: 10")
        await source.start()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for i in range(50):
                sock.sendto(b"<13>datagram %d" % i, ("127.0.0.1", source.address[1]))
        await _settle(source, 50)
        await source.stop()
        return source.counters.received, source.counters.dropped_rate

    received, dropped = run(scenario())
    assert 10 <= received <= 12 and received + dropped == 50


def test_datagrams_the_kernel_drops_on_a_full_receive_buffer_are_counted(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int]:
        source = _source(tmp_path, ", receive_buffer: 4k")
        await source.start()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for i in range(2000):  # the event loop does not run meanwhile: the socket's buffer fills
                sock.sendto(b"<13>datagram %d" % i, ("127.0.0.1", source.address[1]))
        source.refresh_counters()
        await _settle(source, 2000)
        source.refresh_counters()
        await source.stop()
        return source.counters.received, source.counters.dropped_kernel

    received, dropped = run(scenario())
    assert dropped > 1000 and received + dropped == 2000


def test_oversize_datagram_is_truncated_and_flagged(tmp_path: Path) -> None:
    async def scenario() -> list:
        source = _source(tmp_path, ", max_message_bytes: 100")
        await source.start()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"<13>Nov 27 10:00:00 h app: " + b"B" * 500, ("127.0.0.1", source.address[1]))
        await _settle(source, 1)
        events = source.decode(source.queue.take(10))
        await source.stop()
        return events

    (event,) = run(scenario())
    assert event.attrs["truncated"] is True and event.attrs["original_bytes"] == 527 and len(event.raw) == 100


def test_junk_is_kept_raw_as_unparsed(tmp_path: Path) -> None:
    async def scenario() -> list:
        source = _source(tmp_path)
        await source.start()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"\xff\xfe not syslog at all", ("127.0.0.1", source.address[1]))
        await _settle(source, 1)
        events = source.decode(source.queue.take(10))
        await source.stop()
        return events

    (event,) = run(scenario())
    assert event.kind == "unparsed" and event.raw_bytes() == b"\xff\xfe not syslog at all"
    assert event.host == "127.0.0.1"


def test_logger_binary_is_there() -> None:
    # CI must install bsdutils (logger); this fails loudly rather than skipping the UDP tests.
    assert subprocess.run(["logger", "--version"], capture_output=True, check=False).returncode == 0
