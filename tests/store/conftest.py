"""The store backend factory: every test in the contract suite runs against each backend.

A backend is added here (PostgreSQL: a param whose factory opens a fresh database) and the
whole of test_store_contract.py then runs against it too."""

from __future__ import annotations

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


BACKENDS = {"sqlite": _sqlite_factory}


@pytest.fixture(params=sorted(BACKENDS))
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens the backend's store on the same location each call (so reopening is possible);
    every store it opened is closed at the end."""
    opened: list[Store] = []
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
