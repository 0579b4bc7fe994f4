"""Matrix sink: an alert change sent as a message to a Matrix room through the client-server
API (``PUT /_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}``), with a plain ``body``
and an HTML ``formatted_body`` linking to the alert's page. The transaction id is derived from
the notification, so a retried delivery is not posted twice (the homeserver deduplicates it).

The access token (of a bot user invited to the room) is a secret, given by reference.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from stackwatch.alerts.alertmanager import alert_page
from stackwatch.alerts.base import Notification, Sink
from stackwatch.alerts.http import HttpPoster, HttpTlsSettings, check_http_url
from stackwatch.config.schema import setting
from stackwatch.config.secrets import Secret


@dataclass(frozen=True, kw_only=True)
class MatrixSettings(HttpTlsSettings):
    homeserver: str = setting(help="the homeserver's base URL, e.g. https://matrix.example.org")
    room_id: str = setting(help="the room's id (!abc:example.org); the bot must have joined it")
    access_token: Secret = setting(help="the bot user's access token, by reference")
    dashboard_url: str = setting("", "the stackwatch dashboard's base URL, to link each alert's page")

    def validate(self) -> None:
        super().validate()
        check_http_url("homeserver", self.homeserver, required=True)
        check_http_url("dashboard_url", self.dashboard_url)
        if not self.room_id.startswith("!") or ":" not in self.room_id:
            raise ValueError("room_id must be a room id like !abc:example.org (not an alias)")


def matrix_message(note: Notification, dashboard_url: str) -> dict[str, Any]:
    """The ``m.room.message`` content for one notification."""
    page = alert_page(dashboard_url, note)
    summary = note.alert.summary or note.title
    subject = html.escape(note.subject())
    heading = f'<a href="{html.escape(page, quote=True)}">{subject}</a>' if page else subject
    return {
        "msgtype": "m.text",
        "body": note.text() + (f"\n{page}\n" if page else ""),
        "format": "org.matrix.custom.html",
        "formatted_body": f"<p><strong>{heading}</strong></p><p>{html.escape(summary)}</p>",
    }


def transaction_id(note: Notification) -> str:
    """The same for every attempt to deliver ``note``, different for every other notification."""
    alert = note.alert
    # No key hashes as null, as it always has: the ids of notifications already sent stay the same.
    identity = orjson.dumps([note.change, note.alert_id, note.sent, alert.rule, alert.key or None])
    return "stackwatch-" + hashlib.sha256(identity).hexdigest()[:32]


class MatrixSink(Sink):
    Settings = MatrixSettings

    def __init__(self, settings: MatrixSettings) -> None:
        super().__init__(settings)
        self.poster = HttpPoster.of(settings, "Matrix homeserver")
        self.room_url = (f"{settings.homeserver.rstrip('/')}/_matrix/client/v3/rooms/"
                         f"{quote(settings.room_id, safe='')}/send/m.room.message/")

    async def send(self, note: Notification) -> None:
        body = orjson.dumps(matrix_message(note, self.settings.dashboard_url))
        headers = {"Authorization": f"Bearer {self.settings.access_token.value}"}
        await self.poster.send("PUT", self.room_url + transaction_id(note), body, headers)

    async def close(self) -> None:
        await self.poster.close()
