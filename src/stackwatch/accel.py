"""Which path runs the hot modules: compiled by mypyc at install, or their Python sources.

The modules listed in ``accel_modules.txt`` may be compiled when the package is installed
(``setup.py``; a machine without a compiler, or a failed build, installs without them).
Both paths must give the same output: the compiled module is built from the very source
file next to it. ``STACKWATCH_PURE_PYTHON=1`` forces the sources even where the compiled
modules exist (for comparison, or to rule the compiled path out when chasing a bug); it is
read once, when ``stackwatch`` is first imported.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

ENV = "STACKWATCH_PURE_PYTHON"
_LIST = Path(__file__).with_name("accel_modules.txt")
_BUILT = Path(__file__).with_name("accel_built.json")


def pure_requested() -> bool:
    """Did the environment ask for the pure-Python path?"""
    return os.environ.get(ENV, "") not in ("", "0")


def module_names() -> tuple[str, ...]:
    """The modules that may be compiled (accel_modules.txt, comments left out)."""
    try:
        text = _LIST.read_text(encoding="utf-8")
    except OSError:
        return ()
    names = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return tuple(name for name in names if name)


class _SourcesFirst:
    """A meta path finder that loads the listed modules from their ``.py`` file, so that
    a compiled extension beside it (which the normal finder prefers) is not used."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names or not path:
            return None
        leaf = fullname.rpartition(".")[2] + ".py"
        for entry in path:
            source = Path(entry) / leaf
            if source.is_file():
                return importlib.util.spec_from_file_location(fullname, source)
        return None


def stale_build() -> bool:
    """Were the compiled modules built from other sources than the ones here (an edited
    checkout not rebuilt)? All or none: mypyc compiles them as one group whose modules call
    each other directly, so one stale module taints the others."""
    built = _built_hashes()
    if not built:
        return False  # nothing compiled (or not by our setup.py): nothing to keep out
    for name, digest in built.items():
        source = _LIST.parent.joinpath(*name.split(".")[1:]).with_suffix(".py")
        try:
            if hashlib.sha256(source.read_bytes()).hexdigest() != digest:
                return True
        except OSError:
            return True
    return False


@functools.cache
def _built_hashes() -> dict[str, str]:
    """module -> sha256 of the source it was compiled from (written by setup.py's build)."""
    try:
        loaded = json.loads(_BUILT.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def install_switch() -> None:
    """Honour STACKWATCH_PURE_PYTHON and keep a stale build out (called once by
    ``stackwatch/__init__``, before any listed module is imported)."""
    if (pure_requested() or stale_build()) and not any(isinstance(f, _SourcesFirst) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourcesFirst(module_names()))  # type: ignore[arg-type]


def compiled_modules() -> list[str]:
    """The listed modules that run compiled in this process (imports them)."""
    out = []
    for name in module_names():
        module = importlib.import_module(name)
        if not (getattr(module, "__file__", "") or "").endswith(".py"):
            out.append(name)
    return out


def status() -> str:
    """One line saying which path is active, e.g. for ``stackwatch --version``."""
    names = module_names()
    compiled = compiled_modules()
    if compiled:
        return f"compiled (mypyc): {len(compiled)} of {len(names)} modules"
    if pure_requested():
        return f"pure Python ({ENV}=1)"
    if stale_build():
        return "pure Python (compiled modules older than their sources: python setup.py build_ext --inplace)"
    return "pure Python (no compiled modules installed)"
