"""Syslog over TCP and TLS: RFC 6587 framing, mutual TLS, backpressure, truncation."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from stackwatch.config import parse_config
from stackwatch.sources.base import SourceContext
from stackwatch.sources.syslog_tcp import StreamFramer, TcpSyslogSource
from tests.servetools import make_certs, run

MSG = b"<38>1 2026-11-27T10:00:00Z node1 sshd 42 - - Failed password for root from 203.0.113.9 port 22 ssh2"


@pytest.mark.parametrize(
    ("chunks", "frames"),
    [
        ([b"<13>a\n<13>b\n"], [b"<13>a", b"<13>b"]),
        ([b"<13>a\r\n"], [b"<13>a"]),
        ([b"6 <13>ab5 <13>c"], [b"<13>ab", b"<13>c"]),
        ([b"6 <13>", b"ab\n<13>x\n"], [b"<13>ab", b"<13>x"]),  # octet frame split, then LF frame
        ([b"1", b"1 <13>a\nb c d"], [b"<13>a\nb c d"]),  # the length itself split; LF inside a counted frame
        ([b"<13>no newline yet"], []),
        ([b"\n\n<13>a\n"], [b"<13>a"]),  # empty frames are not records
    ],
)
def test_framing(chunks: list[bytes], frames: list[bytes]) -> None:
    framer = StreamFramer(1024)
    out = [frame for chunk in chunks for frame, _ in framer.feed(chunk)]
    assert out == frames


def test_oversize_octet_frame_is_cut_and_the_stream_resyncs() -> None:
    framer = StreamFramer(64)
    body = b"<13>" + b"x" * 200
    out = framer.feed(b"%d %s" % (len(body), body[:100])) + framer.feed(body[100:] + b"5 <13>y")
    assert out == [(body[:64], 204), (b"<13>y", 0)]


def test_oversize_lf_frame_is_cut_and_the_rest_of_the_line_skipped() -> None:
    framer = StreamFramer(64)
    out = framer.feed(b"<13>" + b"z" * 100) + framer.feed(b"z" * 100 + b"\n<13>next\n")
    assert [frame for frame, _ in out] == [b"<13>" + b"z" * 60, b"<13>next"]
    assert out[0][1] >= 64


def test_unterminated_last_frame_is_kept_on_close() -> None:
    framer = StreamFramer(1024)
    assert framer.feed(b"<13>tail") == []
    assert framer.close() == [(b"<13>tail", 0)]


def _source(tmp_path: Path, yaml: str) -> TcpSyslogSource:
    settings = parse_config(yaml, "serve.yaml").sources[0]
    context = SourceContext(queue_size=100_000, wake=asyncio.Event(), state_dir=str(tmp_path), hostname="t")
    return TcpSyslogSource(settings, context)


def _client_context(certs: dict[str, Path], who: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs["ca"]))
    if who is not None:
        context.load_cert_chain(str(certs[f"{who}_cert"]), str(certs[f"{who}_key"]))
    return context


def _tls_yaml(certs: dict[str, Path]) -> str:
    return (
        "sources:\n  - type: syslog_tcp\n    listen: 127.0.0.1:0\n    tls:\n"
        f"      cert: {certs['server_cert']}\n      key: {certs['server_key']}\n"
        f"      client_ca: {certs['ca']}\n      require_client_cert: true\n"
    )


def test_mutual_tls_accepts_our_nodes_and_parses(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "tls")

    async def scenario() -> list:
        source = _source(tmp_path, _tls_yaml(certs))
        await source.start()
        host, port = source.address
        _, writer = await asyncio.open_connection(
            host, port, ssl=_client_context(certs, "client"), server_hostname="localhost"
        )
        writer.write(b"%d %s" % (len(MSG), MSG) * 3)
        await writer.drain()
        for _ in range(200):
            if len(source.queue) == 3:
                break
            await asyncio.sleep(0.01)
        writer.close()
        records = source.queue.take(10)
        await source.stop()
        return source.decode(records)

    events = run(scenario())
    assert len(events) == 3
    assert events[0].action == "authenticate" and events[0].initiator.source_ip == "203.0.113.9"
    assert events[0].host == "node1" and events[0].origin == "syslog:tls/syslog_tcp"
    assert events[0].raw == MSG.decode()


@pytest.mark.parametrize("who", ["stranger", None])
def test_mutual_tls_refuses_strangers_and_anonymous_clients(tmp_path: Path, who: str | None) -> None:
    certs = make_certs(tmp_path / "tls")

    async def scenario() -> int:
        source = _source(tmp_path, _tls_yaml(certs))
        await source.start()
        host, port = source.address
        try:
            _, writer = await asyncio.open_connection(
                host, port, ssl=_client_context(certs, who), server_hostname="localhost"
            )
            writer.write(MSG + b"\n")
            await writer.drain()
            await asyncio.sleep(0.3)
            writer.close()
        except (ssl.SSLError, ConnectionError, OSError):
            pass
        received = len(source.queue)
        await source.stop()
        return received

    assert run(scenario()) == 0


def test_full_queue_pauses_the_reader_without_losing_anything(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int, int]:
        source = _source(
            tmp_path, "sources:\n  - {type: syslog_tcp, listen: '127.0.0.1:0', queue_size: 50}\n"
        )
        await source.start()
        host, port = source.address
        _, writer = await asyncio.open_connection(host, port)
        total = 200_000
        payload = b"".join(b"<13>1 2026-11-27T10:00:00Z h app - - message %d\n" % i for i in range(total))
        writer.write(payload)
        sender = asyncio.create_task(writer.drain())
        await asyncio.sleep(0.5)
        depth_while_blocked = len(source.queue)
        blocked = not sender.done()  # the kernel buffers filled: the sender is held back
        taken = 0
        for _ in range(100_000):
            taken += len(source.queue.take(5000))
            if taken >= total:
                break
            await asyncio.sleep(0)
        await sender
        writer.close()
        await source.stop()
        return depth_while_blocked, int(blocked), taken

    depth, blocked, taken = run(scenario(), timeout=60)
    assert depth == 50 and blocked == 1
    assert taken == 200_000


def test_oversize_message_is_truncated_and_flagged(tmp_path: Path) -> None:
    async def scenario() -> list:
        source = _source(
            tmp_path, "sources:\n  - {type: syslog_tcp, listen: '127.0.0.1:0', max_message_bytes: 128}\n"
        )
        await source.start()
        _, writer = await asyncio.open_connection(*source.address)
        writer.write(
            b"<13>1 2026-11-27T10:00:00Z h app - - "
            + b"A" * 1000
            + b"\n<13>1 2026-11-27T10:00:01Z h app - - ok\n"
        )
        await writer.drain()
        for _ in range(200):
            if len(source.queue) == 2:
                break
            await asyncio.sleep(0.01)
        writer.close()
        events = source.decode(source.queue.take(10))
        await source.stop()
        return events

    big, small = run(scenario())
    assert big.attrs["truncated"] is True and big.attrs["original_bytes"] > 128 and len(big.raw) == 128
    assert "truncated" not in small.attrs and small.message == "ok"
