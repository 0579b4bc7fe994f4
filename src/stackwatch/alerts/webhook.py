"""Webhook sink: the notification's JSON document POSTed to a URL.

The body is signed with HMAC-SHA256 over its exact bytes, so the receiver can check that it
comes from us and was not altered: ``X-Stackwatch-Signature: sha256=<hex>``. Receivers should
compare with ``hmac.compare_digest`` and may reject old ``sent`` times to stop replays.
Non-2xx answers and network errors raise, and the dispatcher retries with backoff.
"""


from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from stackwatch.alerts.base import Notification, Sink
from stackwatch.alerts.http import HttpPoster, HttpSinkSettings
from stackwatch.config.schema import setting
from stackwatch.config.secrets import Secret

SIGNATURE_HEADER = "X-Stackwatch-Signature"


@dataclass(frozen=True, kw_only=True)
class WebhookSettings(HttpSinkSettings):
    secret: Secret | None = setting(None, "HMAC-SHA256 key for the signature header, by reference")
    headers: dict[str, str] = setting({}, "extra HTTP headers (no secrets here: use `secret`)")

    def validate(self) -> None:
        super().validate()
        for name in self.headers:
            if name.lower() in ("authorization", "cookie", "x-api-key"):
                raise ValueError(f"header {name!r} carries a secret: it cannot be written inline")


def signature(secret: str, body: bytes) -> str:
    """The header value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSink(Sink):
    Settings = WebhookSettings

    def __init__(self, settings: WebhookSettings) -> None:
        super().__init__(settings)
        self.poster = HttpPoster.of(settings, "webhook")

    async def send(self, note: Notification) -> None:
        body = note.body()
        headers = dict(self.settings.headers)
        if self.settings.secret is not None:
            headers[SIGNATURE_HEADER] = signature(self.settings.secret.value, body)
        await self.poster.post(self.settings.url, body, headers)

    async def close(self) -> None:
        await self.poster.close()
