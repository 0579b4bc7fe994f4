"""The sink registry: one explicit table, ``type -> module:Class``, imported when used."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from stackwatch.core.registry import Registry

if TYPE_CHECKING:
    from stackwatch.alerts.base import Sink, SinkSettings

SINKS: Final[Registry[type[Sink]]] = Registry("sink", {
    "webhook": "stackwatch.alerts.webhook:WebhookSink",
    "smtp": "stackwatch.alerts.smtp:SmtpSink",
    "syslog": "stackwatch.alerts.syslog_forward:SyslogForwardSink",
    "file": "stackwatch.alerts.file:FileSink",
    "alertmanager": "stackwatch.alerts.alertmanager:AlertmanagerSink",
    "chat": "stackwatch.alerts.chat:ChatSink",
    "matrix": "stackwatch.alerts.matrix:MatrixSink",
})


def sink_class(kind: str) -> type[Sink]:
    """The class of sink type ``kind``: a ``KeyError`` when unknown, an ``ImportError``
    naming it when it cannot load."""
    return SINKS.load(kind)


def settings_class(kind: str) -> type[SinkSettings]:
    return sink_class(kind).Settings


def create_sink(settings: Any) -> Sink:
    return sink_class(settings.type)(settings)
