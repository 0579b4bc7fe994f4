"""The store backend factory: every test in the contract suite runs against each backend.

A backend is added here (PostgreSQL: a param whose factory opens a fresh database) and the
whole of test_store_contract.py then runs against it too."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stackwatch.store.base import Store

StoreFactory = Callable[..., Store]


def _sqlite_factory(tmp_path: Path) -> StoreFactory:
    from stackwatch.store.sqlite import SQLiteStore

    def factory(**options: Any) -> Store:
        # Small batches so the tests cross batch boundaries; foreground indexing by default
        # (deterministic), the background thread is tested on its own.
        options.setdefault("batch_size", 7)
        options.setdefault("background_index", False)
        return SQLiteStore(tmp_path / "data", **options)

    return factory


def _blocks_factory(tmp_path: Path) -> StoreFactory:
    from stackwatch.store.sqlite_blocks import BlockStore

    def factory(**options: Any) -> Store:
        options.setdefault("batch_size", 7)
        options.setdefault("background_index", False)
        return BlockStore(tmp_path / "data", **options)

    return factory


def _postgres_factory(tmp_path: Path, database: str) -> StoreFactory:
    from stackwatch.store.postgres import open_store

    schema = f"t_{tmp_path.name.lower().replace('-', '_')[-40:]}_{os.getpid()}"

    def factory(**options: Any) -> Store:
        options.setdefault("batch_size", 7)
        options.setdefault("writer", "test-writer")
        return open_store(database, schema=schema, **options)

    return factory


BACKENDS = {"sqlite": _sqlite_factory, "sqlite-v2": _blocks_factory, "postgresql": _postgres_factory}


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for the test module (each test then uses its own schema)."""
    from tests.pgdb import fresh_database

    with fresh_database() as url:
        yield url


@pytest.fixture(params=sorted(BACKENDS))
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens the backend's store on the same location each call (so reopening is possible);
    every store it opened is closed at the end."""
    opened: list[Store] = []
    if request.param == "postgresql":
        make = _postgres_factory(tmp_path, request.getfixturevalue("pg_database"))
    else:
        make = BACKENDS[request.param](tmp_path)

    def factory(**options: Any) -> Store:
        store = make(**options)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> Store:
    return store_factory()


# --- the tamper-evident ledger: a real store with keys and checkpoints ---

import shutil  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402

from stackwatch.core.event import Event  # noqa: E402
from stackwatch.store.seal import parse_initial_key  # noqa: E402


def ledger_events(n: int, start: int = 0) -> list[Event]:
    from stackwatch.testing import make_event

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return [make_event(time=t0 + timedelta(seconds=i), host=f"ctl-{i % 3}", service="sshd",
                       message=f"Failed password for user{i} from 10.0.0.{i % 250}",
                       raw=f"<38>sshd[{i}]: record {i}",
                       attrs={"i": i}, origin="file:/var/log/auth.log", ref=f"auth.log:{i}")
            for i in range(start, start + n)]


@dataclass
class LedgerStore:
    data: Path
    k0: bytes
    k0_text: str
    public_key: str


def build_ledger_store(data: Path, records: int, *, every: int = 50, **options: Any) -> LedgerStore:
    """A store with keys, ``records`` events after the init admin event, a checkpoint every
    ``every`` records, closed cleanly (so the tail is sealed)."""
    from stackwatch.store.keys import init_store
    from stackwatch.store.sqlite import SQLiteStore

    result = init_store(data, background_index=False, format=1)  # the format 1 ledger's tests
    options.setdefault("background_index", False)
    with SQLiteStore(data, checkpoint_every=every, batch_size=25, **options) as store:
        events = ledger_events(records)
        for i in range(0, records, 10):
            store.append_events(events[i:i + 10])
    return LedgerStore(data, parse_initial_key(result.initial_key), result.initial_key, result.public_key)


@pytest.fixture(scope="session")
def ledger_template(tmp_path_factory: pytest.TempPathFactory) -> LedgerStore:
    """Built once: 300 records (+1 init event), checkpoints every 50. Copy it before tampering."""
    return build_ledger_store(tmp_path_factory.mktemp("ledger") / "data", 300)


def copy_store(template: LedgerStore, dest: Path) -> LedgerStore:
    """A copy of the store with its own copy of its local witness (so that tampering with or
    extending the copy leaves the template's witness alone)."""
    from stackwatch.store.witness import CONFIG_FILE, default_witness_path

    shutil.copytree(template.data, dest)
    witness = default_witness_path(template.data)
    if witness.exists():
        shutil.copyfile(witness, default_witness_path(dest))
        (dest / CONFIG_FILE).write_text(f"file:{default_witness_path(dest)}\n")
    return LedgerStore(dest, template.k0, template.k0_text, template.public_key)


# Tests of record format 1's own layout (rows chained one by one, the events table tampered with
# directly, its verify fast path, format 1 stores written with SQLiteStore):
# they keep format 1 now that format 2 is the default for new stores (format 2 has its own:
# test_blocks_*, test_migrate, the contract suite's sqlite-v2 backend; test_replication_tls and
# test_ledger_processes run on both, with the format given explicitly).
FORMAT_1_MODULES = frozenset((
    "test_ledger_ops", "test_ledger_tamper", "test_tamper_suite", "test_verify_fast", "test_rechain",
    "test_sealed_epochs", "test_witness_default",
    "test_permissions", "test_sidecars", "test_migrate", "test_sqlite", "test_benchmark_unchained",
    "test_status",
))


@pytest.fixture(autouse=True)
def _format_1_layout_tests(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.module.__name__.rsplit(".", 1)[-1] in FORMAT_1_MODULES:
        monkeypatch.setenv("STACKWATCH_STORE_FORMAT", "1")


# --- record format 2: a sealed store of several blocks (tests/store/blocks_attack.py) ---

from tests.store.blocks_attack import sealed  # noqa: E402, F401 - the blocks tests' fixture
