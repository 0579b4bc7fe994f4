"""WebSettings.from_mapping: defaults, secrets by reference, errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackwatch.api.settings import WebSettings
from stackwatch.core.errors import ConfigError


def test_defaults_listen_on_loopback_without_tls() -> None:
    settings = WebSettings.from_mapping({})
    assert settings.host_port == ("127.0.0.1", 8443)
    assert not settings.tls and not settings.secure_cookies


def test_tls_turns_on_secure_cookies(tmp_path: Path) -> None:
    settings = WebSettings.from_mapping({"tls_cert": tmp_path / "c.pem", "tls_key": tmp_path / "k.pem"})
    assert settings.tls and settings.secure_cookies


def test_secret_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SW_TEST_SECRET", "s3cret-value")
    assert (
        WebSettings.from_mapping({"session_secret": "$env:SW_TEST_SECRET"}).session_secret == "s3cret-value"
    )


def test_secret_from_file(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("from-file\n")
    assert (
        WebSettings.from_mapping({"session_secret": f"$file:{tmp_path / 'key'}"}).session_secret
        == "from-file"
    )


def test_literal_secrets_are_refused() -> None:
    with pytest.raises(ConfigError, match="session_secret: secrets must be references"):
        WebSettings.from_mapping({"session_secret": "hunter2"}, "stackwatch.yaml")


def test_login_rate_and_durations() -> None:
    settings = WebSettings.from_mapping(
        {"login_rate": {"per_ip": 3, "per_user": 2, "window": "10m"}, "silent_after": "1h"}
    )
    assert (settings.login_rate.per_ip, settings.login_rate.per_user, settings.login_rate.window) == (
        3,
        2,
        600.0,
    )
    assert settings.silent_after == 3600.0


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"listen": "nowhere"}, "listen"),
        ({"tls_cert": "/c.pem"}, "tls_cert"),
        ({"treshold": 1}, "treshold"),
        ({"login_rate": {"per_ip": 0}}, "login_rate.per_ip"),
        ({"expected_sources": [{"host": "ctl1"}]}, "expected_sources"),
    ],
)
def test_bad_settings_name_file_and_field(data: dict, field: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as info:
        WebSettings.from_mapping(data, "stackwatch.yaml")
    assert str(info.value).startswith(f"stackwatch.yaml: {field}:")
