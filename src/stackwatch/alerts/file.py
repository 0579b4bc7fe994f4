"""File and stdout sink: one JSON document per line (``path: "-"`` is standard output)."""


from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from stackwatch.alerts.base import Notification, Sink, SinkSettings
from stackwatch.config.schema import setting


@dataclass(frozen=True, kw_only=True)
class FileSinkSettings(SinkSettings):
    path: str = setting("-", "file to append JSON lines to; - for standard output")


class FileSink(Sink):
    Settings = FileSinkSettings

    async def send(self, note: Notification) -> None:
        line = note.body() + b"\n"
        if self.settings.path == "-":
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
            return
        # O_APPEND writes of one line are atomic enough for a log; reopened per alert so that
        # logrotate needs no signal.
        fd = os.open(self.settings.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
