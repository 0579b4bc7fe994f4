"""Fixtures of the real producers: one keystone per test session (its start-up costs ~40 s)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.producers.keystone_server import Keystone, start_keystone


@pytest.fixture(scope="session")
def keystone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keystone]:
    """A real keystone under uWSGI (see keystone_server.py), shared by the whole session.
    Tests that attack it use their own users and source addresses."""
    with start_keystone(tmp_path_factory.mktemp("keystone")) as server:
        yield server
