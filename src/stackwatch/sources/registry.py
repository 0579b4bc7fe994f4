"""The source registry: one explicit table, ``type -> module:Class``, imported only when used
(so the AMQP source's aio-pika is needed only by those who configure it). A plugin would add
a line here; its class carries its ``Settings``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from stackwatch.core.registry import Registry

if TYPE_CHECKING:  # the base imports the parsers; the registry itself needs none of it
    from stackwatch.sources.base import Source, SourceContext, SourceSettings

SOURCES: Final[Registry[type[Source]]] = Registry("source", {
    "syslog_udp": "stackwatch.sources.syslog_udp:UdpSyslogSource",
    "syslog_tcp": "stackwatch.sources.syslog_tcp:TcpSyslogSource",
    "relp": "stackwatch.sources.relp:RelpSource",
    "tenant_syslog": "stackwatch.sources.tenant_syslog:TenantSyslogSource",
    "file": "stackwatch.sources.file_tail:FileTailSource",
    "amqp": "stackwatch.sources.amqp_notifications:AmqpNotificationSource",
})


def source_class(kind: str) -> type[Source]:
    """The class of source type ``kind``: a ``KeyError`` when unknown, an ``ImportError``
    naming it when it cannot load (e.g. aio-pika missing)."""
    return SOURCES.load(kind)


def settings_class(kind: str) -> type[SourceSettings]:
    return source_class(kind).Settings


def create_source(settings: Any, context: SourceContext) -> Source:
    """A source instance for one ``sources:`` entry."""
    return source_class(settings.type)(settings, context)
