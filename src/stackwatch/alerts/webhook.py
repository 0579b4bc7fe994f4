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
from typing import Any

from stackwatch.alerts.base import Notification, Sink, SinkSettings
from stackwatch.config.schema import setting
from stackwatch.config.secrets import Secret

SIGNATURE_HEADER = "X-Stackwatch-Signature"


@dataclass(frozen=True, kw_only=True)
class WebhookSettings(SinkSettings):
    url: str = setting(help="where to POST (https:// recommended)")
    secret: Secret | None = setting(None, "HMAC-SHA256 key for the signature header, by reference")
    headers: dict[str, str] = setting({}, "extra HTTP headers (no secrets here: use `secret`)")
    ca_file: str | None = setting(None, "CA bundle to verify the receiver's certificate")
    verify_tls: bool = setting(True, "verify the receiver's certificate")

    def validate(self) -> None:
        super().validate()
        if not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
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
        self._client: Any = None

    def _http(self) -> Any:
        if self._client is None:
            try:
                import httpx2 as httpx
            except ImportError:  # the older name works the same for what we use
                import httpx  # type: ignore[no-redef]
            settings = self.settings
            verify: Any = settings.ca_file or settings.verify_tls
            self._client = httpx.AsyncClient(timeout=float(settings.timeout), verify=verify)
        return self._client

    async def send(self, note: Notification) -> None:
        body = note.body()
        headers = {"Content-Type": "application/json", "User-Agent": "stackwatch", **self.settings.headers}
        if self.settings.secret is not None:
            headers[SIGNATURE_HEADER] = signature(self.settings.secret.value, body)
        response = await self._http().post(self.settings.url, content=body, headers=headers)
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"webhook answered HTTP {response.status_code}")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
