"""FORMAT.md stays true: its example rule loads and passes its own vectors, and every
field, kind and operator the code knows is documented."""

from __future__ import annotations

import re
from pathlib import Path

import stackwatch.detect
from stackwatch.detect.conditions import OPERATORS
from stackwatch.detect.kinds import MODULES
from stackwatch.detect.loader import COMMON_FIELDS, load_text
from stackwatch.detect.vectors import run_vectors

DOC = (Path(stackwatch.detect.__file__).parent / "FORMAT.md").read_text()


def test_the_example_rule_loads_and_passes_its_vectors() -> None:
    example = re.search(r"```yaml\n(.*?)```", DOC, re.DOTALL)
    assert example is not None
    rules, errors = load_text(example.group(1), "FORMAT.md")
    assert errors == []
    results, problems = run_vectors(rules)
    assert problems == [] and len(results) == 2
    assert [r.failure for r in results] == [None, None]


def test_every_field_kind_and_operator_is_documented() -> None:
    names = list(COMMON_FIELDS) + list(MODULES) + list(OPERATORS)
    names += [field for module in MODULES.values() for field in module.FIELDS]
    assert [name for name in names if f"`{name}" not in DOC] == []
