"""The parser registry: three explicit tables naming every built-in parser.

Built-ins register the way a plugin would: ``name -> "module:attribute"`` in a
``stackwatch.core.registry.Registry``, the name being the parser's own ``name`` (or, for a JSON
shape, its module's). A parser that fails to import is reported (``load_errors``) and skipped; it
does not take the program down. The tables are loaded once, by the ``@cache`` functions below
(framers and sources take their parsers when built); per line only their cached results are read
(``json_shapes()``'s tuple, ``message_parser_for``'s dict look-up), never the registry itself.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, Final

from stackwatch.core.registry import Registry
from stackwatch.parsers.base import MessageParser, RecordParser

JsonShape = Callable[..., Any]

load_errors: list[str] = []
"""What failed to load, one message each (shared by the three tables)."""

# Order matters: the first parser whose ``sniff`` accepts a line starts the record.
# Cheap, specific sniffers come first; the broad syslog one near the end.
RECORD_PARSERS: Final[Registry[RecordParser]] = Registry("record parser", {
    "json": "stackwatch.parsers.json_record:PARSER",  # '{...}': CADF, notifications, eve.json, wazuh, oslo
    "auditd": "stackwatch.parsers.auditd:PARSER",  # 'type=SYSCALL msg=audit(...)'
    "oslo_log": "stackwatch.parsers.oslo_log:PARSER",  # '2017-05-16 00:00:00.008 25746 INFO nova...'
    "httpd_access": "stackwatch.parsers.httpd_access:PARSER",  # '10.0.0.1 - - [16/May/2017:...] "POST ..."'
    "uwsgi_request": "stackwatch.parsers.uwsgi_request:PARSER",  # '[pid: 1|app: 0|req: 1/1] 10.0.0.1 () ...'
    "aide": "stackwatch.parsers.aide:PARSER",  # multi-line 'AIDE found differences...' reports
    "rkhunter": "stackwatch.parsers.rkhunter:PARSER",  # '[12:00:01] Warning: ...' (rkhunter.log)
    "clamav_log": "stackwatch.parsers.clamav:LOG_PARSER",  # clamd LogFile, clamscan output and --log files
    "suricata_fast": "stackwatch.parsers.suricata:FAST_PARSER",  # suricata fast.log
    "ossec": "stackwatch.parsers.ossec:PARSER",  # OSSEC/Wazuh alerts.log ('** Alert 1234.5: ...')
    "pkg": "stackwatch.parsers.pkg:PARSER",  # dpkg.log / dnf.rpm.log / yum.log lines
    "syslog": "stackwatch.parsers.syslog:PARSER",  # RFC 3164 / 5424 / rsyslog file formats (carries programs)
}, load_errors)

# Programs carried inside syslog (and journald) records.
MESSAGE_PARSERS: Final[Registry[MessageParser]] = Registry("message parser", {
    "auth": "stackwatch.parsers.auth:PARSER",  # sshd, sudo, su, login, systemd-logind, PAM
    "systemd": "stackwatch.parsers.systemd:PARSER",  # systemd unit start/stop/fail
    "kernel_net": "stackwatch.parsers.kernel_net:PARSER",  # kernel banner, bridges, NIC link, NetworkManager
    "hardware": "stackwatch.parsers.hardware:PARSER",  # smartd, ipmiseld / ipmievd / ipmitool SEL lines
    "ovs": "stackwatch.parsers.ovs:PARSER",  # ovs-vswitchd / ovs-vsctl
    "haproxy": "stackwatch.parsers.haproxy:MESSAGE_PARSER",  # haproxy's HTTP log (option httplog)
    "auditd": "stackwatch.parsers.auditd:MESSAGE_PARSER",  # audispd / audit records forwarded to syslog
    "aide": "stackwatch.parsers.aide:MESSAGE_PARSER",  # AIDE one-line syslog format
    "clamav": "stackwatch.parsers.clamav:PARSER",  # clamd / clamscan / freshclam
    "rkhunter": "stackwatch.parsers.rkhunter:MESSAGE_PARSER",
    "suricata": "stackwatch.parsers.suricata:MESSAGE_PARSER",  # suricata fast-style alerts via syslog
    "ossec": "stackwatch.parsers.ossec:MESSAGE_PARSER",  # ossec/wazuh alerts via syslog
    "pkg": "stackwatch.parsers.pkg:MESSAGE_PARSER",  # apt/yum/dnf via syslog
    "oslo_log": "stackwatch.parsers.oslo_log:MESSAGE_PARSER",  # OpenStack services logging through syslog
}, load_errors)

# Shapes of JSON documents; json_record tries each in turn. Each is a callable
# ``(obj: dict, raw: str, ctx: ParseContext) -> list[Event] | None``.
JSON_SHAPES: Final[Registry[JsonShape]] = Registry("JSON shape", {
    "notification": "stackwatch.parsers.notification:from_json",  # oslo.messaging v2 envelope or plain
    "cadf": "stackwatch.parsers.cadf:from_json",  # a bare CADF event (pycadf shape)
    "oslo_log": "stackwatch.parsers.oslo_log:from_json",  # oslo.log JSONFormatter output
    "suricata": "stackwatch.parsers.suricata:from_json",  # eve.json
    "ossec": "stackwatch.parsers.ossec:from_json",  # wazuh alerts.json
}, load_errors)


@cache
def record_parsers() -> tuple[RecordParser, ...]:
    """Every record parser that loads, in the order they are tried."""
    return tuple(RECORD_PARSERS.load_all().values())


@cache
def message_parsers() -> dict[str, MessageParser]:
    """program name -> message parser (first registration wins)."""
    table: dict[str, MessageParser] = {}
    for parser in MESSAGE_PARSERS.load_all().values():
        for program in parser.programs:
            table.setdefault(program, parser)
    return table


@cache
def json_shapes() -> tuple[JsonShape, ...]:
    """Every JSON shape that loads, in the order json_record tries them."""
    return tuple(JSON_SHAPES.load_all().values())


def record_parser(name: str) -> RecordParser:
    """The record parser named ``name`` (a stored record's, a source's preferred one): a
    ``KeyError`` when there is none, an ``ImportError`` naming it when it cannot load."""
    return RECORD_PARSERS.load(name)


def message_parser_for(program: str) -> MessageParser | None:
    """The message parser for a syslog program name (exact, then without a suffix such as
    ``nova-compute`` -> ``nova-*`` handled by the parsers' own program sets)."""
    table = message_parsers()
    parser = table.get(program)
    if parser is None and "(" in program:  # 'sshd(pam_unix)' as written by old syslogd
        parser = table.get(program.split("(", 1)[0])
    return parser
