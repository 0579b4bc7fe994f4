"""Sigma -> stackwatch vocabulary: log sources, field names and alert categories, in ONE place.

sigma.py compiles SigmaHQ rules into predicates over our ``Event``; every name it needs to
translate is looked up in the tables below, and anything not listed is a ``RuleError``
(never a field silently read as absent).

Log sources (``LOGSOURCES``)
============================

==============================  =================================  ===========================
Sigma logsource                 events it applies to (guard)        index hint
==============================  =================================  ===========================
product linux, service auditd   kind == auditd                      kind: auditd
product linux,                  kind == auditd and                  kind: auditd,
category process_creation       action == process.exec (EXECVE)     action: process.exec
product linux, service sshd     service == sshd                     service: sshd
product linux, service auth     service in AUTH_SERVICES            service: AUTH_SERVICES
product linux, service sudo     service == sudo                     service: sudo
product linux, service cron     service in cron, crond              service: cron, crond
product linux, service clamav   service in clamd, clamscan, ...     service: (same)
product linux, service syslog   kind == syslog                      kind: syslog
product linux (nothing else)    every event                         (none)
==============================  =================================  ===========================

Any other product, service or category (windows, file_event, network_connection...) is an
error: we have no events that could honestly satisfy it.

Fields (``FIELDS`` per profile, then ``EVENT_FIELDS``, then the auditd passthrough)
===================================================================================

``process_creation`` (from an auditd EXECVE event):

=================  ====================================================================
Image              attrs.exe (the resolved executable path, as auditd records it)
CommandLine        attrs.cmdline (argv joined with spaces, hex-decoded)
User               initiator.name (the AUID/UID name when the log is enriched)
CurrentDirectory   attrs.cwd
ProcessId          attrs.pid
ParentProcessId    attrs.ppid
LogonId            attrs.ses
ParentImage, ParentCommandLine, OriginalFileName, Hashes, ...: not recorded by auditd:
the rule is rejected rather than evaluated with a field that is always absent.
=================  ====================================================================

``auditd`` (one event = all records of one serial, see parsers/auditd.py):

=================  ====================================================================
type               ANY of attrs.records (``type: EXECVE`` holds for a SYSCALL+EXECVE
                   event; ``not type: X`` means no record of type X)
a0, a1, ... aN     attrs.argv[N] when the event has an EXECVE, else attrs.aN (the raw
                   SYSCALL argument)
argc               attrs.argc, else len(attrs.argv)
name               ANY of attrs.paths (PATH records), else attrs.name
anything else      attrs.<name> as written by auditd (exe, comm, key, syscall, uid, auid,
                   cwd, unit, proctitle, SYSCALL/AUID/UID enriched names, ...)
=================  ====================================================================

Every log source also accepts our own Event field names (``host``, ``service``,
``message``, ``action``, ``outcome``, ``initiator.source_ip``, ``target.name``,
``attrs.<key>``...; see core/event.py), so a Sigma rule can be written against the
normalised event directly.

Keywords (a detection that is a plain list) search the event's full text: ``raw``, plus
``message`` when the message is not already part of raw (auditd EXECVE events carry their
hex-decoded command line only in ``message``).

Categories (``category_for``)
=============================

1. a custom top-level attribute ``stackwatch-category: <category>`` in the rule wins;
2. else the first ATT&CK technique tag found in ``TECHNIQUE_CATEGORIES`` (sub-technique
   before technique), e.g. t1562.004 -> firewall.flush, t1529 -> os.restart, t1110 ->
   auth.bruteforce, t1078 / t1021.004 -> os.login, t1548 / t1068 -> os.privilege;
3. else a rule that carries any ``attack.*`` or ``cve.*`` tag is a host-intrusion signature
   and maps to ``ids.alert``;
4. else the rule is rejected: we cannot say what it detects.

Severity: Sigma level informational/low -> low, medium -> medium, high -> high,
critical -> critical (no level: medium).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

AUTH_SERVICES: Final = frozenset({
    "sshd", "sudo", "su", "login", "systemd-logind", "passwd", "chpasswd", "chage", "useradd",
    "userdel", "usermod", "groupadd", "groupdel", "gpasswd", "pkexec", "polkitd", "cron", "crond",
    "unix_chkpwd", "sssd", "gdm-password", "lightdm",
})


@dataclass(frozen=True)
class LogSource:
    """What a Sigma logsource means for our events."""

    profile: str  # key into FIELDS
    kinds: frozenset[str] = frozenset()  # event.kind must be one of these (empty: any)
    services: frozenset[str] = frozenset()  # event.service must be one of these (empty: any)
    actions: frozenset[str] = frozenset()  # event.action must be one of these (empty: any)

    @property
    def index(self) -> dict[str, frozenset[str]]:
        hints = {"kind": self.kinds, "service": self.services, "action": self.actions}
        return {dim: values for dim, values in hints.items() if values}


_AUDITD = frozenset({"auditd"})

LOGSOURCES: Final[dict[tuple[str, str], LogSource]] = {
    # (kind of key, name) -> LogSource; kind of key is "service", "category" or "" (product only)
    ("service", "auditd"): LogSource("auditd", kinds=_AUDITD),
    ("category", "process_creation"): LogSource("process_creation", kinds=_AUDITD,
                                                actions=frozenset({"process.exec"})),
    ("service", "sshd"): LogSource("syslog", services=frozenset({"sshd"})),
    ("service", "auth"): LogSource("syslog", services=AUTH_SERVICES),
    ("service", "sudo"): LogSource("syslog", services=frozenset({"sudo"})),
    ("service", "cron"): LogSource("syslog", services=frozenset({"cron", "crond"})),
    ("service", "clamav"): LogSource("syslog", services=frozenset({"clamd", "clamscan", "freshclam"})),
    ("service", "syslog"): LogSource("syslog", kinds=frozenset({"syslog"})),
    ("", ""): LogSource("linux"),
}
"""Supported logsources of ``product: linux``."""

SUPPORTED_PRODUCTS: Final = frozenset({"linux"})

FIELDS: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    # profile -> Sigma field -> event paths tried in order (first non-None wins).
    # Special paths: "@records" (any record type), "@argv:N", "@argc", "@paths".
    "process_creation": {
        "Image": ("attrs.exe",),
        "CommandLine": ("attrs.cmdline",),
        "User": ("initiator.name",),
        "CurrentDirectory": ("attrs.cwd",),
        "ProcessId": ("attrs.pid",),
        "ParentProcessId": ("attrs.ppid",),
        "LogonId": ("attrs.ses",),
    },
    "auditd": {
        "type": ("@records",),
        "argc": ("@argc",),
        "name": ("@paths", "attrs.name"),
    },
    "syslog": {},
    "linux": {},
}
"""Sigma field names per profile (see the module docstring)."""

UNAVAILABLE: Final[dict[str, dict[str, str]]] = {
    "process_creation": {
        "ParentImage": "auditd EXECVE events do not record the parent executable",
        "ParentCommandLine": "auditd EXECVE events do not record the parent command line",
        "ParentUser": "auditd EXECVE events do not record the parent's user",
        "OriginalFileName": "Linux executables carry no original file name",
        "Hashes": "auditd does not hash executables",
        "Product": "Linux executables carry no product metadata",
        "Description": "Linux executables carry no description metadata",
        "Company": "Linux executables carry no company metadata",
        "IntegrityLevel": "Linux has no integrity levels",
        "ParentProcessGuid": "no process GUIDs on Linux",
        "ProcessGuid": "no process GUIDs on Linux",
    },
}
"""Fields a profile knows about but cannot provide: the reason given in the RuleError."""

EVENT_FIELDS: Final = frozenset({
    "host", "service", "severity", "message", "kind", "action", "outcome", "observer",
    "request_id", "raw", "origin", "ref",
    "initiator.name", "initiator.id", "initiator.project", "initiator.domain",
    "initiator.source_ip", "initiator.user_agent", "target.type", "target.id", "target.name",
})
"""Our own Event field names, accepted in every profile (plus ``attrs.<key>``)."""

AUDITD_PASSTHROUGH_PROFILES: Final = frozenset({"auditd"})
"""Profiles where any other plain field name reads ``attrs.<name>`` (auditd's own keys)."""

LEVEL_SEVERITY: Final = {
    "informational": "low", "low": "low", "medium": "medium", "high": "high", "critical": "critical",
}

TECHNIQUE_CATEGORIES: Final[dict[str, str]] = {
    # ATT&CK technique (lower case, from tags attack.tNNNN[.NNN]) -> our category
    "t1562.004": "firewall.flush",  # Impair Defenses: Disable or Modify System Firewall
    "t1529": "os.restart",  # System Shutdown/Reboot
    "t1110": "auth.bruteforce",  # Brute Force (all sub-techniques)
    "t1110.003": "auth.spraying",  # Password Spraying
    "t1078": "os.login",  # Valid Accounts
    "t1021.004": "os.login",  # Remote Services: SSH
    "t1548": "os.privilege",  # Abuse Elevation Control Mechanism (sudo, setuid)
    "t1068": "os.privilege",  # Exploitation for Privilege Escalation
    "t1169": "os.privilege",  # Sudo (deprecated id, still in old rules)
    "t1489": "service.unscheduled_stop",  # Service Stop
    "t1565.001": "integrity.file_changed",  # Stored Data Manipulation
    "t1014": "malware.detected",  # Rootkit
    "t1496": "malware.detected",  # Resource Hijacking (coin miners)
}
"""The ATT&CK techniques that have a category of their own; other tagged rules -> ids.alert."""

FALLBACK_CATEGORY: Final = "ids.alert"
CATEGORY_ATTRIBUTE: Final = "stackwatch-category"


def category_for(tags: list[str], custom: dict[str, object]) -> str | None:
    """Our alert category for a Sigma rule's tags (lower-case strings such as
    ``attack.t1562.004``) and custom attributes; None when it cannot be mapped."""
    override = custom.get(CATEGORY_ATTRIBUTE) or custom.get(CATEGORY_ATTRIBUTE.replace("-", "_"))
    if override:
        return str(override)
    techniques = [tag.removeprefix("attack.") for tag in tags if tag.startswith("attack.t")]
    for technique in techniques:  # the most specific mapping wins: sub-technique first
        if technique in TECHNIQUE_CATEGORIES:
            return TECHNIQUE_CATEGORIES[technique]
    for technique in techniques:
        parent = technique.partition(".")[0]
        if parent in TECHNIQUE_CATEGORIES:
            return TECHNIQUE_CATEGORIES[parent]
    if any(tag.startswith(("attack.", "cve.")) for tag in tags):
        return FALLBACK_CATEGORY
    return None
