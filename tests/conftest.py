"""Shared fixtures: where the public corpus lives (read in place, never copied)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stackwatch.testing import corpus_dir

CORPUS = corpus_dir()


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared corpus. In CI it must be there: a missing corpus fails, it does not skip."""
    if not CORPUS.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"corpus not found at {CORPUS}")
        pytest.skip(f"corpus not found at {CORPUS}")
    return CORPUS
