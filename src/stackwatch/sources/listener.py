"""What the stream sources (syslog over TCP/TLS, RELP) share around their connections: the TLS
settings, a listener whose connections are tasks (counted, limited to ``max_connections``,
silent ones closed after ``idle_timeout``, every one ended at ``stop``), and the error
handling of a connection. Each source reads its own framing in ``_connection``."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from stackwatch.config.schema import setting
from stackwatch.config.secrets import Secret
from stackwatch.sources.base import Source, SourceContext

READ_SIZE: Final = 256 * 1024


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


def server_context(tls: TlsSettings) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    password = tls.key_password.value if tls.key_password is not None else None
    context.load_cert_chain(tls.cert, tls.key, password=password)
    if tls.client_ca:
        context.load_verify_locations(cafile=tls.client_ca)
        context.verify_mode = ssl.CERT_REQUIRED if tls.require_client_cert else ssl.CERT_OPTIONAL
    return context


@dataclass(eq=False)
class Connection:
    """One accepted connection, as the source's ``_connection`` reads it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    peer: str  # the sender's address
    timeout: float | None  # idle_timeout (None: never)
    keep_open: Callable[[], bool] = lambda: False
    """Asked when ``_connection`` ends (however it ends): True when the source closes the writer
    itself later (a RELP session waiting for its acknowledgements)."""

    async def read(self) -> bytes | None:
        """The next bytes (b"": the peer closed), or None after ``timeout`` seconds of silence."""
        try:
            return await asyncio.wait_for(self.reader.read(READ_SIZE), self.timeout)
        except TimeoutError:
            return None


class ListeningSource(Source):
    """A source listening on ``settings.listen`` (TLS with ``settings.tls``); every connection
    runs ``_connection`` in a task of its own. Connection and TLS errors are counted
    (``counters.errors``) and end that connection only."""

    def __init__(self, settings: Any, context: SourceContext) -> None:
        super().__init__(settings, context)
        self.server: asyncio.Server | None = None
        self.address: tuple[str, int] | None = None
        self.ssl = server_context(settings.tls) if settings.tls is not None else None
        self._tasks: set[asyncio.Task[None]] = set()

    @abstractmethod
    async def _connection(self, connection: Connection) -> None:
        """Read ``connection`` until it ends (its errors are counted by the caller)."""

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
        connection = Connection(reader, writer, str(peer_info[0]) if peer_info else "",
                                float(self.settings.idle_timeout) or None)
        try:
            await self._connection(connection)
        except (ConnectionError, ssl.SSLError, OSError):
            counters.errors += 1
        except asyncio.CancelledError:
            pass  # shutdown: end this connection quietly
        finally:
            counters.connections -= 1
            self._tasks.discard(task)  # type: ignore[arg-type]
            if not connection.keep_open():
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
