"""Shared fixtures: where the public corpus lives (read in place, never copied)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from stackwatch.testing import corpus_dir

if TYPE_CHECKING:
    from tests.producers.keystone_server import Keystone

CORPUS = corpus_dir()


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared corpus. In CI it must be there: a missing corpus fails, it does not skip."""
    if not CORPUS.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"corpus not found at {CORPUS}")
        pytest.skip(f"corpus not found at {CORPUS}")
    return CORPUS


# One real keystone per test session (its start-up costs ~40 s), shared by the producers' tests
# and the keystone login tests (tests/api/test_keystone_login.py): see tests/producers/keystone_server.py.
@pytest.fixture(scope="session")
def keystone() -> Iterator[Keystone]:
    """A real keystone under uWSGI (see keystone_server.py), shared by the whole session and
    served by Apache too when a test starts it. Tests that attack it use their own users and
    source addresses. Its folder is outside pytest's (which only root may enter) so that
    Apache's www-data can reach it."""
    from tests.producers.fronts import APACHE_USER
    from tests.producers.keystone_server import start_keystone

    folder = Path(tempfile.mkdtemp(prefix="stackwatch-keystone-"))
    folder.chmod(0o755)
    try:
        with start_keystone(folder, shared_with=APACHE_USER) as server:
            yield server
    finally:
        shutil.rmtree(folder, ignore_errors=True)
