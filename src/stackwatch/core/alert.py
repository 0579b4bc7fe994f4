"""Alerts: what a rule raises, and the fixed category vocabulary."""

from __future__ import annotations

from datetime import datetime
from typing import Final

import msgspec

CATEGORIES: Final = {
    "auth.bruteforce": "many failed logins from one source",
    "auth.spraying": "one source trying many accounts (password spraying)",
    "auth.targeted_account": "one account attacked: many failures or many sources",
    "auth.success_after_failures": "a successful login after a run of failures",
    "auth.lockout": "an account locked out or refused for an expired password",
    "logging.silence": "a log source stopped writing (or never started)",
    "logging.level_lowered": "a source stopped writing INFO/DEBUG but still writes WARNING/ERROR",
    "service.unscheduled_stop": "a monitored service stopped outside a maintenance window",
    "service.unscheduled_start": "a monitored service started outside a maintenance window",
    "os.login": "a user logged in to a node's OS",
    "os.privilege": "a user became root (sudo, su)",
    "os.restart": "a node booted, rebooted or shut down",
    "network.bridge_down": "a network bridge, its port or a NIC went down",
    "firewall.flush": "firewall rules were flushed or wiped",
    "identity.orphaned_resources": "resources left behind by a deleted user, project or domain",
    "integrity.file_changed": "file-integrity monitoring found added, removed or changed files",
    "malware.detected": "antivirus or rootkit scanner found something",
    "ids.alert": "an IDS/HIDS alert (Suricata, OSSEC, Wazuh)",
    "usage.anomaly": "a project or user using the cloud far from its own habits (bursts, GPU flavors, "
                     "new images, mass snapshots, quota errors, a new credential launching at once)",
    "hardware.fault": "a node's hardware reports errors (machine checks, ECC, disk I/O, SMART, IPMI SEL, "
                      "NIC resets, thermal throttling)",
}
"""The fixed, documented vocabulary of alert categories."""

ALERT_SEVERITIES: Final = ("low", "medium", "high", "critical")


class Evidence(msgspec.Struct, frozen=True):
    """One record behind an alert: its locator and its raw text."""

    ref: str
    raw: str
    time: datetime | None = None


class Alert(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A rule firing. Mutable only while the engine is still folding repeats into it
    (count, last_seen, evidence); frozen in spirit once emitted."""

    rule: str  # rule id (UUID)
    title: str
    category: str
    severity: str  # one of ALERT_SEVERITIES
    time: datetime  # first seen
    last_seen: datetime
    key: str = ""  # the grouping key the rule fired for (dedup identity with `rule`)
    host: str | None = None
    summary: str = ""
    count: int = 1  # how many times it fired (folded repeats)
    evidence: list[Evidence] = msgspec.field(default_factory=list)
    source_ip: str | None = None
    user: str | None = None
    project: str | None = None
    service: str | None = None
    bridge: str | None = None
    path: str | None = None
    status: str = "open"  # open / acknowledged / resolved
    details: dict[str, object] = msgspec.field(default_factory=dict)


def alert_to_dict(alert: Alert) -> dict[str, object]:
    """The JSON shape `analyze --format json` prints: every field, times in ISO 8601."""
    return msgspec.to_builtins(alert)
