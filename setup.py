"""Optional compiled hot paths (mypyc); everything else is in pyproject.toml.

The modules named in ``src/stackwatch/accel_modules.txt`` are compiled with mypyc when the
build can (mypyc importable, a C compiler, Python headers). When it cannot, or the build
fails, or ``STACKWATCH_PURE_PYTHON=1`` is set at install time, the package installs without
them and runs the same modules as pure Python: the compiled path is an accelerator, never a
requirement. ``stackwatch --version`` says which path is active.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
LIST = ROOT / "src" / "stackwatch" / "accel_modules.txt"


def _warn(message: str) -> None:
    sys.stderr.write(f"stackwatch: {message}; installing the pure-Python path\n")


def compiled_modules() -> list:
    """mypyc's extensions for the listed modules, or [] when they cannot be built here."""
    if os.environ.get("STACKWATCH_PURE_PYTHON", "") not in ("", "0"):
        return []
    names = [line.split("#", 1)[0].strip() for line in LIST.read_text().splitlines()]
    paths = [f"src/{name.replace('.', '/')}.py" for name in names if name]
    try:
        from mypyc.build import mypycify

        # group_name keeps mypyc's shared runtime inside the package (an editable install
        # maps only the stackwatch package, not a top-level module of src/)
        return mypycify(paths, opt_level="3", group_name="stackwatch._accel")
    except BaseException as exc:  # mypyc missing, or a module it refuses: SystemExit included
        _warn(f"compiled modules not generated ({type(exc).__name__}: {exc})")
        return []


class OptionalBuildExt(build_ext):
    """A build_ext whose failure (no compiler, no headers) leaves the pure-Python install.
    All or nothing: mypyc's modules share one runtime library, so after one failure the
    rest are not attempted and whatever was built is removed."""

    def run(self) -> None:
        self._failed = False
        try:
            super().run()
        except Exception as exc:
            _warn(f"compiled modules not built ({type(exc).__name__}: {exc})")
            self._failed = True
        if self._failed:
            for ext in self.extensions:
                Path(self.get_ext_fullpath(ext.name)).unlink(missing_ok=True)
        elif self.extensions:
            self._record_sources()

    def build_extension(self, ext) -> None:  # type: ignore[no-untyped-def]
        if self._failed:
            return
        try:
            super().build_extension(ext)
        except Exception as exc:
            _warn(f"{ext.name} not built ({type(exc).__name__}: {exc})")
            self._failed = True

    def _record_sources(self) -> None:
        """Write the hash of each compiled module's source beside the build: at import,
        stackwatch.accel runs the source instead of a build made from another version of
        it (an edited checkout not rebuilt)."""
        names = [ext.name for ext in self.extensions if not ext.name.endswith("__mypyc")]
        hashes = {}
        for name in names:
            source = ROOT / "src" / (name.replace(".", "/") + ".py")
            hashes[name] = hashlib.sha256(source.read_bytes()).hexdigest()
        target = Path(self.get_ext_fullpath("stackwatch._accel__mypyc")).with_name("accel_built.json")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n", encoding="utf-8")


setup(ext_modules=compiled_modules(), cmdclass={"build_ext": OptionalBuildExt})
