"""Alerts: what a rule raises, and the fixed category vocabulary."""

from __future__ import annotations

import copy
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


class AlertSnapshot(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An alert as one change left it, for delivery: the engine keeps folding repeats into its
    live ``Alert`` while a sink may still be sending. Alert's fields in Alert's order, so both
    render to the same JSON (tests/core/test_alert.py keeps them in step); frozen, with its own
    evidence (a tuple) and details (a copy)."""

    rule: str
    title: str
    category: str
    severity: str
    time: datetime
    last_seen: datetime
    key: str = ""
    host: str | None = None
    summary: str = ""
    count: int = 1
    evidence: tuple[Evidence, ...] = ()
    source_ip: str | None = None
    user: str | None = None
    project: str | None = None
    service: str | None = None
    bridge: str | None = None
    path: str | None = None
    status: str = "open"
    details: dict[str, object] = msgspec.field(default_factory=dict)

    @classmethod
    def of(cls, alert: Alert | AlertSnapshot) -> AlertSnapshot:
        """``alert`` as it stands now (a snapshot is already one)."""
        if isinstance(alert, AlertSnapshot):
            return alert
        fields = msgspec.structs.asdict(alert)
        fields["evidence"] = tuple(alert.evidence)
        # Deep: a rule may later change a list or dict nested in details, in place.
        fields["details"] = copy.deepcopy(alert.details)
        return cls(**fields)


def alert_to_dict(alert: Alert | AlertSnapshot) -> dict[str, object]:
    """The JSON shape `analyze --format json` prints and sinks send: every field not at its
    default, times in ISO 8601."""
    fields: dict[str, object] = msgspec.to_builtins(alert)
    evidence = fields.get("evidence")
    if isinstance(evidence, tuple):  # a snapshot's; to_builtins keeps tuples, the JSON shape is a list
        fields["evidence"] = list(evidence)
    return fields
