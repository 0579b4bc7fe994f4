"""What an earlier ``stackwatch analyze`` already stored, so that analyzing the same files
again stores nothing twice.

A file's record is its place in the file (the event's ref ends in the line a record starts
on). For every file it read, a run keeps in ``ingested.db`` (data folder) how much text it
read, how many lines, and a SHA-256 of that text. The next run over the same path hashes
the file's first that-many bytes: if they are unchanged (the same archive, or a log that has
grown since), the records starting on those lines are in the store already and are not
appended again; the new lines after them are. A file whose start changed (rotated and
rewritten under the same name) is read as new. The events still go through detection: the
alerts they raise are the same, and alerts are upserted, not appended.

The store itself stays append-only and chained: duplicates are dropped before the append.
Where the records are kept: ``ingested.db`` beside an embedded store (``FolderRecords``); in
the shared PostgreSQL store, its ``ingested_files`` table, per writer (``store/postgres/
ingested.py``: an analyzer's paths are its host's).
Standard input has no identity to recognise and is always stored. A run stopped by a signal
records nothing (its last events may not all be stored): its files are read as new next time.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from stackwatch.core.event import Event
from stackwatch.core.types import FileRecord as FileRecord  # the seams (core/types.py), re-exported
from stackwatch.core.types import FileRecords as FileRecords
from stackwatch.pipeline.reader import InputFile, open_input

INGESTED_FILE: Final = "ingested.db"

_SCHEMA = """CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,   -- the file's resolved path
    text_bytes INTEGER NOT NULL,
    lines INTEGER NOT NULL,
    digest BLOB NOT NULL     -- SHA-256 of its first text_bytes bytes (decompressed)
) WITHOUT ROWID"""


class FolderRecords:
    """``ingested.db`` in a data folder."""

    def __init__(self, data_dir: str | Path) -> None:
        path = Path(data_dir) / INGESTED_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.execute(_SCHEMA)

    def get(self, path: str) -> FileRecord | None:
        row = self._conn.execute("SELECT text_bytes, lines, digest FROM files WHERE path = ?",
                                 (path,)).fetchone()
        return None if row is None else (int(row[0]), int(row[1]), bytes(row[2]))

    def put(self, records: list[tuple[str, int, int, bytes]]) -> None:
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)", records)

    def close(self) -> None:
        self._conn.close()


class IngestLedger:
    """The files earlier runs read into the store in ``data_dir`` (or kept by ``records``)."""

    def __init__(self, data_dir: str | Path | None = None, *, records: FileRecords | None = None) -> None:
        if records is None:
            assert data_dir is not None, "a data folder or the records"
            records = FolderRecords(data_dir)
        self._records = records

    def prepare(self, inputs: Sequence[InputFile]) -> dict[str, int]:
        """Fingerprint every file as it is read; returns origin -> lines already stored, for
        the files an earlier run read whose text up to there is unchanged."""
        stored: dict[str, int] = {}
        for source in inputs:
            if source.path is None:
                continue
            source.fingerprint = hashlib.sha256()
            row = self._records.get(_key(source))
            if row is not None and row[1] and _prefix_digest(source, row[0]) == row[2]:
                stored[source.origin] = row[1]
        return stored

    def record(self, inputs: Sequence[InputFile]) -> None:
        """Remember what this run read (call once its events are committed)."""
        self._records.put([(_key(s), s.text_bytes, s.lines, s.fingerprint.digest())
                           for s in inputs if s.path is not None and s.fingerprint is not None])

    def close(self) -> None:
        self._records.close()


def stored_before(event: Event, stored: dict[str, int]) -> bool:
    """Did an earlier run store ``event`` (its record starts on a line it read)?"""
    lines = stored.get(event.origin)
    if lines is None:
        return False
    line = event.ref.rpartition(":")[2]
    return line.isdigit() and int(line) <= lines


def _key(source: InputFile) -> str:
    assert source.path is not None
    return str(source.path.resolve())


def _prefix_digest(source: InputFile, size: int) -> bytes:
    digest = hashlib.sha256()
    handle = open_input(source)
    left = size
    try:
        while left > 0:
            block = handle.read(min(left, 1 << 20))
            if not block:
                break
            digest.update(block)
            left -= len(block)
    finally:
        handle.close()
    return digest.digest() if left == 0 else b""
