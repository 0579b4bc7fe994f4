"""The sink registry: one explicit table, ``type -> module:Class``, imported when used."""

from __future__ import annotations

import importlib
from typing import Any, Final

SINKS: Final = {
    "webhook": "stackwatch.alerts.webhook:WebhookSink",
    "smtp": "stackwatch.alerts.smtp:SmtpSink",
    "syslog": "stackwatch.alerts.syslog_forward:SyslogForwardSink",
    "file": "stackwatch.alerts.file:FileSink",
    "alertmanager": "stackwatch.alerts.alertmanager:AlertmanagerSink",
    "chat": "stackwatch.alerts.chat:ChatSink",
    "matrix": "stackwatch.alerts.matrix:MatrixSink",
}


def sink_class(kind: str) -> Any:
    module_name, _, attribute = SINKS[kind].partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def settings_class(kind: str) -> Any:
    return sink_class(kind).Settings


def create_sink(settings: Any) -> Any:
    return sink_class(settings.type)(settings)
