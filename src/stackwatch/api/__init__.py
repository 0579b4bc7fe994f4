"""The HTTP API and dashboard: ``create_app(settings, services)`` returns the ASGI app.

Imported lazily: modules of this package that need no web framework (analytics, users,
settings, timespan) serve the command line on an install without the web extras."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Services", "WebSettings", "create_app"]

_EXPORTS = {
    "create_app": "stackwatch.api.app",
    "Services": "stackwatch.api.services",
    "WebSettings": "stackwatch.api.settings",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
