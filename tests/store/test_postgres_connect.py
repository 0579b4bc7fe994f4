"""Connecting to the shared store: the password from the settings, libpq's parameters (TLS)
passed through, stackwatch's own URL parameters taken out."""

from __future__ import annotations

import pytest

from stackwatch.config.loader import parse_config
from stackwatch.core.errors import StoreError
from stackwatch.store import open_store
from stackwatch.store.postgres.store import split_url


def test_own_parameters_are_taken_out_and_libpqs_kept() -> None:
    url, own = split_url("postgresql://sw@db1/sw?sslmode=verify-full&writer=ana1&keys=/k&schema=s2"
                         "&sslrootcert=/ca.pem")
    assert url == "postgresql://sw@db1/sw?sslmode=verify-full&sslrootcert=%2Fca.pem"
    assert own == {"writer": "ana1", "keys": "/k", "schema": "s2"}


def test_the_configured_password_reaches_the_server_not_the_configured_url(
        pg_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SW_TEST_DB_PW", "p@ss/word")
    database = pg_database.rpartition("/")[2]
    settings = parse_config(f"store:\n  url: postgresql://postgres@127.0.0.1:5432/{database}\n"
                            "  password: $env:SW_TEST_DB_PW\n  options: {writer: ana1}\n")
    assert "p%40ss" not in settings.store.url
    with open_store(settings.store.open_url(), **settings.store.options) as store:
        store.append_events([])
        assert store.writer_name == "ana1"


def test_tls_settings_pass_through_to_libpq(pg_database: str) -> None:
    with open_store(f"{pg_database}?sslmode=disable&writer=w"):
        pass
    # this server has no TLS: asking for it must fail, saying so (the parameter reached libpq)
    with pytest.raises(StoreError, match="SSL"):
        open_store(f"{pg_database}?sslmode=require")
