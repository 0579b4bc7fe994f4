"""HEAD on the monitor listener: GET's status and headers, no body."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from stackwatch.config.schema import Address
from stackwatch.pipeline.monitor_http import MonitorHTTP


async def _request(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


def _split(response: bytes) -> tuple[dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    headers["status"] = lines[0]
    return headers, body


def test_head_sends_no_body(monkeypatch: pytest.MonkeyPatch) -> None:
    # /healthz's uptime is round(now - started, 3): across the GET and the HEAD a trailing zero
    # can come or go (12.34 vs 12.345), so its length differs by a byte; hold the clock still
    clock = SimpleNamespace(time=lambda: 1_765_000_000.5)
    monkeypatch.setattr("stackwatch.pipeline.monitor_http.time", clock)
    runner = SimpleNamespace(selfmon=SimpleNamespace(healthy=lambda: True), queue_depth=lambda: 0,
                             last_commit=0.0, started=0.0)

    async def main() -> None:
        http = MonitorHTTP(runner, Address(host="127.0.0.1", port=0), "secret")  # type: ignore[arg-type]
        await http.start()
        assert http.address is not None
        port = http.address[1]
        try:
            for target, auth in (("/healthz", ""), ("/metrics", "Authorization: Bearer wrong\r\n"),
                                 ("/nothing", "")):
                get = _split(await _request(port, f"GET {target} HTTP/1.0\r\n{auth}\r\n".encode()))
                head = _split(await _request(port, f"HEAD {target} HTTP/1.0\r\n{auth}\r\n".encode()))
                assert get[1], target
                assert head[1] == b"", target
                assert head[0]["status"] == get[0]["status"]
                assert head[0]["content-length"] == str(len(get[1]))
        finally:
            await http.stop()

    asyncio.run(main())
