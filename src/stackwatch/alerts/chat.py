"""Chat sink: an alert change posted to a Slack-compatible incoming webhook, the kind Slack,
Mattermost and Rocket.Chat all accept: a ``text`` line plus one legacy ``attachment`` (colour
by severity, a title linking to the alert's page, the summary, a few fields). ``flavor`` picks
the link syntax (Slack's ``<url|text>`` or Markdown's ``[text](url)``) and the name field
(Mattermost ``username``, Rocket.Chat ``alias``; Slack apps ignore it).

The webhook URL is a secret (whoever holds it can post to the channel): it is given by
reference (``$env:`` / ``$file:``), never written in the configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from stackwatch.alerts.alertmanager import alert_page
from stackwatch.alerts.base import Notification, Sink
from stackwatch.alerts.http import HttpPoster, HttpTlsSettings, check_http_url
from stackwatch.config.schema import setting
from stackwatch.config.secrets import Secret

FLAVORS = ("slack", "mattermost", "rocketchat")
COLORS = {"low": "#439FE0", "medium": "#E8A317", "high": "#E01E5A", "critical": "#7B0000"}
RESOLVED_COLOR = "#2EB67D"
_FIELDS = ("host", "service", "source_ip", "user", "project", "category", "count")


@dataclass(frozen=True, kw_only=True)
class ChatSettings(HttpTlsSettings):
    webhook_url: Secret = setting(help="the incoming webhook's URL, by reference (it is a credential)")
    flavor: str = setting("slack", "slack, mattermost or rocketchat: link syntax and name field")
    username: str = setting("stackwatch", "name the messages are posted under (Mattermost, Rocket.Chat)")
    channel: str = setting("", "channel override, where the webhook allows one (empty: the webhook's own)")
    dashboard_url: str = setting("", "the stackwatch dashboard's base URL, to link each alert's page")

    def validate(self) -> None:
        super().validate()
        if self.flavor not in FLAVORS:
            raise ValueError(f"flavor must be one of {', '.join(FLAVORS)}")
        check_http_url("webhook_url", self.webhook_url.value, required=True)
        check_http_url("dashboard_url", self.dashboard_url)


def _link(flavor: str, url: str, text: str) -> str:
    if not url:
        return text
    return f"<{url}|{text}>" if flavor == "slack" else f"[{text}]({url})"


def chat_payload(note: Notification, settings: ChatSettings) -> dict[str, Any]:
    """The JSON body for one notification, in ``settings.flavor``'s dialect."""
    alert, shown, flavor = note.alert, note.fields(), settings.flavor
    page = alert_page(settings.dashboard_url, note)
    color = RESOLVED_COLOR if note.change == "resolved" else COLORS.get(note.severity, COLORS["medium"])
    fields = [
        # as the JSON document has them: a count of 1 goes unsaid
        {"title": name, "value": str(shown[name]), "short": True}
        for name in _FIELDS if shown.get(name) not in (None, "")
    ]
    attachment: dict[str, Any] = {
        "fallback": note.subject(),
        "color": color,
        "title": note.title,
        "text": alert.summary or note.title,
        "fields": fields,
        "footer": f"stackwatch · rule {alert.rule}",
    }
    if page:
        attachment["title_link"] = page
    payload: dict[str, Any] = {"text": _link(flavor, page, note.subject()), "attachments": [attachment]}
    if settings.channel:
        payload["channel"] = settings.channel
    if flavor == "mattermost":
        payload["username"] = settings.username
    elif flavor == "rocketchat":
        payload["alias"] = settings.username
    return payload


class ChatSink(Sink):
    Settings = ChatSettings

    def __init__(self, settings: ChatSettings) -> None:
        super().__init__(settings)
        self.poster = HttpPoster.of(settings, f"chat webhook ({settings.flavor})")

    async def send(self, note: Notification) -> None:
        body = orjson.dumps(chat_payload(note, self.settings))
        await self.poster.post(self.settings.webhook_url.value, body, {})

    async def close(self) -> None:
        await self.poster.close()
