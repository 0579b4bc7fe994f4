"""The source registry: one explicit table, ``type -> module:Class``, imported only when used
(so the AMQP source's aio-pika is needed only by those who configure it). A plugin would add
a line here; its class carries its ``Settings``."""

from __future__ import annotations

import importlib
from typing import Any, Final

SOURCES: Final = {
    "syslog_udp": "stackwatch.sources.syslog_udp:UdpSyslogSource",
    "syslog_tcp": "stackwatch.sources.syslog_tcp:TcpSyslogSource",
    "relp": "stackwatch.sources.relp:RelpSource",
    "tenant_syslog": "stackwatch.sources.tenant_syslog:TenantSyslogSource",
    "file": "stackwatch.sources.file_tail:FileTailSource",
    "amqp": "stackwatch.sources.amqp_notifications:AmqpNotificationSource",
}


def source_class(kind: str) -> Any:
    module_name, _, attribute = SOURCES[kind].partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def settings_class(kind: str) -> Any:
    return source_class(kind).Settings


def create_source(settings: Any, context: Any) -> Any:
    """A source instance for one ``sources:`` entry."""
    return source_class(settings.type)(settings, context)
