"""Where events and alerts are kept. ``open_store`` picks the backend from a URL or path:

- a plain path, or ``sqlite:///relative/dir`` / ``sqlite:////absolute/dir`` (SQLAlchemy's
  slash convention): the embedded SQLite store in that data folder;
- ``postgresql://...``: the shared PostgreSQL store (``stackwatch.store.postgres``).

The table below is the registry (``stackwatch.core.registry``): a backend is a ``module:function``
reference, imported only when used, so a missing optional dependency only matters to those who
pick that backend.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Final

from stackwatch.core.errors import StoreError
from stackwatch.core.registry import EntryLoadError, Registry
from stackwatch.store.base import AlertQuery, EventQuery, Store, StoredAlert, StoredEvent

__all__ = ["BACKENDS", "AlertQuery", "EventQuery", "Store", "StoredAlert", "StoredEvent", "open_store"]

BACKENDS: Final[Registry[Callable[..., Store]]] = Registry("store backend", {
    "sqlite": "stackwatch.store.sqlite:open_store",
    "postgresql": "stackwatch.store.postgres:open_store",
})


def open_store(url_or_dir: str | os.PathLike[str], **options: Any) -> Store:
    """Open the store named by ``url_or_dir`` (see the module docstring)."""
    target = os.fspath(url_or_dir)
    scheme, sep, rest = target.partition("://")
    if not sep or "/" in scheme or os.sep in scheme:
        scheme, location = "sqlite", target  # a plain path
    elif scheme == "sqlite":
        if not rest.startswith("/"):
            raise StoreError(f"bad sqlite URL {target!r}: use sqlite:///relative/dir or sqlite:////abs/dir")
        location = rest[1:]
        if not location:
            raise StoreError(f"bad sqlite URL {target!r}: no folder given")
    elif scheme in ("postgresql", "postgres"):
        scheme, location = "postgresql", target
    else:
        raise StoreError(f"unknown store {scheme!r} in {target!r}: use a folder, sqlite:// or postgresql://")
    try:
        opener = BACKENDS.load(scheme)
    except EntryLoadError as exc:
        module_name, cause = BACKENDS[scheme].partition(":")[0], exc.__cause__
        if not isinstance(cause, ImportError):
            raise StoreError(str(exc)) from exc
        if cause.name == module_name:
            raise StoreError(f"the {scheme} store backend is not available yet ({module_name})") from exc
        raise StoreError(
            f"the {scheme} store backend needs a package that is not installed: {cause}") from exc
    return opener(location, **options)
