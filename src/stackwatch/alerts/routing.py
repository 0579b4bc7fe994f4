"""Which sinks get an alert: routes match by category (glob) and lowest severity.
Without routes every sink gets every alert."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from stackwatch.config.settings import RouteSettings
from stackwatch.core.alert import ALERT_SEVERITIES

_RANK = {name: rank for rank, name in enumerate(ALERT_SEVERITIES)}


class Router:
    def __init__(self, routes: Sequence[RouteSettings], sinks: Sequence[str]) -> None:
        self.routes = list(routes)
        self.sinks = list(sinks)

    def route(self, category: str, severity: str) -> list[str]:
        """Sink names for an alert, each once, in route order."""
        if not self.routes:
            return list(self.sinks)
        rank = _RANK.get(severity, 0)
        out: list[str] = []
        for route in self.routes:
            if rank < _RANK[route.min_severity]:
                continue
            if not any(fnmatchcase(category, pattern) for pattern in route.categories):
                continue
            out.extend(name for name in route.sinks if name not in out)
        return out
