"""docs/search.md documents every field, alias and parameter of the language."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackwatch.search.query import ALIASES, FIELDS
from stackwatch.web.timerange import PARAMS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "search.md").read_text()


@pytest.mark.parametrize("name", [*FIELDS, *ALIASES, *PARAMS])
def test_every_name_is_documented(name: str) -> None:
    assert f"`{name}" in DOC
