"""RELP, the Reliable Event Logging Protocol of rsyslog (``omrelp`` sends it), over TCP or TLS.

A session is what librelp's server does: the client's ``open`` (its offers: ``relp_version``,
``commands=syslog``) is answered ``200 OK`` with ours; each ``syslog`` frame carries one
message; ``close`` is answered and the connection ends. Transaction numbers must follow each
other (1, 2, ... 999999999, 1): a gap means the client and we disagree about what was sent.

The point of RELP is the acknowledgement, and here it means *stored*: a ``syslog`` frame's
``rsp 200 OK`` is sent only after the runner has committed its event to the store (through
``checkpoint``/``commit``, as the AMQP source acknowledges). A sender that loses its session
(we were killed, the network broke) sends every unacknowledged message again in its next
session; those committed before the crash but not acknowledged are recognised by their
ref, ``relp:<sha256 of the message>`` (seeded from the newest stored events at start), and
counted as duplicates, not stored twice. The price: two byte-identical messages within that
window are stored once (rsyslog's forward formats stamp messages to the microsecond).

The sender's window (librelp: 128 unacknowledged frames) bounds what it has in flight; the
source queue's backpressure stops reading a session when the pipeline is behind.

A frame that is not RELP (garbage, a transaction number out of sequence, with
``oversize: close`` a frame over ``max_message_bytes``) closes that session with a warning in
the log naming the peer and the reason; what the session sent before is stored and
acknowledged as usual (or, if the session is gone by then, sent again and deduplicated), and
other sessions are not affected. By default an oversize message is kept truncated and flagged
(``attrs.truncated``), as imrelp's ``oversizeMode="truncate"``: closing would only make the
sender resend it forever.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Final

from stackwatch.config.schema import Address, Seconds, setting
from stackwatch.core.event import Event
from stackwatch.sources.base import MessageDecoder, RecentRefs, Record, SourceContext, SourceSettings
from stackwatch.sources.listener import Connection, ListeningSource, TlsSettings
from stackwatch.sources.relp_frames import (
    Frame,
    FrameParser,
    RelpProtocolError,
    encode,
    next_txnr,
    parse_offers,
)

log = logging.getLogger(__name__)

SEEN_LIMIT: Final = 200_000  # message digests remembered to recognise a resend
SOFTWARE: Final = b"stackwatch,1,https://github.com/stackwatch/stackwatch"
OVERSIZE: Final = ("truncate", "close")


@dataclass(frozen=True, kw_only=True)
class RelpSettings(SourceSettings):
    listen: Address = setting(Address("0.0.0.0", 2514), "address to bind (host:port)")  # noqa: S104
    tls: TlsSettings | None = setting(None, "serve RELP over TLS with these certificates (optionally mutual)")
    max_connections: int = setting(1024, "sessions accepted at once; more are closed at once")
    idle_timeout: Seconds = setting(Seconds(0), "close a session silent this long (0: never)")
    oversize: str = setting(
        "truncate", "a message over max_message_bytes: truncate (kept, flagged) or close (the session)"
    )

    def validate(self) -> None:
        super().validate()
        if self.oversize not in OVERSIZE:
            raise ValueError(f"oversize must be one of {', '.join(OVERSIZE)}")


@dataclass(eq=False)
class Session:
    """One client connection: its writer and the transactions not yet acknowledged."""

    writer: asyncio.StreamWriter
    peer: str
    unacked: int = 0  # syslog frames queued whose rsp is not sent yet
    close_txnr: int = 0  # the client's close, answered once everything before it is acknowledged
    opened: bool = False  # the client's open was answered
    open: bool = True  # False once closed (acknowledgements for it are dropped: it resends)

    def send(self, data: bytes) -> None:
        if self.open and not self.writer.is_closing():
            self.writer.write(data)

    def acknowledged(self, count: int) -> None:
        self.unacked -= count
        if self.unacked <= 0 and self.close_txnr:
            self.send(encode(self.close_txnr, "rsp"))
            self.close_txnr = 0
            self.open = False
            self.writer.close()


class RelpSource(ListeningSource):
    Settings = RelpSettings

    def __init__(self, settings: RelpSettings, context: SourceContext) -> None:
        super().__init__(settings, context)
        self.origin = f"relp:{self.name}"
        self.decoder = MessageDecoder(self.origin, settings.host, settings.service)
        self._closing: set[Session] = set()  # closed by the client, waiting for their acknowledgements
        self._pending: list[tuple[Session, int]] = []  # decoded, not yet acknowledged (in order)
        self._seen = RecentRefs(SEEN_LIMIT)
        self.protocol_errors = 0

    async def start(self) -> None:
        self._seen.seed(self.context, "relp:")
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        for session in list(self._closing):  # their last acknowledgements will not come now
            session.open = False
            session.writer.close()
        self._closing.clear()

    # ------------------------------------------------------------------ one session

    async def _connection(self, connection: Connection) -> None:
        session = Session(connection.writer, connection.peer)
        connection.keep_open = lambda: self._waits_for_acknowledgements(session)
        counters = self.counters
        parser = FrameParser(self.max_bytes, truncate=self.settings.oversize == "truncate")
        expected = 0  # the next transaction number (0: none yet, the open comes first)
        closing = False  # the client sent close: read nothing more
        try:
            while session.open and not closing:
                data = await connection.read()
                if not data:  # the client closed, or was silent for idle_timeout
                    break
                counters.bytes += len(data)
                records: list[Record] = []
                frames, error = parser.parse(data)
                try:
                    for frame in frames:
                        if expected and frame.txnr != expected:
                            raise RelpProtocolError(
                                f"transaction number {frame.txnr} where {expected} was expected"
                            )
                        expected = next_txnr(frame.txnr)
                        if not self._handle(session, frame, records):
                            closing = True
                            break
                    else:
                        if error is not None:
                            raise error
                finally:  # the good frames before a bad one are stored (and acknowledged if still open)
                    if records:
                        await self._queue(records)
        except RelpProtocolError as exc:
            self.protocol_errors += 1
            counters.errors += 1
            log.warning("relp %s: closing the session from %s: %s", self.name, session.peer, exc)
            session.send(encode(0, "serverclose"))  # librelp's hint: reconnect, resend what is unacked

    def _waits_for_acknowledgements(self, session: Session) -> bool:
        """When its connection ends: True if the client's close waits for acknowledgements
        (``commit`` ends the connection then); else the session is over and its connection closed
        now (the sender resends what is unacknowledged)."""
        if not session.close_txnr:
            session.open = False
            return False
        if session.open:
            self._closing.add(session)
        return True

    def _handle(self, session: Session, frame: Frame, records: list[Record]) -> bool:
        """Act on one frame; False once the client has closed the session."""
        command = frame.command
        if command == "syslog":
            if not session.opened:
                raise RelpProtocolError(f"syslog frame {frame.txnr} before the session was opened")
            session.unacked += 1
            if frame.original_size:
                self.counters.truncated += 1
            text = frame.data.decode("utf-8", "surrogateescape")
            meta = (session, frame.txnr)
            records.append(Record(text, time.time(), session.peer, meta, frame.original_size))
            return True
        if command == "open":
            if session.opened:
                raise RelpProtocolError("a second open in the same session")
            offers = parse_offers(frame.data)
            if "relp_version" not in offers:
                raise RelpProtocolError("open without relp_version")
            session.opened = True
            ours = b"200 OK\nrelp_version=0\nrelp_software=" + SOFTWARE
            if "syslog" in offers.get("commands", "").split(","):
                ours += b"\ncommands=syslog"
            session.send(encode(frame.txnr, "rsp", ours))
            return True
        if command == "close":
            if session.unacked > 0:
                session.close_txnr = frame.txnr  # answered after the last acknowledgement
            else:
                session.send(encode(frame.txnr, "rsp"))
                session.open = False
            return False
        raise RelpProtocolError(f"unexpected command {command!r} (frame {frame.txnr})")

    async def _queue(self, records: list[Record]) -> None:
        await self.bucket.wait(len(records))
        await self.queue.put_many(records)
        self.counters.received += len(records)

    # ------------------------------------------------------------------ the runner's side

    def decode(self, records: list[Record]) -> list[Event]:
        out: list[Event] = []
        decode = self.decoder.decode
        pending = self._pending
        for record in records:
            pending.append(record.meta)
            ref = "relp:" + hashlib.sha256(record.text.encode("utf-8", "surrogateescape")).hexdigest()[:32]
            if not self._seen.remember(ref):
                self.counters.duplicates += 1  # sent again after a lost acknowledgement: stored already
                continue
            out.extend(decode(record, ref))
        self.counters.unparsed = self.decoder.unparsed
        return out

    def taken_undecoded(self, records: list[Record]) -> None:
        """Those ``decode`` did not reach before it raised become pending too (acknowledged with
        the raw records' cut), in order: a record is never acknowledged twice nor left unacknowledged."""
        recent = self._pending[-len(records):] if records else []
        known = {id(meta) for meta in recent}
        self._pending.extend(r.meta for r in records if id(r.meta) not in known)

    def checkpoint(self) -> list[tuple[Session, int]]:
        pending, self._pending = self._pending, []
        return pending

    async def commit(self, token: Any) -> None:
        """Everything in ``token`` is stored: send each session its ``rsp 200 OK`` in order."""
        by_session: dict[Session, list[int]] = {}
        for session, txnr in token or ():
            by_session.setdefault(session, []).append(txnr)
        for session, txnrs in by_session.items():
            session.send(b"".join(encode(txnr, "rsp", b"200 OK") for txnr in txnrs))
            session.acknowledged(len(txnrs))
            if not session.open:
                self._closing.discard(session)
