"""The data folder's files beside the store that a backup carries: the web users and their API
tokens (``users.db``; login sessions are left out, they are short-lived and a restore signs
everyone out) and what ``analyze`` already stored (``ingested.db``, so analyzing the same
files after a restore stores nothing twice). Each is copied with SQLite's online backup API:
a consistent snapshot while the web server or an analyze keeps writing."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Final

SIDECARS: Final = ("users.db", "ingested.db")
"""Archive member names, the same as their file names in the data folder."""

_LEAVE_OUT: Final = {"users.db": ("DELETE FROM sessions",)}
"""Statements run on the copy: what it does not carry."""


def snapshot_sidecars(data_dir: Path, into: Path) -> list[str]:
    """Copy the sidecars ``data_dir`` has into ``into``; returns the names copied."""
    copied = []
    for name in SIDECARS:
        source = data_dir / name
        if not source.is_file():
            continue
        target = into / name
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            for statement in _LEAVE_OUT.get(name, ()):
                dst.execute(statement)
            dst.commit()
            dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            src.close()
            dst.close()
        os.chmod(target, 0o600)  # password hashes and token digests: the service account's only
        copied.append(name)
    return copied


def protect_restored(store_dir: Path) -> None:
    """A restored sidecar is readable by its owner only, as the original was."""
    for name in SIDECARS:
        if (store_dir / name).is_file():
            os.chmod(store_dir / name, 0o600)
