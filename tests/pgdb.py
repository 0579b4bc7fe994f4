"""A fresh PostgreSQL database for tests: ``CREATE DATABASE sw_test_<random>``, dropped after.

PostgreSQL runs on this machine and in CI at 127.0.0.1:5432 (trust auth, user postgres;
``STACKWATCH_TEST_PG`` overrides the server URL). A test that needs it and cannot reach it
fails: the backend's tests never skip."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

SERVER = os.environ.get("STACKWATCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def url_of(database: str) -> str:
    base, _, _ = SERVER.rpartition("/")
    return f"{base}/{database}"


@contextmanager
def fresh_database(prefix: str = "sw_test") -> Iterator[str]:
    """The URL of a new, empty database, dropped (its sessions ended) on leaving."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield url_of(name)
    finally:
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
