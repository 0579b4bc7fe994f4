"""Reading messages back from a format 2 record's blocks, for the search index.

Apart from ``sqlite_blocks`` so the indexer process (``index_process``) imports only the
block codec, not the whole store (its start is paid once per ``analyze --jobs N``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from stackwatch.store.integrity import blocks as codec
from stackwatch.store.integrity.records import record_message


def block_messages(conn: sqlite3.Connection, low: int, high: int) -> Iterable[tuple[int, str]]:
    """(seq, message) of records low+1..high, read from the blocks of the attached record ``ev``."""
    rows = conn.execute(
        "SELECT first_seq, data FROM ev.blocks WHERE first_seq <= ? AND first_seq + count > ? ORDER BY id",
        (high, low),
    ).fetchall()
    for first, data in rows:
        for offset, record in enumerate(codec.records(data)):
            seq = first + offset
            if low < seq <= high:
                yield record_message(record)
