"""Syslog over TCP (RFC 6587) and over TLS (RFC 5425), with optional mutual TLS.

Framing is detected per frame, as rsyslog does: a frame starting with a digit is
octet-counted (``LEN SP MSG``, the only framing RFC 5425 allows), anything else ends at LF
(what rsyslog's omfwd sends by default). A frame longer than ``max_message_bytes`` is
truncated (the rest skipped) and flagged ``attrs.truncated``.

Backpressure: a connection's reader awaits room in the source queue before reading on, so
a flood fills the kernel's socket buffers and the sender slows down; nothing is dropped.
With ``tls.client_ca`` and ``require_client_cert: true`` only holders of a certificate
signed by that CA (our nodes) can connect.
"""


from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from dataclasses import dataclass

from stackwatch.config.schema import Address, Seconds, setting
from stackwatch.config.secrets import Secret
from stackwatch.sources.base import MessageDecoder, MessageSource, Record, SourceContext, SourceSettings

READ_SIZE = 256 * 1024
_MAX_LEN_DIGITS = 10


@dataclass(frozen=True, kw_only=True)
class TlsSettings:
    cert: str = setting(help="PEM certificate (chain) of this listener")
    key: str = setting(help="PEM private key of the certificate")
    key_password: Secret | None = setting(None, "password of an encrypted key, by reference")
    client_ca: str | None = setting(None, "CA bundle that client certificates must chain to")
    require_client_cert: bool = setting(False, "refuse clients without a valid certificate (mutual TLS)")

    def validate(self) -> None:
        if self.require_client_cert and not self.client_ca:
            raise ValueError("require_client_cert needs client_ca")


@dataclass(frozen=True, kw_only=True)
class TcpSettings(SourceSettings):
    listen: Address = setting(Address("0.0.0.0", 514), "address to bind (host:port); 6514 for TLS")  # noqa: S104
    tls: TlsSettings | None = setting(None, "serve TLS (RFC 5425) with these certificates")
    max_connections: int = setting(1024, "connections accepted at once; more are closed at once")
    idle_timeout: Seconds = setting(Seconds(0), "close a connection silent this long (0: never)")


def server_context(tls: TlsSettings) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    password = tls.key_password.value if tls.key_password is not None else None
    context.load_cert_chain(tls.cert, tls.key, password=password)
    if tls.client_ca:
        context.load_verify_locations(cafile=tls.client_ca)
        context.verify_mode = ssl.CERT_REQUIRED if tls.require_client_cert else ssl.CERT_OPTIONAL
    return context


class StreamFramer:
    """Splits a byte stream into syslog frames (octet-counting or LF), bounded in size."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.buffer = bytearray()
        self.skip = 0  # bytes of an oversize octet-counted frame still to discard
        self.discarding = False  # inside an oversize LF frame: discard up to the next LF

    def feed(self, data: bytes) -> list[tuple[bytes, int]]:
        """Frames completed by ``data``: (message bytes, original size if truncated else 0)."""
        buf = self.buffer
        buf += data
        out: list[tuple[bytes, int]] = []
        pos, end, limit = 0, len(buf), self.max_bytes
        while pos < end:
            if self.skip:
                step = min(self.skip, end - pos)
                self.skip -= step
                pos += step
                continue
            if self.discarding:
                newline = buf.find(b"\n", pos)
                if newline < 0:
                    pos = end
                    break
                pos, self.discarding = newline + 1, False
                continue
            first = buf[pos]
            if 48 <= first <= 57:  # a digit: octet counting, if a length and a space follow
                space = buf.find(b" ", pos, min(end, pos + _MAX_LEN_DIGITS + 1))
                if space > pos and buf[pos:space].isdigit():
                    length = int(buf[pos:space])
                    start = space + 1
                    if length <= limit:
                        if end - start < length:
                            break  # wait for the rest of the frame
                        out.append((bytes(buf[start : start + length]), 0))
                        pos = start + length
                    else:
                        if end - start < limit:
                            break
                        out.append((bytes(buf[start : start + limit]), length))
                        self.skip = length - limit
                        pos = start + limit
                    continue
                if space < 0 and end - pos <= _MAX_LEN_DIGITS and buf[pos:end].isdigit():
                    break  # maybe a length still arriving
            newline = buf.find(b"\n", pos, pos + limit + 1)
            if newline >= 0:
                frame = buf[pos:newline]
                if frame.endswith(b"\r"):
                    frame = frame[:-1]
                if frame:
                    out.append((bytes(frame), 0))
                pos = newline + 1
            elif end - pos > limit:
                newline = buf.find(b"\n", pos + limit)
                out.append((bytes(buf[pos : pos + limit]), (newline if newline >= 0 else end) - pos))
                self.discarding = True
                pos += limit
            else:
                break
        del buf[:pos]
        return out

    def close(self) -> list[tuple[bytes, int]]:
        """The unterminated last frame when the peer closes (LF framing allows it)."""
        rest = bytes(self.buffer).rstrip(b"\r\n")
        self.buffer.clear()
        return [(rest, 0)] if rest and not self.discarding and not self.skip else []


class TcpSyslogSource(MessageSource):
    Settings = TcpSettings

    def __init__(self, settings: TcpSettings, context: SourceContext) -> None:
        super().__init__(settings, context)
        transport = "tls" if settings.tls is not None else "tcp"
        self.decoder = MessageDecoder(f"syslog:{transport}/{self.name}", settings.host, settings.service)
        self.server: asyncio.Server | None = None
        self.address: tuple[str, int] | None = None
        self.ssl = server_context(settings.tls) if settings.tls is not None else None
        self._tasks: set[asyncio.Task[None]] = set()
        self.tls_failures = 0

    async def start(self) -> None:
        listen = self.settings.listen
        self.server = await asyncio.start_server(
            self._serve, listen.host, listen.port, ssl=self.ssl, limit=READ_SIZE, backlog=512
        )
        self.address = self.server.sockets[0].getsockname()[:2]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        counters = self.counters
        if counters.connections >= self.settings.max_connections or task is None:
            writer.close()
            return
        self._tasks.add(task)  # type: ignore[arg-type]
        counters.connections += 1
        peer_info = writer.get_extra_info("peername")
        peer = str(peer_info[0]) if peer_info else ""
        framer = StreamFramer(self.max_bytes)
        timeout = float(self.settings.idle_timeout) or None
        try:
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(READ_SIZE), timeout)
                except TimeoutError:
                    break
                frames = framer.feed(data) if data else framer.close()
                if frames:
                    await self._queue(frames, peer, len(data))
                if not data:
                    break
        except (ConnectionError, ssl.SSLError, OSError):
            counters.errors += 1
        except asyncio.CancelledError:
            pass  # shutdown: end this connection quietly
        finally:
            counters.connections -= 1
            self._tasks.discard(task)  # type: ignore[arg-type]
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _queue(self, frames: list[tuple[bytes, int]], peer: str, size: int) -> None:
        await self.bucket.wait(len(frames))
        now = time.time()
        records = []
        max_bytes = self.max_bytes
        for data, original in frames:
            if original:
                self.counters.truncated += 1
                text = data[:max_bytes].decode("utf-8", "surrogateescape")
            else:
                text = data.decode("utf-8", "surrogateescape")
            records.append(Record(text, now, peer, None, original))
        await self.queue.put_many(records)
        self.counters.received += len(records)
        self.counters.bytes += size
