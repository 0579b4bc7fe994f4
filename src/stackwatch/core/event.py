"""The normalized event every stage of stackwatch speaks.

This module imports nothing else of stackwatch. It uses CADF's vocabulary
(initiator / target / action / outcome / observer) so a keystone audit event maps
onto it one to one, and every other record (an sshd line, an auditd event, an
AIDE finding) is described in the same words.

Field reference (the one place every field is documented; README links here):

=================  ==========================================================
field              meaning
=================  ==========================================================
time               when the record says it happened (UTC, tz-aware). Falls
                   back to ``received`` when the record carries no time.
received           when stackwatch read the record (UTC, tz-aware).
host               the node that wrote the record: from the record itself when
                   it carries one (syslog HOSTNAME, publisher_id), else from the
                   source (``--host``, the ``<root>/<host>/<file>`` layout).
service            the program or OpenStack service: ``keystone``, ``nova-compute``,
                   ``sshd``, ``kernel``, ``ovs-vswitchd``, ``auditd``, ``aide``...
severity           one of SEVERITIES (syslog names, lower case).
message            the human message, without header/prefix.
kind               the record format that produced the event: ``oslo_log``,
                   ``syslog``, ``cadf``, ``notification``, ``auditd``, ``aide``,
                   ``httpd_access``, ``suricata``, ``ossec``... and ``unparsed``
                   for a record no parser knows (``raw`` kept, counted).
action             what was done, dotted and lower case (see ACTIONS below for
                   the ones rules rely on), e.g. ``authenticate``,
                   ``service.stop``, ``bridge.down``, ``deleted.project``.
outcome            ``success``, ``failure``, ``pending`` or ``unknown`` (CADF).
initiator          who did it: name, id, project, domain, source_ip, user_agent.
target             what it was done to: type, id, name (a user, a unit, a
                   bridge, a file path, an instance...).
observer           who reported it (CADF observer id / typeURI, or the daemon).
request_id         OpenStack request id (``req-...``) when the record has one.
attrs              format-specific fields (pid, logger, port, auditd keys...).
                   Read-only by convention; never mutated after parsing.
raw                the record verbatim, as read (multi-line records joined
                   with ``\\n``). Undecodable bytes are kept via surrogateescape,
                   so ``raw_bytes()`` gives back exactly what was read.
origin             where the record came from: ``file:/path``, ``syslog:udp``,
                   ``amqp:keystone``, ``stdin``.
ref                a stable, human-readable locator of the record within its
                   origin (``keystone.log:1234``); used as evidence id.
=================  ==========================================================
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import msgspec

SEVERITIES: Final = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
"""Normalized severities, lowest first (syslog's names)."""

SEVERITY_RANK: Final = {name: rank for rank, name in enumerate(SEVERITIES)}

OUTCOMES: Final = ("success", "failure", "pending", "unknown")

# Actions that built-in rules rely on. Parsers may emit others; these are the
# contract between parsers and rules, so a parser that recognises one of these
# situations must use exactly this name.
ACTIONS: Final = {
    "authenticate": "a login attempt (keystone token request, sshd, PAM, su, login)",
    "session.open": "a login session opened (PAM session opened, sshd Accepted)",
    "session.close": "a login session closed",
    "privilege.escalate": "sudo / su to another user",
    "account.locked": "an account was locked out",
    "password.expired": "a login refused because the password expired",
    "token.validate": "a token validation (failure means invalid/expired token)",
    "service.start": "a service/unit started",
    "service.stop": "a service/unit stopped",
    "service.fail": "a service/unit failed or crashed",
    "system.boot": "the host booted (kernel banner, systemd, auditd SYSTEM_BOOT)",
    "system.shutdown": "the host is shutting down or rebooting",
    "bridge.down": "a bridge or its port went down / disabled",
    "bridge.deleted": "a bridge was deleted",
    "port.deleted": "a port/interface was removed from a bridge",
    "link.down": "a NIC lost its link",
    "firewall.flush": "firewall rules flushed or a rule set emptied",
    "firewall.change": "firewall configuration changed (NETFILTER_CFG, iptables exec)",
    "process.exec": "a process was executed (auditd EXECVE)",
    "file.added": "file-integrity check: a file was added",
    "file.removed": "file-integrity check: a file was removed",
    "file.changed": "file-integrity check: a file changed",
    "malware.found": "antivirus found malware",
    "rootkit.warning": "rootkit scanner warning",
    "ids.alert": "an IDS/HIDS alert (Suricata, OSSEC/Wazuh)",
    "http.request": "an HTTP request (WSGI / Apache access)",
    "package.install": "a package was installed/updated/removed (dpkg, apt, yum, dnf)",
    "hardware.error": "a hardware fault (machine check, EDAC, disk I/O or filesystem error, SMART, IPMI SEL, "
                      "NIC reset, thermal throttling); attrs.component says which",
    "log.level_change": "a service's log level changed",
    # Recognised by parsers for context and enrichment; no built-in rule counts them as attempts.
    "user.not_found": "a login named an unknown user (keystone 'Could not find user', sshd 'Invalid user')",
    "authenticate.exceeded": "a summary of failures already logged (sshd max tries, PAM 'N more failures')",
    "ssh.connect": "an SSH connection was opened",
    "ssh.disconnect": "an SSH connection closed (attrs.preauth when before authentication)",
    "ssh.protocol_error": "an SSH protocol/negotiation error",
    "ssh.reverse_dns_mismatch": "sshd's 'POSSIBLE BREAK-IN ATTEMPT' reverse-DNS warning",
    "connection.refused": "a connection refused by a daemon (tcp wrappers, MaxStartups...)",
    "account.created": "a local account was created (auditd ADD_USER, useradd)",
    "account.deleted": "a local account was deleted",
    "service.reload": "a service/unit reloaded its configuration",
    "time.change": "the system clock was changed",
    "link.up": "a NIC link came up",
    "bridge.port_state": "a bridge port changed state other than disabled (learning, forwarding...)",
    "port.added": "a port/interface was added to a bridge",
    "bridge.added": "a bridge was created",
    "firewall.log": "a packet logged by a netfilter LOG rule",
    "integrity.check": "a file-integrity run's summary (counts of added/removed/changed)",
    "av.update": "antivirus signature update (attrs say whether it failed)",
    "av.scan": "an antivirus scan run ended (clamscan summary: attrs.infected, scanned_files)",
    "av.reload": "antivirus signature database reloaded",
    "ids.response": "an IDS active response (e.g. OSSEC firewall-drop)",
    "ids.<event_type>": "a Suricata eve record other than an alert (ids.flow, ids.dns, ids.http...)",
    "monitor.heartbeat": "stackwatch's own heartbeat (kind heartbeat), watched for pipeline stalls",
}
"""Notifications and CADF events keep their own vocabulary as the action: the CADF action
(``deleted.project``, ``created.role_assignment``, ``read/list``) or the notification's
event_type (``compute.instance.delete.end``, ``volume.attach.end``)."""


class Initiator(msgspec.Struct, frozen=True, omit_defaults=True):
    """Who did it."""

    name: str | None = None  # user name (keystone username, unix account)
    id: str | None = None  # user id (keystone user id, uid)
    project: str | None = None  # project id (or name when only that is known)
    domain: str | None = None  # domain id
    source_ip: str | None = None  # client address (IPv4/IPv6 text form, or host name)
    user_agent: str | None = None


class Target(msgspec.Struct, frozen=True, omit_defaults=True):
    """What it was done to."""

    type: str | None = None  # "user", "project", "unit", "bridge", "file", "instance", CADF typeURI...
    id: str | None = None
    name: str | None = None


NO_INITIATOR: Final = Initiator()
NO_TARGET: Final = Target()


class Event(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One normalized record. Immutable; build a new one with ``msgspec.structs.replace``."""

    time: datetime
    received: datetime
    host: str = ""
    service: str = ""
    severity: str = "info"
    message: str = ""
    kind: str = "unparsed"
    action: str | None = None
    outcome: str | None = None
    initiator: Initiator = NO_INITIATOR
    target: Target = NO_TARGET
    observer: str | None = None
    request_id: str | None = None
    attrs: dict[str, Any] = msgspec.field(default_factory=dict)
    raw: str = ""
    origin: str = ""
    ref: str = ""

    def raw_bytes(self) -> bytes:
        """The record exactly as it was read."""
        return self.raw.encode("utf-8", "surrogateescape")


def replace(event: Event, **changes: Any) -> Event:
    """A copy of ``event`` with ``changes`` applied (events are immutable)."""
    return msgspec.structs.replace(event, **changes)


_encoder = msgspec.json.Encoder()


def to_json(event: Event) -> bytes:
    """Canonical JSON of an event (defaults omitted)."""
    return _encoder.encode(event)


def from_json(data: bytes | str) -> Event:
    return msgspec.json.decode(data, type=Event)


def field_value(event: Event, path: str) -> Any:
    """Value of a dotted field path (``initiator.source_ip``, ``attrs.logger``); None when absent."""
    head, _, rest = path.partition(".")
    value: Any = getattr(event, head, None)
    while rest and value is not None:
        head, _, rest = rest.partition(".")
        value = value.get(head) if isinstance(value, dict) else getattr(value, head, None)
    return value


def normalize_severity(level: str) -> str:
    """Map the many spellings of a level onto SEVERITIES (unknown -> "info")."""
    return _SEVERITY_ALIASES.get(level.lower(), "info") if level else "info"


_SEVERITY_ALIASES: Final = {
    "trace": "debug",
    "debug": "debug",
    "info": "info",
    "information": "info",
    "informational": "info",
    "audit": "notice",
    "notice": "notice",
    "warn": "warning",
    "warning": "warning",
    "err": "error",
    "error": "error",
    "exception": "error",
    "crit": "critical",
    "critical": "critical",
    "fatal": "critical",
    "alert": "alert",
    "emerg": "emergency",
    "emergency": "emergency",
    "panic": "emergency",
    "sample": "info",
}
