"""What the sinks that POST JSON over HTTP share: one client per sink (TLS verification
as configured), and a non-2xx answer raised so the dispatcher retries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stackwatch.alerts.base import SinkSettings
from stackwatch.config.schema import setting


def check_http_url(name: str, value: str, *, required: bool = False) -> None:
    """ValueError unless ``value`` is an http(s) URL (or empty, when not ``required``)."""
    if (value or required) and not value.startswith(("http://", "https://")):
        raise ValueError(f"{name} must start with http:// or https://")


@dataclass(frozen=True, kw_only=True)
class HttpTlsSettings(SinkSettings):
    """How an HTTP sink checks the receiver's certificate."""

    ca_file: str | None = setting(None, "CA bundle to verify the receiver's certificate")
    verify_tls: bool = setting(True, "verify the receiver's certificate")


@dataclass(frozen=True, kw_only=True)
class HttpSinkSettings(HttpTlsSettings):
    """Settings of an HTTP sink whose URL is no secret."""

    url: str = setting(help="where to POST (https:// recommended)")

    def validate(self) -> None:
        super().validate()
        check_http_url("url", self.url, required=True)


class HttpPoster:
    """An AsyncClient made on first use; ``post`` raises on a non-2xx answer."""

    def __init__(self, timeout: float, verify: str | bool, what: str) -> None:
        self.timeout, self.verify = timeout, verify  # verify: a CA bundle's path, or on/off
        self.what = what  # names the receiver in errors: "webhook", "Alertmanager"
        self._client: Any = None

    @classmethod
    def of(cls, settings: HttpTlsSettings, what: str) -> HttpPoster:
        return cls(float(settings.timeout), settings.ca_file or settings.verify_tls, what)

    def _http(self) -> Any:
        if self._client is None:
            try:
                import httpx2 as httpx
            except ImportError:  # the older name works the same for what we use
                import httpx  # type: ignore[no-redef]
            self._client = httpx.AsyncClient(timeout=self.timeout, verify=self.verify)
        return self._client

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        await self.send("POST", url, body, headers)

    async def send(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": "stackwatch", **headers}
        response = await self._http().request(method, url, content=body, headers=headers)
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"{self.what} answered HTTP {response.status_code}")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
