"""Alertmanager sink against a real Prometheus Alertmanager (Debian's prometheus-alertmanager,
started here on 127.0.0.1): the alert arrives through the v2 API with its labels, annotations and
generatorURL, is routed on to Alertmanager's own receiver, and resolves when stackwatch resolves it."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from stackwatch.alerts.alertmanager import AlertmanagerSink, postable_alert
from stackwatch.alerts.base import Notification
from stackwatch.config import parse_config
from stackwatch.core.alert import Alert
from stackwatch.core.errors import ConfigError
from tests.servetools import HookReceiver, free_port, run, wait_for

ALERTMANAGER = shutil.which("alertmanager") or "prometheus-alertmanager"  # Debian's name, or upstream's
DASHBOARD = "https://stackwatch.example.org"


class RunningAlertmanager:
    def __init__(self, url: str, forwarded: HookReceiver) -> None:
        self.url, self.forwarded = url, forwarded

    def alerts(self, rule: str) -> list[dict[str, Any]]:
        query = urllib.request.quote(f'rule="{rule}"')
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts?filter={query}", timeout=5) as response:
            return list(json.loads(response.read()))


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAlertmanager]:
    folder = tmp_path_factory.mktemp("alertmanager")
    with HookReceiver() as forwarded:
        (folder / "alertmanager.yml").write_text(
            "route: {receiver: hook, group_by: [rule, alert_key], group_wait: 100ms, group_interval: 1s,"
            " repeat_interval: 1h}\n"
            "receivers:\n  - name: hook\n"
            f"    webhook_configs: [{{url: '{forwarded.url}', send_resolved: true}}]\n"
        )
        port = free_port()
        proc = subprocess.Popen(
            [ALERTMANAGER, f"--config.file={folder / 'alertmanager.yml'}",
             f"--storage.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
             "--cluster.listen-address=", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: _ready(url) or proc.poll() is not None, timeout=30, interval=0.1)
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            yield RunningAlertmanager(url, forwarded)
        finally:
            proc.terminate()
            proc.wait(10)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _sink(url: str, extra: str = "") -> AlertmanagerSink:
    settings = parse_config(
        f"sinks:\n  - {{type: alertmanager, name: am, url: '{url}', dashboard_url: '{DASHBOARD}',"
        f" labels: {{team: cloud-ops}}{extra}}}\n"
    )
    return AlertmanagerSink(settings.sinks[0])


def _deliver(sink: AlertmanagerSink, *notes: Notification) -> None:
    async def send() -> None:
        for note in notes:
            await sink.send(note)
        await sink.close()

    run(send())


def test_a_new_alert_arrives_with_labels_annotations_and_a_link_back(alertmanager, alert: Alert) -> None:  # type: ignore[no-untyped-def]
    _deliver(_sink(alertmanager.url), Notification.of("new", alert, 42))
    (received,) = wait_for(lambda: alertmanager.alerts(alert.rule), timeout=10)
    assert received["labels"] == {
        "alertname": "SSH brute force", "rule": alert.rule, "alert_key": "203.0.113.9", "severity": "high",
        "category": "auth.bruteforce", "source": "stackwatch", "host": "ctl1", "source_ip": "203.0.113.9",
        "team": "cloud-ops",
    }
    assert received["annotations"]["summary"] == "12 failed ssh logins from 203.0.113.9"
    assert received["annotations"]["stackwatch_alert_id"] == "42"
    assert received["generatorURL"] == f"{DASHBOARD}/alerts/42"
    assert received["status"]["state"] == "active"
    assert received["startsAt"].startswith("2026-11-27T10:00:00")


def test_alertmanager_routes_it_on_and_a_resolved_alert_resolves(alertmanager, alert: Alert) -> None:  # type: ignore[no-untyped-def]
    alert = msgspec.structs.replace(alert, rule="0b7f5a1e-6a44-4d1c-8f10-7f6b2d1c9e02", key="198.51.100.7")
    _deliver(_sink(alertmanager.url), Notification.of("new", alert, 7))
    wait_for(lambda: alertmanager.alerts(alert.rule), timeout=10)

    def forwarded(status: str) -> list[dict[str, Any]]:
        return [a for document in alertmanager.forwarded.documents() if document["status"] == status
                for a in document["alerts"] if a["labels"]["rule"] == alert.rule]

    (firing,) = wait_for(lambda: forwarded("firing"), timeout=15)
    assert firing["generatorURL"] == f"{DASHBOARD}/alerts/7"
    resolved_at = datetime.now(UTC).isoformat()
    alert.status, alert.details = "resolved", {"resolved_at": resolved_at}
    _deliver(_sink(alertmanager.url), Notification.of("resolved", alert, 7))
    wait_for(lambda: not alertmanager.alerts(alert.rule), timeout=10)  # the API lists only unresolved alerts
    (resolved,) = wait_for(lambda: forwarded("resolved"), timeout=15)
    assert resolved["labels"]["alert_key"] == "198.51.100.7" and resolved["endsAt"] != "0001-01-01T00:00:00Z"


def test_an_alert_still_firing_is_renewed_not_duplicated(alertmanager, alert: Alert) -> None:  # type: ignore[no-untyped-def]
    alert = msgspec.structs.replace(alert, rule="e3c1d2b4-9a8f-4e7d-b6c5-a4f3e2d1c0b9")
    first = Notification.of("new", alert, 9)
    alert.count, alert.summary = 30, "30 failed ssh logins from 203.0.113.9"
    _deliver(_sink(alertmanager.url), first, Notification.of("update", alert, 9))
    (received,) = wait_for(lambda: alertmanager.alerts(alert.rule), timeout=10)
    assert received["annotations"]["count"] == "30"


def test_refused_posts_raise_for_the_dispatcher_to_retry(alert: Alert) -> None:
    with HookReceiver(fail_first=1) as refusing:
        sink = _sink(refusing.url.removesuffix("/hook"))
        with pytest.raises(RuntimeError, match="Alertmanager answered HTTP 503"):
            _deliver(sink, Notification.of("new", alert, 1))
        assert refusing.requests[0]["path"] == "/api/v2/alerts"


def test_a_firing_alert_ends_after_the_ttl_a_resolved_one_when_resolved(alert: Alert) -> None:
    settings = _sink("http://127.0.0.1:9", ", firing_ttl: 2h").settings
    now = datetime(2026, 11, 27, 11, 0, tzinfo=UTC)
    firing = postable_alert(Notification.of("new", alert), settings, now)
    assert firing["endsAt"] == "2026-11-27T13:00:00+00:00"
    alert.details = {"resolved_at": "2026-11-27T10:30:00+00:00"}
    resolved = postable_alert(Notification.of("resolved", alert), settings, now)
    assert resolved["endsAt"] == "2026-11-27T10:30:00+00:00"
    assert resolved["generatorURL"] == f"{DASHBOARD}/alerts"  # no id yet: the alert list


@pytest.mark.parametrize("extra", [
    ", labels: {'bad-name': x}", ", dashboard_url: 'ftp://x'", ", firing_ttl: 0s",
])
def test_bad_settings_are_refused_at_load(extra: str) -> None:
    with pytest.raises(ConfigError):
        _sink("http://127.0.0.1:9093", extra)
