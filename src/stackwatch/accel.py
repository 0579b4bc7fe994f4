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
    """A meta path finder that loads a ``stackwatch`` module from its ``.py`` file when a
    compiled extension beside it (which the normal finder prefers) may not run: every one
    when the pure path is asked for or the build is stale, else those not in this build
    (a leftover of an earlier build with a longer list would fail to load)."""

    def __init__(self, allowed: frozenset[str]) -> None:
        self.allowed = allowed

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if not path or fullname in self.allowed or not fullname.startswith("stackwatch."):
            return None
        stem = fullname.rpartition(".")[2]
        for entry in path:
            source = Path(entry) / (stem + ".py")
            if source.is_file():
                suffixes = importlib.machinery.EXTENSION_SUFFIXES
                if any(source.with_name(stem + suffix).exists() for suffix in suffixes):
                    return importlib.util.spec_from_file_location(fullname, source)
                return None
        return None


def stale_build() -> bool:
    """Were the compiled modules built from other sources, or another list, than the ones
    here (an edited checkout not rebuilt)? All or none: mypyc compiles them as one group
    whose modules call each other directly, so one stale module taints the others."""
    built = _built_hashes()
    if not built:
        return False  # nothing compiled (or not by our setup.py): nothing to keep out
    if set(built) != set(module_names()):
        return True
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
    if any(isinstance(f, _SourcesFirst) for f in sys.meta_path):
        return
    allowed = frozenset() if pure_requested() or stale_build() else frozenset(_built_hashes())
    sys.meta_path.insert(0, _SourcesFirst(allowed))  # type: ignore[arg-type]


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
        return "pure Python (the compiled modules are stale: python setup.py build_ext --inplace)"
    return "pure Python (no compiled modules installed)"
