"""The store's files are private: every event (auth logs, tokens in URLs, user names) is readable
by whoever reads the database, so the data folder is 0700 and the database files 0600, whatever
the umask. Key files are written 0600 by ``seal._write_atomic``; backups by ``backup``."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

FOLDER_MODE: Final = 0o700
FILE_MODE: Final = 0o600
DATABASES: Final = ("stackwatch.db", "stackwatch-index.db")
_SIDE_FILES: Final = ("", "-wal", "-shm", "-journal")


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist (SQLite then keeps that mode
    for the database and gives its -wal/-shm files the same)."""
    with contextlib.suppress(FileExistsError):
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        os.close(os.open(path, flags, FILE_MODE))


def make_private(data_dir: Path) -> None:
    """Create (or tighten) the data folder 0700 and its database files 0600."""
    data_dir = Path(data_dir)
    data_dir.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    os.chmod(data_dir, FOLDER_MODE)
    create_private_file(data_dir / DATABASES[0])  # the index is created (0600) by connect_index
    for name in DATABASES:
        for suffix in _SIDE_FILES:
            path = data_dir / f"{name}{suffix}"
            if path.exists() and not path.is_symlink():
                os.chmod(path, FILE_MODE)
