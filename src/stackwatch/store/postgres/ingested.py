"""What ``analyze`` already stored in the shared store (``pipeline/ingested.py``'s records, in
a table instead of ``ingested.db``): per writer, since a path names a file on the writer's host
(two analyzers' ``/var/log/keystone.log`` are two files), and the writer's name is what
identifies an analyzer across its runs (``writer=``; default its host's name)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import psycopg

from stackwatch.pipeline.ingested import FileRecord

TABLES: Final = (
    """CREATE TABLE IF NOT EXISTS ingested_files (
        writer text COLLATE "C" NOT NULL, path text COLLATE "C" NOT NULL,
        text_bytes bigint NOT NULL, lines bigint NOT NULL, digest bytea NOT NULL,
        PRIMARY KEY (writer, path))""",
)

Run = Callable[[Callable[[psycopg.Connection], Any]], Any]
"""The store's: runs a function with its connection, under its lock, in a transaction."""


class PGFileRecords:
    """``pipeline.ingested.FileRecords`` of one writer in the shared store."""

    def __init__(self, run: Run, writer: str) -> None:
        self._run = run
        self._writer = writer

    def get(self, path: str) -> FileRecord | None:
        row = self._run(lambda conn: conn.execute(
            b"SELECT text_bytes, lines, digest FROM ingested_files WHERE writer = %s AND path = %s",
            (self._writer, path)).fetchone())
        return None if row is None else (int(row[0]), int(row[1]), bytes(row[2]))

    def put(self, records: list[tuple[str, int, int, bytes]]) -> None:
        def put(conn: psycopg.Connection) -> None:
            with conn.cursor() as cur:
                cur.executemany(
                    b"INSERT INTO ingested_files VALUES (%s, %s, %s, %s, %s) ON CONFLICT (writer, path) "
                    b"DO UPDATE SET text_bytes = EXCLUDED.text_bytes, lines = EXCLUDED.lines, "
                    b"digest = EXCLUDED.digest", [(self._writer, *r) for r in sorted(records)])

        self._run(put)

    def close(self) -> None:
        """Nothing of its own: the store's connection."""
