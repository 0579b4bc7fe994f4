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

import time
from dataclasses import dataclass

from stackwatch.config.schema import Address, Seconds, setting
from stackwatch.sources.base import MessageDecoder, MessageSource, Record, SourceContext, SourceSettings
from stackwatch.sources.listener import Connection, ListeningSource, TlsSettings

_MAX_LEN_DIGITS = 10


@dataclass(frozen=True, kw_only=True)
class TcpSettings(SourceSettings):
    listen: Address = setting(Address("0.0.0.0", 514), "address to bind (host:port); 6514 for TLS")  # noqa: S104
    tls: TlsSettings | None = setting(None, "serve TLS (RFC 5425) with these certificates")
    max_connections: int = setting(1024, "connections accepted at once; more are closed at once")
    idle_timeout: Seconds = setting(Seconds(0), "close a connection silent this long (0: never)")


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


class TcpSyslogSource(MessageSource, ListeningSource):
    Settings = TcpSettings

    def __init__(self, settings: TcpSettings, context: SourceContext) -> None:
        super().__init__(settings, context)
        transport = "tls" if settings.tls is not None else "tcp"
        self.decoder = MessageDecoder(f"syslog:{transport}/{self.name}", settings.host, settings.service)

    async def _connection(self, connection: Connection) -> None:
        framer = StreamFramer(self.max_bytes)
        while True:
            data = await connection.read()
            if data is None:  # silent for idle_timeout
                break
            frames = framer.feed(data) if data else framer.close()
            if frames:
                await self._queue(frames, connection.peer, len(data))
            if not data:
                break

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
