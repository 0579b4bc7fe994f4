"""E-mail sink against a real SMTP server (aiosmtpd) that requires STARTTLS and AUTH."""

from __future__ import annotations

import ssl
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from stackwatch.alerts.base import Notification
from stackwatch.alerts.smtp import SmtpSink
from stackwatch.config import parse_config
from stackwatch.core.alert import Alert
from tests.servetools import free_port, make_certs, run


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"stackwatch"
        and auth_data.password == b"pw"
    )
    return AuthResult(success=ok)


@pytest.fixture
def smtp_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    certs = make_certs(tmp_path / "tls")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certs["server_cert"]), str(certs["server_key"]))
    mailbox = _Mailbox()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=context,
        require_starttls=True,
        authenticator=_authenticate,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield controller, mailbox, certs
    finally:
        controller.stop()


def _sink(port: int, certs: dict[str, Path], password_env: str) -> SmtpSink:
    yaml = (
        f"sinks:\n  - {{type: smtp, name: mail, host: 127.0.0.1, port: {port}, username: stackwatch,"
        f" password: '$env:{password_env}', ca_file: '{certs['ca']}', sender: sw@example.org,"
        f" recipients: [soc@example.org, oncall@example.org], timeout: 3s}}\n"
    )
    return SmtpSink(parse_config(yaml).sinks[0])


def test_sends_over_starttls_with_auth(smtp_server, alert: Alert, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    controller, mailbox, certs = smtp_server
    monkeypatch.setenv("SW_SMTP_PW", "pw")
    run(_sink(controller.port, certs, "SW_SMTP_PW").send(Notification.of("new", alert, 5)))
    (envelope,) = mailbox.messages
    assert envelope.mail_from == "sw@example.org"
    assert envelope.rcpt_tos == ["soc@example.org", "oncall@example.org"]
    message = message_from_bytes(envelope.content)
    assert message["Subject"] == "[stackwatch high] SSH brute force on ctl1"
    assert "12 failed ssh logins from 203.0.113.9" in message.get_payload()
    assert message["X-Stackwatch-Rule"] == alert.rule


def test_wrong_password_fails(smtp_server, alert: Alert, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import aiosmtplib

    controller, mailbox, certs = smtp_server
    monkeypatch.setenv("SW_SMTP_PW", "wrong")
    with pytest.raises(aiosmtplib.SMTPException):  # 535, or aiosmtpd's stalled answer
        run(_sink(controller.port, certs, "SW_SMTP_PW").send(Notification.of("new", alert)))
    assert mailbox.messages == []
