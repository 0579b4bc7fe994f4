"""Prometheus Alertmanager sink: each alert change POSTed to Alertmanager's v2 API
(``POST /api/v2/alerts``), so stackwatch's alerts are grouped, silenced, inhibited and routed
with the rest of what the operators already page on.

Alertmanager tells alerts apart by their label set, so the labels are what identifies a
stackwatch alert and never changes while it is open: ``alertname`` (the rule's title), ``rule``
(its id), ``alert_key`` (the key it fired for), ``severity``, ``category``, and ``host``,
``service``, ``source_ip``, ``user``, ``project`` when known, plus the sink's own ``labels``.
What changes (summary, count, last seen) goes into the annotations. ``generatorURL`` links back
to the alert's page on the stackwatch dashboard (``dashboard_url``).

A firing alert is sent with ``endsAt`` ``firing_ttl`` ahead: stackwatch re-sends an alert that
keeps firing (throttle.update_interval), and one it resolves is sent with ``endsAt`` at its
resolution, which Alertmanager shows as resolved at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from stackwatch.alerts.base import Notification, Sink
from stackwatch.alerts.http import HttpPoster, HttpSinkSettings, check_http_url
from stackwatch.config.schema import Seconds, setting
from stackwatch.config.secrets import Secret

API_PATH = "/api/v2/alerts"
_ALERT_LABELS = ("host", "service", "source_ip", "user", "project")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass(frozen=True, kw_only=True)
class AlertmanagerSettings(HttpSinkSettings):
    url: str = setting(help="Alertmanager's base URL, e.g. http://alertmanager:9093 (the API path is added)")
    dashboard_url: str = setting(
        "", "the stackwatch dashboard's base URL, for generatorURL links to each alert's page"
    )
    labels: dict[str, str] = setting({}, "labels added to every alert (e.g. {team: cloud-ops})")
    firing_ttl: Seconds = setting(
        Seconds(86400), "a firing alert's endsAt is this far ahead (it is renewed each time it is re-sent)"
    )
    bearer_token: Secret | None = setting(None, "token for Authorization: Bearer, by reference")

    def validate(self) -> None:
        super().validate()
        check_http_url("dashboard_url", self.dashboard_url)
        for name in self.labels:
            if _LABEL_NAME.fullmatch(name) is None:
                raise ValueError(f"bad label name {name!r} (Prometheus: {_LABEL_NAME.pattern})")
        if self.firing_ttl <= 0:
            raise ValueError("firing_ttl must be positive")


def alert_page(dashboard_url: str, note: Notification) -> str:
    """The alert's page on the dashboard (the alert list when it has no id yet); '' without a URL."""
    if not dashboard_url:
        return ""
    base = dashboard_url.rstrip("/")
    return f"{base}/alerts/{note.alert_id}" if note.alert_id is not None else f"{base}/alerts"


def postable_alert(note: Notification, settings: AlertmanagerSettings, now: datetime) -> dict[str, Any]:
    """The Alertmanager v2 ``postableAlert`` for one notification."""
    alert, fields = note.alert, note.fields()  # fields: times as the JSON document writes them
    labels = {
        **settings.labels,
        "alertname": note.title or "stackwatch alert",
        "rule": alert.rule,
        "alert_key": alert.key,
        "severity": note.severity,
        "category": note.category,
        "source": "stackwatch",
    }
    labels.update({name: str(fields[name]) for name in _ALERT_LABELS if fields.get(name)})
    annotations = {
        "summary": alert.summary or note.title,
        "description": note.text(),
        "count": str(alert.count),
        "last_seen": str(fields["last_seen"]),
    }
    if note.alert_id is not None:
        annotations["stackwatch_alert_id"] = str(note.alert_id)
    if note.change == "resolved":
        details = fields.get("details") or {}
        ends = str(details.get("resolved_at") or now.isoformat())
    else:
        ends = (now + timedelta(seconds=float(settings.firing_ttl))).isoformat()
    posted: dict[str, Any] = {
        "labels": labels,
        "annotations": annotations,
        "startsAt": str(fields["time"]),
        "endsAt": ends,
    }
    page = alert_page(settings.dashboard_url, note)
    if page:
        posted["generatorURL"] = page
    return posted


class AlertmanagerSink(Sink):
    Settings = AlertmanagerSettings

    def __init__(self, settings: AlertmanagerSettings) -> None:
        super().__init__(settings)
        self.poster = HttpPoster.of(settings, "Alertmanager")
        self.endpoint = settings.url.rstrip("/") + API_PATH

    async def send(self, note: Notification) -> None:
        body = orjson.dumps([postable_alert(note, self.settings, datetime.now(UTC))])
        headers = {}
        if self.settings.bearer_token is not None:
            headers["Authorization"] = f"Bearer {self.settings.bearer_token.value}"
        await self.poster.post(self.endpoint, body, headers)

    async def close(self) -> None:
        await self.poster.close()
