"""The store registry: which backend a URL or path opens."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackwatch.core.errors import StoreError
from stackwatch.store import open_store
from stackwatch.store.sqlite import DB_FILE, SQLiteStore


def test_a_plain_path_opens_the_sqlite_store_there(tmp_path: Path) -> None:
    with open_store(tmp_path / "data") as store:
        assert isinstance(store, SQLiteStore)
    assert (tmp_path / "data" / DB_FILE).is_file()


def test_sqlite_urls_follow_the_sqlalchemy_slashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_store(f"sqlite:///{tmp_path}/abs"):  # tmp_path is absolute: four slashes in all
        pass
    assert (tmp_path / "abs" / DB_FILE).is_file()
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///rel/dir"):
        pass
    assert (tmp_path / "rel" / "dir" / DB_FILE).is_file()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite://host/x"])
def test_bad_sqlite_urls_are_refused(url: str) -> None:
    with pytest.raises(StoreError):
        open_store(url)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_postgresql_urls_open_the_shared_store(pg_database: str, scheme: str) -> None:
    from stackwatch.store.postgres import PostgresStore

    with open_store(pg_database.replace("postgresql://", f"{scheme}://", 1), writer="w") as store:
        assert isinstance(store, PostgresStore)


def test_a_postgresql_store_that_cannot_be_reached_says_so() -> None:
    with pytest.raises(StoreError, match="cannot connect to the PostgreSQL store"):
        open_store("postgresql://no-such-role-here@127.0.0.1/no_such_database", connect_timeout=5)


def test_unknown_schemes_are_refused() -> None:
    with pytest.raises(StoreError, match="unknown store"):
        open_store("mongodb://localhost/x")
