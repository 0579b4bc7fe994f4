"""What every alert sink shares: common settings, the notification it is handed, and the
JSON document stackwatch sends (the webhook body, the file sink's line)."""


from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson

from stackwatch.config.schema import Seconds, setting
from stackwatch.core.alert import Alert, AlertSnapshot, alert_to_dict

SCHEMA_VERSION = 1
CHANGES = ("new", "update", "resolved")


@dataclass(frozen=True, kw_only=True)
class SinkSettings:
    """Settings every sink type has (each type's Settings extends this)."""

    type: str = setting(help="the sink type")
    name: str = setting("", "unique name, used by routing and in metrics (default: the type)")
    retries: int = setting(
        5, "attempts after the first failure before the notification goes to the dead-letter file"
    )
    backoff: Seconds = setting(Seconds(1), "wait before the first retry; doubled each time")
    backoff_max: Seconds = setting(Seconds(60), "longest wait between retries")
    timeout: Seconds = setting(Seconds(10), "time allowed for one delivery attempt")
    queue_size: int = setting(1000, "notifications waiting for this sink; beyond it they are dead-lettered")

    def validate(self) -> None:
        if self.retries < 0 or self.queue_size < 1:
            raise ValueError("retries must be >= 0 and queue_size >= 1")


@dataclass(frozen=True, slots=True)
class Notification:
    """One alert change to deliver: ``new``, ``update`` (still firing) or ``resolved``.
    ``alert`` is a frozen snapshot (the engine keeps mutating its Alert)."""

    change: str
    alert: AlertSnapshot
    alert_id: int | None = None
    sent: str = ""

    @classmethod
    def of(cls, change: str, alert: Alert | AlertSnapshot, alert_id: int | None = None) -> Notification:
        return cls(change, AlertSnapshot.of(alert), alert_id, datetime.now(UTC).isoformat())

    def fields(self) -> dict[str, Any]:
        """The alert as the JSON document carries it: times in ISO 8601, and a field at its
        default (status open, count 1, no key, no host...) left out, so the renderings that
        list fields list only these."""
        return alert_to_dict(self.alert)

    def document(self) -> dict[str, Any]:
        return {
            "version": SCHEMA_VERSION,
            "source": "stackwatch",
            "change": self.change,
            "id": self.alert_id,
            "sent": self.sent,
            "alert": self.fields(),
        }

    def body(self) -> bytes:
        """The JSON document, exactly as signed and sent."""
        return orjson.dumps(self.document(), option=orjson.OPT_SORT_KEYS)

    @property
    def title(self) -> str:
        return self.alert.title

    @property
    def severity(self) -> str:
        return self.alert.severity

    @property
    def category(self) -> str:
        return self.alert.category

    def subject(self) -> str:
        prefix = {"new": "", "update": "still firing: ", "resolved": "resolved: "}.get(self.change, "")
        host = self.alert.host
        return f"[stackwatch {self.severity}] {prefix}{self.title}" + (f" on {host}" if host else "")

    def text(self) -> str:
        """A plain-text rendering for e-mail and humans."""
        alert, fields = self.alert, self.fields()
        lines = [self.subject(), "", alert.summary or alert.title, ""]
        for key in (
            "category",
            "severity",
            "status",
            "host",
            "service",
            "source_ip",
            "user",
            "project",
            "time",
            "last_seen",
            "count",
            "rule",
            "key",
        ):
            value = fields.get(key)
            if value not in (None, ""):
                lines.append(f"{key:>10}: {value}")
        if self.alert_id is not None:
            lines.append(f"{'alert id':>10}: {self.alert_id}")
        if alert.evidence:
            lines += ["", "evidence:"]
            lines += [f"  {item.ref}: {item.raw[:500]}" for item in alert.evidence]
        return "\n".join(lines) + "\n"


class Sink(ABC):
    """A delivery channel. ``send`` raises on failure; the dispatcher retries."""

    Settings: ClassVar[type[SinkSettings]] = SinkSettings

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.name: str = settings.name

    @abstractmethod
    async def send(self, note: Notification) -> None: ...

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
