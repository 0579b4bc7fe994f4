"""The host, network and security packs (services, os, network, firewall, integrity, malware,
ids) against real-shaped data: every incident of their categories in the generated cloud
scenario raises an alert on the right host and entity, nothing else does, and benign real
logs from the corpus stay quiet."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from stackwatch.core.alert import Alert
from stackwatch.detect.engine import Engine
from stackwatch.detect.loader import builtin_rules
from stackwatch.pipeline.reader import discover, read_events
from stackwatch.scenario import Manifest, generate

PACKS = ("services", "os", "network", "firewall", "integrity", "malware", "ids")
CATEGORIES = ("service.unscheduled_stop", "service.unscheduled_start", "os.login", "os.privilege",
              "os.restart", "network.bridge_down", "firewall.flush", "integrity.file_changed",
              "malware.detected", "ids.alert")
RULES = [r for r in builtin_rules() if r.source.split("/")[1] in PACKS]


def analyze(path: Path) -> list[Alert]:
    engine = Engine(RULES)
    for event in read_events(discover([str(path)])):
        engine.process(event)
    engine.finish()
    return engine.alerts()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> tuple[Manifest, list[Alert]]:
    out = tmp_path_factory.mktemp("scenario") / "logs"
    manifest = generate(out, seed=7, lines=20_000)
    return manifest, analyze(out)


def _mentions(alert: Alert, entity: str) -> bool:
    fields = (alert.source_ip, alert.user, alert.service, alert.bridge, alert.path, alert.host)
    return (entity in fields or entity in alert.key.split("|") or entity in alert.summary
            or any(entity in e.raw for e in alert.evidence))


def test_the_packs_are_loaded() -> None:
    assert {r.source.split("/")[1] for r in RULES} == set(PACKS)
    assert {r.category for r in RULES} == set(CATEGORIES)


def test_every_incident_of_these_categories_raises_an_alert_on_its_host_and_entity(
        scenario: tuple[Manifest, list[Alert]]) -> None:
    manifest, alerts = scenario
    incidents = [i for i in manifest.incidents if i.category in CATEGORIES]
    assert len(incidents) >= 15
    missed = [(i.category, i.host, i.entity) for i in incidents
              if not any(a.category == i.category and a.host == i.host and _mentions(a, i.entity)
                         for a in alerts)]
    assert missed == []


def test_nothing_but_the_incidents_raises_these_categories(scenario: tuple[Manifest, list[Alert]]) -> None:
    """Benign background (ops logins and sudo, cron, timers, instance churn on br-int, the
    systemd stops and starts of the reboot...) raises nothing: every alert lies inside an
    incident on the same host."""
    manifest, alerts = scenario
    slack = timedelta(minutes=1)

    def explained(alert: Alert) -> bool:
        return any(i.host == alert.host and datetime.fromisoformat(i.start) - slack <= alert.time
                   <= datetime.fromisoformat(i.end) + slack for i in manifest.incidents)

    assert [(a.title, a.host, a.summary) for a in alerts if not explained(a)] == []


def test_one_reboot_gives_one_restart_alert_and_no_service_alerts(
        scenario: tuple[Manifest, list[Alert]]) -> None:
    manifest, alerts = scenario
    [reboot] = manifest.by_category("os.restart")
    on_host = Counter(a.category for a in alerts if a.host == reboot.host)
    assert on_host == {"os.restart": 1}


def test_the_aide_change_explained_by_the_package_upgrade_is_lowered_and_the_others_are_not(
        scenario: tuple[Manifest, list[Alert]]) -> None:
    manifest, alerts = scenario
    for incident in manifest.by_category("integrity.file_changed"):
        [alert] = [a for a in alerts if a.path == incident.entity]
        if incident.explained:
            assert alert.severity == "low" and alert.details["tags"] == ["explained"]
            assert "upgrade nova-api" in alert.details["explained_by"]["raw"]
        else:
            assert alert.severity == "high" and "explained_by" not in alert.details


def test_the_flush_on_a_compute_node_is_critical(scenario: tuple[Manifest, list[Alert]]) -> None:
    manifest, alerts = scenario
    [flush] = manifest.by_category("firewall.flush")
    [alert] = [a for a in alerts if a.category == "firewall.flush"]
    assert (alert.host, alert.severity) == (flush.host, "critical")


def test_the_benign_openstack_sample_raises_nothing(corpus: Path) -> None:
    assert analyze(corpus / "openstack/loghub/OpenStack_2k.log") == []


@pytest.mark.parametrize(("path", "expected"), [
    # one Accepted password in 2,000 lines of break-in attempts: a login from a new address
    ("linux-auth/loghub/OpenSSH_2k.log", {"Login from an address never seen before": 1}),
    # /var/log/messages of 2005 holds one kernel boot
    ("linux-auth/loghub/Linux_2k.log", {"Node rebooted or shut down": 1}),
    # a boot, iptables tables registered by modprobe (entries=0, not a flush), services stopping,
    # and auditd's own halt record (DAEMON_END, 28 minutes after the boot, no shutdown near it)
    ("auditd/go-libaudit/auparse/audit-rhel7.log",
     {"Node rebooted or shut down": 1, "Security daemon stopped outside a maintenance window": 1}),
])
def test_real_logs_raise_only_what_they_hold(corpus: Path, path: str, expected: dict[str, int]) -> None:
    assert Counter(a.title for a in analyze(corpus / path)) == expected
