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


def _kill_sessions(url: str) -> None:
    """What a server restart or failover does to the store's session."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE application_name = 'stackwatch' AND datname = current_database()")


def test_a_lost_connection_is_made_again_for_reads_and_the_writer(pg_database: str) -> None:
    from stackwatch.store.base import EventQuery
    from stackwatch.store.postgres.verify import verify_postgres
    from stackwatch.testing import make_event

    with open_store(f"{pg_database}?schema=revive", writer="w", batch_size=1000) as store:
        store.append_events([make_event(message=f"before {n}") for n in range(5)])
        store.flush()
        _kill_sessions(pg_database)
        assert store.count_events(EventQuery()) == 5  # read again on a new connection
        store.append_events([make_event(message="buffered while connected")])
        _kill_sessions(pg_database)
        with pytest.raises(StoreError):
            store.flush()  # this commit is lost with the connection...
        seqs = store.append_events([make_event(message="after")])
        store.flush()  # ...and retried by the writer, which took its log back
        assert seqs == [7]
        assert store.count_events(EventQuery()) == 7
    assert not verify_postgres(f"{pg_database}?schema=revive")["w"].failed
