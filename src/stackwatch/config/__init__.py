"""Configuration of ``stackwatch serve``: typed settings, loaded with file:line errors, secrets
by reference (``$env:NAME`` / ``$file:/path``)."""

from stackwatch.config.loader import load_config, parse_config
from stackwatch.config.secrets import Secret
from stackwatch.config.settings import Settings

__all__ = ["Secret", "Settings", "load_config", "parse_config"]
