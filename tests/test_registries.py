"""Every registry (parsers, sources, sinks, store backends, rule kinds) stays true: each entry
loads, is what its registry promises, and is documented where a user looks for it; and
importing stackwatch imports no entry's optional dependency."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import stackwatch.detect
from stackwatch.alerts.base import Sink, SinkSettings
from stackwatch.alerts.registry import SINKS
from stackwatch.config.sample import SAMPLE
from stackwatch.core.registry import Registry
from stackwatch.detect.kinds import MODULES
from stackwatch.detect.kinds import REGISTRY as KINDS
from stackwatch.detect.kinds.base import Detector
from stackwatch.detect.model import KINDS as MODEL_KINDS
from stackwatch.parsers.registry import JSON_SHAPES, MESSAGE_PARSERS, RECORD_PARSERS
from stackwatch.sources.base import Source, SourceSettings
from stackwatch.sources.registry import SOURCES
from stackwatch.store import BACKENDS

ROOT = Path(__file__).resolve().parent.parent


def _table(path: Path, header: str) -> str:
    """The markdown table whose header row starts with ``| header |``."""
    text = path.read_text()
    start = text.index(f"| {header} |")
    end = text.find("\n\n", start)
    return text[start:end if end >= 0 else None]


def _row(name: str) -> str:
    return re.escape(f"| `{name}` |")


def _parser_has_name(name: str, parser: Any) -> bool:
    return bool(parser.name == name)  # a stored record names its parser; the registry finds it so


def _kind_module_is_complete(name: str, detector: Any) -> bool:
    module = MODULES[name]  # the loader reads its FIELDS and parse_params
    return issubclass(detector, Detector) and _has_fields_and_params(module)


def _has_fields_and_params(module: Any) -> bool:
    return isinstance(module.FIELDS, tuple) and callable(module.parse_params)


FORMATS = ROOT / "docs" / "formats.md"
FORMAT_MD = (Path(stackwatch.detect.__file__).parent / "FORMAT.md").read_text()

# registry, what each loaded entry must be, where its names are documented, a pattern a name matches there
REGISTRIES: dict[str, tuple[Registry[Any], Callable[[str, Any], bool], str, Callable[[str], str]]] = {
    "record parser": (RECORD_PARSERS, _parser_has_name, _table(FORMATS, "record parser"), _row),
    "message parser": (MESSAGE_PARSERS, lambda name, p: _parser_has_name(name, p) and bool(p.programs),
                       _table(FORMATS, "message parser"), _row),
    "JSON shape": (JSON_SHAPES, lambda name, shape: callable(shape) and shape.__module__.endswith(f".{name}"),
                   _table(FORMATS, "JSON shape"), _row),
    "source": (SOURCES, lambda _, cls: issubclass(cls, Source) and issubclass(cls.Settings, SourceSettings),
               SAMPLE, lambda name: rf"^\s*- type: {name}\b"),
    "sink": (SINKS, lambda _, cls: issubclass(cls, Sink) and issubclass(cls.Settings, SinkSettings),
             _table(ROOT / "README.md", "`type`"), _row),
    "store backend": (BACKENDS, lambda _, opener: callable(opener), SAMPLE, lambda name: rf"\b{name}://"),
    "rule kind": (KINDS, _kind_module_is_complete, FORMAT_MD, lambda name: f"`{name}`"),  # identifiers
}

ENTRIES = [(kind, name) for kind, (registry, *_) in REGISTRIES.items() for name in registry]


def test_each_registry_names_its_own_kind() -> None:
    assert [registry.kind for registry, *_ in REGISTRIES.values()] == list(REGISTRIES)


@pytest.mark.parametrize(("kind", "name"), ENTRIES, ids=[f"{kind}:{name}" for kind, name in ENTRIES])
def test_every_entry_loads_as_what_its_registry_promises(kind: str, name: str) -> None:
    registry, is_right, _, _ = REGISTRIES[kind]
    assert is_right(name, registry.load(name)), f"{kind} {name!r} ({registry[name]})"


@pytest.mark.parametrize(("kind", "name"), ENTRIES, ids=[f"{kind}:{name}" for kind, name in ENTRIES])
def test_every_entry_is_documented(kind: str, name: str) -> None:
    _, _, documentation, written = REGISTRIES[kind]
    assert re.search(written(name), documentation, re.MULTILINE), f"{kind} {name!r} is not documented"


def test_the_rule_kinds_registered_are_the_kinds_rules_may_name() -> None:
    assert list(KINDS) == list(MODEL_KINDS)


def test_importing_stackwatch_imports_no_optional_dependency() -> None:
    code = (
        "import sys\n"
        "import stackwatch, stackwatch.cli.main, stackwatch.pipeline.runner, stackwatch.store\n"
        "import stackwatch.config.loader, stackwatch.detect.engine\n"
        "heavy = ('aio_pika', 'aiormq', 'psycopg', 'psycopg_pool', 'openstack')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
