"""Forwarding alerts to another SIEM as syslog: RFC 5424 with structured data, or CEF
(ArcSight Common Event Format) inside an RFC 5424 message; over UDP, TCP (RFC 6587
octet counting, or LF) or TLS (RFC 5425)."""


from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stackwatch import __version__
from stackwatch.alerts.base import Notification, Sink, SinkSettings
from stackwatch.config.schema import Address, setting

# Alert severity -> syslog severity (RFC 5424 numbers) and CEF severity (0-10).
SYSLOG_SEVERITY = {"low": 5, "medium": 4, "high": 3, "critical": 2}
CEF_SEVERITY = {"low": 3, "medium": 5, "high": 8, "critical": 10}
FACILITIES = {
    "user": 1,
    "daemon": 3,
    "auth": 4,
    "authpriv": 10,
    "local0": 16,
    "local1": 17,
    "local2": 18,
    "local3": 19,
    "local4": 20,
    "local5": 21,
    "local6": 22,
    "local7": 23,
}
SD_ID = "stackwatch@32473"  # 32473 is IANA's example enterprise number (RFC 5612)


@dataclass(frozen=True, kw_only=True)
class SyslogForwardSettings(SinkSettings):
    address: Address = setting(help="the receiving SIEM (host:port)")
    transport: str = setting("tcp", "udp, tcp or tls")
    format: str = setting("rfc5424", "rfc5424 or cef")
    framing: str = setting("octet", "TCP framing: octet (RFC 6587 octet counting, required for TLS) or lf")
    facility: str = setting("local4", "syslog facility")
    ca_file: str | None = setting(None, "CA bundle to verify the receiver (TLS)")
    cert: str | None = setting(None, "client certificate, when the receiver wants one (TLS)")
    key: str | None = setting(None, "client certificate key (TLS)")
    hostname: str = setting("", "HOSTNAME field (default: this host)")

    def validate(self) -> None:
        super().validate()
        if self.transport not in ("udp", "tcp", "tls"):
            raise ValueError("transport must be udp, tcp or tls")
        if self.format not in ("rfc5424", "cef"):
            raise ValueError("format must be rfc5424 or cef")
        if self.framing not in ("octet", "lf") or (self.transport == "tls" and self.framing != "octet"):
            raise ValueError("framing must be octet or lf (TLS always uses octet counting)")
        if self.facility not in FACILITIES:
            raise ValueError(f"facility must be one of {', '.join(FACILITIES)}")


def _sd_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _cef_header(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _cef_value(value: object) -> str:
    text = str(value)
    return text.replace("\\", "\\\\").replace("=", "\\=").replace("\r", "\\r").replace("\n", "\\n")


def rfc5424(note: Notification, facility: str = "local4", hostname: str = "", msg: str | None = None) -> str:
    """One RFC 5424 message for ``note`` (MSGID ALERT, SD-ELEMENT stackwatch@32473)."""
    alert, fields = note.alert, note.fields()
    pri = FACILITIES[facility] * 8 + SYSLOG_SEVERITY.get(note.severity, 4)
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    host = (hostname or socket.gethostname())[:255] or "-"
    params = {
        "id": note.alert_id,
        "change": note.change,
        "rule": alert.rule,
        "category": note.category,
        "severity": note.severity,
        "status": fields.get("status"),  # as in the JSON: "open" and a count of 1 go unsaid
        "key": alert.key,
        "host": alert.host,
        "source_ip": alert.source_ip,
        "user": alert.user,
        "count": fields.get("count"),
    }
    sd = "".join(
        f' {name}="{_sd_escape(str(value))}"' for name, value in params.items() if value not in (None, "")
    )
    text = msg if msg is not None else alert.summary or note.title
    return f"<{pri}>1 {stamp} {host} stackwatch - ALERT [{SD_ID}{sd}] {text}"


def cef(note: Notification) -> str:
    """The CEF line for ``note``."""
    alert, fields = note.alert, note.fields()
    head = "|".join(
        _cef_header(part)
        for part in (
            "CEF:0",
            "stackwatch",
            "stackwatch",
            __version__,
            alert.rule,
            note.title,
            str(CEF_SEVERITY.get(note.severity, 5)),
        )
    )
    ext: dict[str, Any] = {
        "cat": note.category,
        "msg": alert.summary,
        "act": note.change,
        "src": alert.source_ip,
        "suser": alert.user,
        "dhost": alert.host,
        "cnt": fields.get("count"),  # as in the JSON: a count of 1 and status "open" go unsaid
        "externalId": note.alert_id,
        "cs1Label": "key",
        "cs1": alert.key,
        "cs2Label": "status",
        "cs2": fields.get("status"),
        "rt": int(alert.last_seen.timestamp() * 1000),
    }
    return (
        head
        + "|"
        + " ".join(f"{key}={_cef_value(value)}" for key, value in ext.items() if value not in (None, ""))
    )


class SyslogForwardSink(Sink):
    Settings = SyslogForwardSettings

    def __init__(self, settings: SyslogForwardSettings) -> None:
        super().__init__(settings)
        self._writer: asyncio.StreamWriter | None = None
        self._udp: asyncio.DatagramTransport | None = None

    def render(self, note: Notification) -> bytes:
        settings = self.settings
        body = cef(note) if settings.format == "cef" else None
        return rfc5424(note, settings.facility, settings.hostname, body).encode("utf-8")

    async def send(self, note: Notification) -> None:
        data = self.render(note)
        settings = self.settings
        if settings.transport == "udp":
            if self._udp is None:
                loop = asyncio.get_running_loop()
                self._udp, _ = await loop.create_datagram_endpoint(
                    asyncio.DatagramProtocol, remote_addr=(settings.address.host, settings.address.port)
                )
            self._udp.sendto(data)
            return
        frame = b"%d %s" % (len(data), data) if settings.framing == "octet" else data + b"\n"
        if self._writer is None or self._writer.is_closing():
            await self._connect()
        assert self._writer is not None
        try:
            self._writer.write(frame)
            await self._writer.drain()
        except (ConnectionError, OSError):
            await self.close()
            raise

    async def _connect(self) -> None:
        settings = self.settings
        context = None
        if settings.transport == "tls":
            context = ssl.create_default_context(cafile=settings.ca_file)
            if settings.cert:
                context.load_cert_chain(settings.cert, settings.key)
        _, self._writer = await asyncio.open_connection(
            settings.address.host, settings.address.port, ssl=context
        )

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
            self._writer = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None
