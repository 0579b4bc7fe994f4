"""Snapshot files written whole or not at all.

The live service rewrites its state snapshots (the orphan ledger, the spike baselines) while it
runs; a crash, a kill -9 or a full disk in the middle of a write must leave the previous snapshot
readable, never half of a new one. So the bytes go to a temporary file in the same folder (the
same filesystem: the rename is atomic), are fsync'd, and only then renamed over the old file;
the folder is fsync'd after, so the rename itself survives a power cut.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec


def atomic_write(path: str | os.PathLike[str], chunks: bytes | Iterable[bytes]) -> int:
    """Replace ``path`` by ``chunks`` (one bytes object or several, written in order) atomically;
    returns the bytes written. The folder is created if missing; on any error the temporary
    file is removed and the old file, if any, is left as it was."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    written = 0
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in (chunks,) if isinstance(chunks, bytes) else chunks:
                handle.write(chunk)
                written += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_folder(target.parent)
    return written


def atomic_json_write(path: str | os.PathLike[str], doc: Any) -> int:
    """``doc`` encoded as JSON (msgspec: structs, dicts, lists, scalars) into ``path`` with
    ``atomic_write``; returns the bytes written."""
    return atomic_write(path, msgspec.json.encode(doc))


def _sync_folder(folder: Path) -> None:
    """Make the rename durable; a filesystem that cannot fsync a folder is let be."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
