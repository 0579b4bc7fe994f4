"""Matrix sink against a local HTTP server playing the homeserver's client-server API: the
message lands in the room with the bot's token, as m.text with an HTML body linking to the
alert, and a retried delivery reuses its transaction id (so the homeserver posts it once)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from stackwatch.alerts.base import Notification
from stackwatch.alerts.matrix import MatrixSink
from stackwatch.config import parse_config
from stackwatch.core.alert import Alert
from stackwatch.core.errors import ConfigError
from tests.servetools import run

ROOM = "!secops:example.org"
TOKEN = "syt_bot_token"
DASHBOARD = "https://stackwatch.example.org"
_SEND = re.compile(r"/_matrix/client/v3/rooms/(?P<room>[^/]+)/send/m\.room\.message/(?P<txn>[^/]+)")


class Homeserver:
    """Answers PUT send requests as Synapse does: 401 without the token, the same event id for a
    transaction id already seen, the first ``fail_first`` with 502."""

    def __init__(self, fail_first: int = 0) -> None:
        self.messages: dict[str, dict[str, Any]] = {}  # txn id -> content
        self.attempts: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                match = _SEND.fullmatch(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                server.attempts.append(self.path)
                if match is None or match["room"] != "%21secops%3Aexample.org":
                    status = 404
                elif self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    status = 401
                elif len(server.attempts) <= fail_first:
                    status = 502
                else:
                    server.messages.setdefault(match["txn"], json.loads(body))
                    status = 200
                answer = json.dumps({"event_id": "$e"}).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def homeserver() -> Iterator[Homeserver]:
    server = Homeserver(fail_first=1)
    yield server
    server.close()


def _sink(url: str, monkeypatch: pytest.MonkeyPatch, room: str = ROOM) -> MatrixSink:
    monkeypatch.setenv("SW_MATRIX_TOKEN", TOKEN)
    settings = parse_config(
        f"sinks:\n  - {{type: matrix, homeserver: '{url}', room_id: '{room}',"
        f" access_token: $env:SW_MATRIX_TOKEN, dashboard_url: '{DASHBOARD}'}}\n"
    )
    return MatrixSink(settings.sinks[0])


def test_a_retried_message_lands_once_in_the_room(homeserver: Homeserver, alert: Alert,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    sink = _sink(homeserver.url, monkeypatch)
    note = Notification.of("new", alert, 42)

    async def deliver() -> None:
        with pytest.raises(RuntimeError, match="Matrix homeserver answered HTTP 502"):
            await sink.send(note)
        await sink.send(note)  # the dispatcher's retry
        await sink.send(Notification.of("resolved", alert, 42))
        await sink.close()

    run(deliver())
    assert homeserver.attempts[0] == homeserver.attempts[1]  # the same transaction id
    first, resolved = homeserver.messages.values()
    assert first["msgtype"] == "m.text" and first["format"] == "org.matrix.custom.html"
    link = f'<a href="{DASHBOARD}/alerts/42">[stackwatch high] SSH brute force on ctl1</a>'
    assert link in first["formatted_body"]
    assert "12 failed ssh logins from 203.0.113.9" in first["body"]
    assert f"{DASHBOARD}/alerts/42" in first["body"]
    assert "resolved: SSH brute force" in resolved["body"]


def test_alert_text_is_escaped_in_the_html_body(homeserver: Homeserver, alert: Alert,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    alert.summary = "<script>alert(1)</script> from 203.0.113.9"
    sink = _sink(homeserver.url, monkeypatch)

    async def deliver() -> None:
        with pytest.raises(RuntimeError):
            await sink.send(Notification.of("new", alert, 1))
        await sink.send(Notification.of("new", alert, 1))
        await sink.close()

    run(deliver())
    (message,) = homeserver.messages.values()
    assert "<script>" not in message["formatted_body"] and "&lt;script&gt;" in message["formatted_body"]


@pytest.mark.parametrize("room", ["#secops:example.org", "secops"])
def test_a_room_alias_is_refused(room: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="room_id must be a room id"):
        _sink("https://matrix.example.org", monkeypatch, room)
