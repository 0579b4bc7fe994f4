"""``stackwatch web`` settings: the config file's web: section, then command-line flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackwatch.cli.web import load_web_settings
from stackwatch.core.errors import ConfigError


def test_flags_override_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "stackwatch.yaml"
    config.write_text("web:\n  listen: 0.0.0.0:9000\n  silent_after: 30m\n")
    settings = load_web_settings(str(config), {"listen": "127.0.0.1:8001", "tls_cert": None})
    assert settings.host_port == ("127.0.0.1", 8001) and settings.silent_after == 1800


def test_errors_name_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "stackwatch.yaml"
    config.write_text("web:\n  session_secret: plain-text\n")
    with pytest.raises(ConfigError, match=r"stackwatch.yaml: session_secret"):
        load_web_settings(str(config), {})
