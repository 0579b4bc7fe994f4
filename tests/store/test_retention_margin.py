"""Retention keeps what a writer's login correlator holds or may still group with a kept record
(``store/retention_margin.py``), on both backends: a cutoff at the head (a tiny --max-size)
no longer expires a held login whose attempt is written afterwards."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from stackwatch.store.keys import init_store
from stackwatch.store.postgres import open_store as open_pg
from stackwatch.store.postgres.keys import init_writer
from stackwatch.store.postgres.retention import expire_postgres
from stackwatch.store.retention import expire
from stackwatch.store.sqlite import open_store
from stackwatch.testing import make_event
from tests.store.test_sqlite_attempts import _login

T0 = datetime(2026, 5, 1, 8, 0, 30, tzinfo=UTC)
OLD = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)  # received long ago: past any --max-age below
LATER = datetime.now(UTC) + timedelta(days=10)


def _filler(n: int, received: datetime) -> list[Any]:
    """Records that are not logins, before T0."""
    return [_at(make_event(service="nova", action="server.create", outcome="success", kind="nova",
                           time=T0 - timedelta(minutes=10, seconds=-i), ref=f"nova:{i}"), received)
            for i in range(n)]


def _at(event: Any, received: datetime) -> Any:
    return msgspec.structs.replace(event, received=received)


@pytest.fixture
def pg_url(pg_database: str, tmp_path: Path) -> Iterator[str]:
    schema = f"margin_{secrets.token_hex(4)}"
    yield f"{pg_database}?schema={schema}"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _pg_orphans(url: str) -> tuple[int, int]:
    """(attempts whose primary record is gone, records expired)."""
    base, _, schema = url.partition("?schema=")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema}")
        orphans = conn.execute("SELECT count(*) FROM login_attempts AS a WHERE NOT EXISTS "
                               "(SELECT 1 FROM events AS e WHERE e.id = a.id)").fetchone()
        pruned = conn.execute("SELECT coalesce(max(pruned_to), 0) FROM ledger_state").fetchone()
    assert orphans is not None and pruned is not None
    return int(orphans[0]), int(pruned[0])


def test_postgres_a_login_held_by_a_live_writer_does_not_expire(pg_url: str, tmp_path: Path) -> None:
    init_writer(pg_url, writer="w", keys=tmp_path / "w")
    with open_pg(pg_url, writer="w", keys=tmp_path / "w") as store:
        store.append_events(_filler(20, OLD))
        store.checkpoint()
        store.append_events([_at(_login(0, "cadf", T0, name="alice"), OLD)])  # held: its window is open
        store.checkpoint()
        result = expire_postgres(pg_url, max_size=1)["w"]  # a cutoff at the log's head
        assert result.pruned_to == 21  # record 1 (the keys' admin event), the filler
        store.append_events([_at(_login(200, "cadf", T0, name="bob"), OLD)])  # releases alice's login
    assert _pg_orphans(pg_url) == (0, 21)
    with open_pg(pg_url, read_only=True) as shared:
        assert not shared.check_login_attempts().problems


def _sqlite_orphans(data: Path) -> tuple[int, int]:
    with sqlite3.connect(data / "stackwatch.db") as conn:
        orphans = conn.execute("SELECT count(*) FROM login_attempts WHERE seq NOT IN "
                               "(SELECT seq FROM events)").fetchone()[0]
        pruned = conn.execute("SELECT pruned_to FROM ledger_state").fetchone()[0]
    return int(orphans), int(pruned or 0)


@pytest.mark.parametrize("fmt", [1, 2])
def test_sqlite_a_held_login_does_not_expire(tmp_path: Path, fmt: int) -> None:
    data = tmp_path / "data"
    init_store(data, background_index=False, format=fmt)
    with open_store(data, background_index=False) as store:
        store.append_events(_filler(20, OLD))
        store.checkpoint()
        store.append_events([_at(_login(0, "cadf", T0, name="alice"), OLD)])  # held: its window is open
        result = expire(store, max_size=1)  # seals the head first: a cutoff there
        assert result.pruned_to == 21  # record 1 (the keys' admin event), the filler
        store.append_events([_at(_login(200, "cadf", T0, name="bob"), OLD)])  # releases alice's login
    assert _sqlite_orphans(data) == (0, 21)
    with open_store(data, background_index=False) as store:
        assert store.check_login_attempts() == []


