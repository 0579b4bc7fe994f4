"""E-mail sink over SMTP (aiosmtplib): STARTTLS by default, implicit TLS on request, and
authentication with a password given by reference."""


from __future__ import annotations

import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from stackwatch.alerts.base import Notification, Sink, SinkSettings
from stackwatch.config.schema import setting
from stackwatch.config.secrets import Secret


@dataclass(frozen=True, kw_only=True)
class SmtpSettings(SinkSettings):
    host: str = setting(help="SMTP server")
    port: int = setting(587, "SMTP port (587 submission with STARTTLS, 465 implicit TLS)")
    starttls: bool = setting(True, "upgrade the connection with STARTTLS (refuse to send otherwise)")
    implicit_tls: bool = setting(False, "connect with TLS from the start (port 465)")
    username: str | None = setting(None, "login name")
    password: Secret | None = setting(None, "login password, by reference")
    ca_file: str | None = setting(None, "CA bundle to verify the server's certificate")
    sender: str = setting("stackwatch@localhost", "From address")
    recipients: list[str] = setting(help="To addresses")

    def validate(self) -> None:
        super().validate()
        if not self.recipients:
            raise ValueError("recipients: at least one address is needed")
        if self.starttls and self.implicit_tls:
            raise ValueError("choose starttls or implicit_tls, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")


class SmtpSink(Sink):
    Settings = SmtpSettings

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.settings.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def message(self, note: Notification) -> EmailMessage:
        settings = self.settings
        message = EmailMessage()
        message["From"] = settings.sender
        message["To"] = ", ".join(settings.recipients)
        message["Subject"] = note.subject()
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain="stackwatch")
        message["X-Stackwatch-Rule"] = note.alert.rule
        message["X-Stackwatch-Change"] = note.change
        message.set_content(note.text())
        return message

    async def send(self, note: Notification) -> None:
        import aiosmtplib

        settings = self.settings
        await aiosmtplib.send(
            self.message(note),
            hostname=settings.host,
            port=settings.port,
            start_tls=settings.starttls,
            use_tls=settings.implicit_tls,
            username=settings.username,
            password=settings.password.value if settings.password else None,
            tls_context=self._tls_context() if (settings.starttls or settings.implicit_tls) else None,
            timeout=float(settings.timeout),
        )
