"""Fixtures of the real producers: one keystone per test session (its start-up costs ~40 s)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.producers.fronts import APACHE_USER
from tests.producers.keystone_server import Keystone, start_keystone


@pytest.fixture(scope="session")
def keystone() -> Iterator[Keystone]:
    """A real keystone under uWSGI (see keystone_server.py), shared by the whole session and
    served by Apache too when a test starts it. Tests that attack it use their own users and
    source addresses. Its folder is outside pytest's (which only root may enter) so that
    Apache's www-data can reach it."""
    folder = Path(tempfile.mkdtemp(prefix="stackwatch-keystone-"))
    folder.chmod(0o755)
    try:
        with start_keystone(folder, shared_with=APACHE_USER) as server:
            yield server
    finally:
        shutil.rmtree(folder, ignore_errors=True)
