"""The parser registry: one explicit table naming every built-in parser.

Built-ins register the way a plugin would: by a ``module:attribute`` reference. A parser
that fails to import is reported (``load_errors``) and skipped; it does not take the
program down.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from functools import cache
from typing import Any

from stackwatch.parsers.base import MessageParser, RecordParser

log = logging.getLogger(__name__)

# Order matters: the first parser whose ``sniff`` accepts a line starts the record.
# Cheap, specific sniffers come first; the broad syslog one near the end.
RECORD_PARSERS: list[str] = [
    "stackwatch.parsers.json_record:PARSER",  # '{...}': CADF, oslo.messaging, eve.json, wazuh, oslo JSON log
    "stackwatch.parsers.auditd:PARSER",  # 'type=SYSCALL msg=audit(...)'
    "stackwatch.parsers.oslo_log:PARSER",  # '2017-05-16 00:00:00.008 25746 INFO nova...'
    "stackwatch.parsers.httpd_access:PARSER",  # '10.0.0.1 - - [16/May/2017:...] "POST /v3/auth/tokens"'
    "stackwatch.parsers.uwsgi_request:PARSER",  # '[pid: 1|app: 0|req: 1/1] 10.0.0.1 () {...} [...] POST ...'
    "stackwatch.parsers.aide:PARSER",  # multi-line 'AIDE found differences...' reports
    "stackwatch.parsers.rkhunter:PARSER",  # '[12:00:01] Warning: ...' (rkhunter.log)
    "stackwatch.parsers.clamav:LOG_PARSER",  # clamd LogFile, clamscan output and --log files
    "stackwatch.parsers.suricata:FAST_PARSER",  # suricata fast.log
    "stackwatch.parsers.ossec:PARSER",  # OSSEC/Wazuh alerts.log ('** Alert 1234.5: ...')
    "stackwatch.parsers.pkg:PARSER",  # dpkg.log / dnf.rpm.log / yum.log lines
    "stackwatch.parsers.syslog:PARSER",  # RFC 3164 / 5424 / rsyslog file formats (carries programs)
]

# Programs carried inside syslog (and journald) records.
MESSAGE_PARSERS: list[str] = [
    "stackwatch.parsers.auth:PARSER",  # sshd, sudo, su, login, systemd-logind, PAM
    "stackwatch.parsers.systemd:PARSER",  # systemd unit start/stop/fail
    "stackwatch.parsers.kernel_net:PARSER",  # kernel boot banner, bridge ports, NIC link, NetworkManager
    "stackwatch.parsers.hardware:PARSER",  # smartd, ipmiseld / ipmievd / ipmitool SEL lines
    "stackwatch.parsers.ovs:PARSER",  # ovs-vswitchd / ovs-vsctl
    "stackwatch.parsers.haproxy:MESSAGE_PARSER",  # haproxy's HTTP log (option httplog)
    "stackwatch.parsers.auditd:MESSAGE_PARSER",  # audispd / audit records forwarded to syslog
    "stackwatch.parsers.aide:MESSAGE_PARSER",  # AIDE one-line syslog format
    "stackwatch.parsers.clamav:PARSER",  # clamd / clamscan / freshclam
    "stackwatch.parsers.rkhunter:MESSAGE_PARSER",
    "stackwatch.parsers.suricata:MESSAGE_PARSER",  # suricata fast-style alerts via syslog
    "stackwatch.parsers.ossec:MESSAGE_PARSER",  # ossec/wazuh alerts via syslog
    "stackwatch.parsers.pkg:MESSAGE_PARSER",  # apt/yum/dnf via syslog
    "stackwatch.parsers.oslo_log:MESSAGE_PARSER",  # OpenStack services logging through syslog
]

# Shapes of JSON documents; json_record tries each in turn. Each is a callable
# ``(obj: dict, raw: str, ctx: ParseContext) -> list[Event] | None``.
JSON_SHAPES: list[str] = [
    "stackwatch.parsers.notification:from_json",  # oslo.messaging v2 envelope / plain notification dict
    "stackwatch.parsers.cadf:from_json",  # a bare CADF event (pycadf shape)
    "stackwatch.parsers.oslo_log:from_json",  # oslo.log JSONFormatter output
    "stackwatch.parsers.suricata:from_json",  # eve.json
    "stackwatch.parsers.ossec:from_json",  # wazuh alerts.json
]

JsonShape = Callable[..., Any]

load_errors: list[str] = []


def _load(reference: str) -> Any | None:
    module_name, _, attribute = reference.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except Exception as exc:  # a broken plugin is reported, never fatal
        message = f"parser {reference} failed to load: {type(exc).__name__}: {exc}"
        if message not in load_errors:
            load_errors.append(message)
            log.warning(message)
        return None


@cache
def record_parsers() -> tuple[RecordParser, ...]:
    return tuple(p for p in (_load(ref) for ref in RECORD_PARSERS) if p is not None)


@cache
def message_parsers() -> dict[str, MessageParser]:
    """program name -> message parser (first registration wins)."""
    table: dict[str, MessageParser] = {}
    for parser in (_load(ref) for ref in MESSAGE_PARSERS):
        if parser is None:
            continue
        for program in parser.programs:
            table.setdefault(program, parser)
    return table


@cache
def json_shapes() -> tuple[JsonShape, ...]:
    return tuple(s for s in (_load(ref) for ref in JSON_SHAPES) if s is not None)


def record_parser(name: str) -> RecordParser:
    for parser in record_parsers():
        if parser.name == name:
            return parser
    raise KeyError(f"no record parser named {name!r}")


def message_parser_for(program: str) -> MessageParser | None:
    """The message parser for a syslog program name (exact, then without a suffix such as
    ``nova-compute`` -> ``nova-*`` handled by the parsers' own program sets)."""
    table = message_parsers()
    parser = table.get(program)
    if parser is None and "(" in program:  # 'sshd(pam_unix)' as written by old syslogd
        parser = table.get(program.split("(", 1)[0])
    return parser
