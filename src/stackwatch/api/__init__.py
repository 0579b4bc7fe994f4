"""The HTTP API and dashboard: ``create_app(settings, services)`` returns the ASGI app."""

from __future__ import annotations

from stackwatch.api.app import create_app
from stackwatch.api.services import Services
from stackwatch.api.settings import WebSettings

__all__ = ["Services", "WebSettings", "create_app"]
