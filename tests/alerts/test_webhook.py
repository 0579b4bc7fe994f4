"""Webhook sink against a real HTTP receiver: JSON body, HMAC signature, retries with backoff."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from stackwatch.alerts.base import Notification
from stackwatch.alerts.dispatch import Dispatcher
from stackwatch.alerts.routing import Router
from stackwatch.alerts.throttle import Throttle
from stackwatch.alerts.webhook import WebhookSink, signature
from stackwatch.config import parse_config
from stackwatch.core.alert import Alert
from tests.servetools import HookReceiver, run, wait_for


def _sink(url: str, extra: str = "") -> WebhookSink:
    settings = parse_config(
        f"sinks:\n  - {{type: webhook, name: hook, url: '{url}', secret: $env:SW_HOOK{extra}}}\n"
    )
    return WebhookSink(settings.sinks[0])


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SW_HOOK", "hook-secret")


def test_posts_signed_json(alert: Alert) -> None:
    with HookReceiver() as receiver:
        sink = _sink(receiver.url)

        async def send() -> None:
            await sink.send(Notification.of("new", alert, 42))
            await sink.close()

        run(send())
        (request,) = receiver.requests
    body = request["body"]
    expected = "sha256=" + hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
    assert request["headers"]["X-Stackwatch-Signature"] == expected
    document = json.loads(body)
    assert document["change"] == "new" and document["id"] == 42 and document["version"] == 1
    assert document["alert"]["rule"] == alert.rule and document["alert"]["source_ip"] == "203.0.113.9"
    assert document["alert"]["evidence"][0]["ref"] == "syslog:tcp/x:1"


def test_signature_changes_with_the_body() -> None:
    assert signature("k", b"{}") != signature("k", b"{ }") != signature("k2", b"{}")


def test_failures_are_retried_with_backoff_until_delivered(alert: Alert, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with HookReceiver(fail_first=2) as receiver:
        sink = _sink(receiver.url, ", backoff: 100ms, retries: 3")
        dispatcher = Dispatcher([sink], Router([], ["hook"]), Throttle(600, 60), tmp_path / "dead.jsonl")

        async def scenario() -> None:
            await dispatcher.start()
            dispatcher.submit(alert, "new", 1)
            wait = 0
            while dispatcher.counters["hook"].sent == 0 and wait < 100:
                import asyncio

                await asyncio.sleep(0.05)
                wait += 1
            await dispatcher.close(2)

        run(scenario())
        times = [r["time"] for r in receiver.requests]
    assert (
        len(times) == 3 and dispatcher.counters["hook"].retried == 2 and dispatcher.counters["hook"].sent == 1
    )
    assert times[1] - times[0] >= 0.09 and times[2] - times[1] >= 0.19  # 100 ms, then doubled
    assert not (tmp_path / "dead.jsonl").exists()


def test_undeliverable_notifications_go_to_the_dead_letter_file(alert: Alert, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with HookReceiver(fail_first=100) as receiver:
        sink = _sink(receiver.url, ", backoff: 10ms, retries: 2")
        dispatcher = Dispatcher([sink], Router([], ["hook"]), Throttle(600, 60), tmp_path / "dead.jsonl")

        async def scenario() -> None:
            await dispatcher.start()
            dispatcher.submit(alert, "new", 7)
            await dispatcher.close(5)

        run(scenario())
        assert len(receiver.requests) == 3
    dead = wait_for(lambda: (tmp_path / "dead.jsonl").read_text().splitlines())
    record = json.loads(dead[0])
    assert record["sink"] == "hook" and "503" in record["error"] and record["notification"]["id"] == 7
