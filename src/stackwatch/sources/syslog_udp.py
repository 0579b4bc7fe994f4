"""Syslog over UDP (RFC 5426 / the BSD syslog of RFC 3164): one datagram, one message.

UDP has no backpressure: when the queue is full or the source is over its rate limit a
datagram is dropped, and counted (``dropped_queue_full`` / ``dropped_rate``); before that,
the kernel drops datagrams that arrive while the socket's receive buffer is full, and counts
them per socket: ``dropped_kernel`` is read from ``/proc/net/udp`` (the ``drops`` column of
this socket's inode). The runner raises an alert when any of them grows. A large
``SO_RCVBUF`` absorbs bursts (the kernel caps it at ``net.core.rmem_max``: raise that sysctl
on busy collectors). Stdlib asyncio reads one
datagram per loop turn; ``serve`` runs on uvloop when it is installed (4x the intake).
"""


from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from stackwatch.config.schema import Address, ByteSize, setting
from stackwatch.sources.base import MessageDecoder, MessageSource, Record, SourceContext, SourceSettings


@dataclass(frozen=True, kw_only=True)
class UdpSettings(SourceSettings):
    listen: Address = setting(Address("0.0.0.0", 514), "address to bind (host:port)")  # noqa: S104
    receive_buffer: ByteSize = setting(ByteSize(8 * 1024 * 1024), "SO_RCVBUF requested for the socket")


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, source: UdpSyslogSource) -> None:
        self.source = source

    def datagram_received(self, data: bytes, addr: Any) -> None:
        source = self.source
        counters = source.counters
        if not source.bucket.take():
            counters.dropped_rate += 1
            return
        text, original = source.truncate(data)
        if source.queue.offer(Record(text, time.time(), addr[0], None, original)):
            counters.received += 1
            counters.bytes += len(data)
        else:
            counters.dropped_queue_full += 1

    def error_received(self, exc: Exception) -> None:
        self.source.counters.errors += 1


class UdpSyslogSource(MessageSource):
    Settings = UdpSettings

    def __init__(self, settings: UdpSettings, context: SourceContext) -> None:
        super().__init__(settings, context)
        self.decoder = MessageDecoder(f"syslog:udp/{self.name}", settings.host, settings.service)
        self.transport: asyncio.DatagramTransport | None = None
        self.address: tuple[str, int] | None = None
        self._socket_table = ""  # /proc/net/udp or udp6
        self._inode = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        listen = self.settings.listen
        family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(self.settings.receive_buffer))
            sock.bind((listen.host, listen.port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
        self.transport = transport
        self.address = sock.getsockname()[:2]
        self._socket_table = "/proc/net/udp6" if family == socket.AF_INET6 else "/proc/net/udp"
        self._inode = os.fstat(sock.fileno()).st_ino

    def refresh_counters(self) -> None:
        if self._inode:
            drops = socket_drops(self._socket_table, self._inode)
            if drops is not None:
                self.counters.dropped_kernel = drops

    async def stop(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None



def socket_drops(table: str, inode: int) -> int | None:
    """The kernel's count of datagrams dropped on the socket ``inode`` (its receive buffer was
    full), from ``table`` (``/proc/net/udp``/``udp6``: the last column); None if not listed."""
    wanted = str(inode)
    with contextlib.suppress(OSError), open(table, encoding="ascii") as lines:
        next(lines, None)  # the header
        for line in lines:
            fields = line.split()
            if len(fields) >= 13 and fields[9] == wanted:
                return int(fields[-1])
    return None
