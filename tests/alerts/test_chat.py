"""Chat sink against a local HTTP receiver that checks each payload the way Slack, Mattermost
and Rocket.Chat incoming webhooks read it (their documented fields and types)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from stackwatch.alerts.base import Notification
from stackwatch.alerts.chat import ChatSink
from stackwatch.config import parse_config
from stackwatch.core.alert import Alert
from stackwatch.core.errors import ConfigError
from tests.servetools import HookReceiver, run

DASHBOARD = "https://stackwatch.example.org"
_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")
_ATTACHMENT_TEXT = ("fallback", "color", "title", "title_link", "text", "footer")
# The top-level fields each product's incoming webhook accepts (anything else is an error here).
_TOP_LEVEL = {
    "slack": {"text", "attachments", "blocks", "channel", "username", "icon_emoji", "icon_url"},
    "mattermost": {"text", "attachments", "channel", "username", "icon_url", "icon_emoji", "props", "type"},
    "rocketchat": {"text", "attachments", "channel", "alias", "emoji", "avatar"},
}


def validate(flavor: str, payload: dict[str, Any]) -> list[str]:
    """What the product would reject or show wrongly in ``payload``."""
    problems = [f"unknown field {key!r}" for key in payload if key not in _TOP_LEVEL[flavor]]
    if not payload.get("text") and not payload.get("attachments"):
        problems.append("neither text nor attachments")
    if not isinstance(payload.get("text", ""), str):
        problems.append("text is not a string")
    for attachment in payload.get("attachments", []):
        problems += [f"attachment {key} is not a string" for key in _ATTACHMENT_TEXT
                     if key in attachment and not isinstance(attachment[key], str)]
        if "color" in attachment and not _COLOR.fullmatch(attachment["color"]):
            problems.append(f"bad color {attachment['color']!r}")
        for field in attachment.get("fields", []):
            if set(field) != {"title", "value", "short"} or not isinstance(field["short"], bool):
                problems.append(f"bad field {field!r}")
    return problems


def _sink(url: str, flavor: str, extra: str = "") -> ChatSink:
    settings = parse_config(
        f"sinks:\n  - {{type: chat, name: chat, webhook_url: $env:SW_CHAT_HOOK, flavor: {flavor},"
        f" dashboard_url: '{DASHBOARD}'{extra}}}\n"
    )
    return ChatSink(settings.sinks[0])


def _post(flavor: str, *notes: Notification, extra: str = "") -> list[dict[str, Any]]:
    with HookReceiver() as receiver:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("SW_CHAT_HOOK", receiver.url)
            sink = _sink(receiver.url, flavor, extra)

        async def send() -> None:
            for note in notes:
                await sink.send(note)
            await sink.close()

        run(send())
        assert all(r["headers"]["Content-Type"] == "application/json" for r in receiver.requests)
        return [json.loads(r["body"]) for r in receiver.requests]


@pytest.mark.parametrize("flavor", ["slack", "mattermost", "rocketchat"])
@pytest.mark.parametrize("change", ["new", "update", "resolved"])
def test_every_payload_is_one_the_product_accepts(flavor: str, change: str, alert: Alert) -> None:
    (payload,) = _post(flavor, Notification.of(change, alert, 42))
    assert validate(flavor, payload) == []


@pytest.mark.parametrize(("flavor", "link"), [
    ("slack", f"<{DASHBOARD}/alerts/42|[stackwatch high] SSH brute force on ctl1>"),
    ("mattermost", f"[[stackwatch high] SSH brute force on ctl1]({DASHBOARD}/alerts/42)"),
    ("rocketchat", f"[[stackwatch high] SSH brute force on ctl1]({DASHBOARD}/alerts/42)"),
])
def test_the_text_links_to_the_alert_page_in_the_chats_syntax(flavor: str, link: str, alert: Alert) -> None:
    (payload,) = _post(flavor, Notification.of("new", alert, 42))
    assert payload["text"] == link
    (attachment,) = payload["attachments"]
    assert attachment["title_link"] == f"{DASHBOARD}/alerts/42"
    assert attachment["text"] == "12 failed ssh logins from 203.0.113.9"
    assert {"title": "source_ip", "value": "203.0.113.9", "short": True} in attachment["fields"]


@pytest.mark.parametrize(("flavor", "name_field"), [("mattermost", "username"), ("rocketchat", "alias")])
def test_the_poster_name_goes_where_the_product_reads_it(flavor: str, name_field: str, alert: Alert) -> None:
    (payload,) = _post(flavor, Notification.of("new", alert, 1), extra=", username: cloud-sec")
    assert payload[name_field] == "cloud-sec"


def test_a_resolved_alert_is_green_and_says_so(alert: Alert) -> None:
    firing, resolved = _post("slack", Notification.of("new", alert, 3), Notification.of("resolved", alert, 3))
    assert firing["attachments"][0]["color"] == "#E01E5A"
    assert resolved["attachments"][0]["color"] == "#2EB67D"
    assert "resolved: SSH brute force" in resolved["text"]


def test_the_webhook_url_is_never_written_inline() -> None:
    with pytest.raises(ConfigError, match="by reference"):
        parse_config("sinks:\n  - {type: chat, webhook_url: 'https://hooks.slack.com/services/T/B/x'}\n")


def test_an_unknown_flavor_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SW_CHAT_HOOK", "https://chat.example.org/hooks/x")
    with pytest.raises(ConfigError, match="flavor must be one of"):
        _sink("", "teams")
