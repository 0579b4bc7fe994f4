"""Floors: what the pipeline's fixed per-line costs are, measured in the same run.

The pipeline target (parse+detect+chain+store >= 150,000 lines/s) leaves 6.7 us per line
for everything. These stages run the parts of that path that do not depend on parsing or
detection, over the same corpus, so the report can say in the run's own figures how much
of that budget they already take:

* ``floor_event``: stackwatch's reader, one ``Event`` per line (the line as its message, no
  parsing and no multi-line framing; times counted per file so the files interleave) and
  the time-ordered merge across files. Every event the pipeline handles pays at least this.
* ``floor_wide_row``: ``floor_event`` plus the store's own row: ``RowBuilder.chained_rows``
  (25 columns, leaf hash, chain link) inserted with ``executemany`` into the store's real
  ``events`` table (same schema and PRAGMAs, batches of the store's size), one transaction a
  batch. No Merkle tree, checkpoint, seal or search index: the least one chained 25-column
  SQLite row per line can cost.
* ``floor_meta_row``: ``floor_event`` plus the design the issue names as the lever: each
  line's bytes appended to a segment file, a leaf hash over them and the chain link, and a
  4-column metadata row (seq, time, source, offset) in SQLite.

None of these is a store: nothing here can be searched, verified or replicated. They bound
from below what a store of that shape costs on this machine.
"""

from __future__ import annotations

import heapq
import operator
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from typing import Final

from stackwatch.core.event import Event
from stackwatch.pipeline.reader import InputFile, discover, read_line_batches

BATCH: Final = 20_000  # the SQLite store's default batch_size: rows per insert transaction
_STEP: Final = timedelta(milliseconds=1)
_START: Final = datetime(2026, 3, 2, 8, tzinfo=UTC)


def _events_of(source: InputFile, received: datetime) -> Iterator[Event]:
    assert source.path is not None
    when = _START
    origin, prefix = source.origin, source.ref_prefix
    host, service = source.host, source.service or "unknown"
    with source.path.open("rb") as handle:
        lineno = 0
        for batch in read_line_batches(handle):
            for line in batch:
                lineno += 1
                when += _STEP
                yield Event(time=when, received=received, host=host, service=service, severity="info",
                            message=line, kind="unparsed", raw=line, origin=origin, ref=f"{prefix}:{lineno}")


def floor_events(root: Path) -> Iterator[Event]:
    """Reader + one Event per line + the time-ordered merge: no parsing."""
    received = datetime.now(UTC)
    streams = [_events_of(source, received) for source in discover([str(root)])]
    return heapq.merge(*streams, key=operator.attrgetter("time"))


def stage_floor_event(root: Path) -> tuple[int, int]:
    count = 0
    for _event in floor_events(root):
        count += 1
    return count, count


def _connect(path: Path) -> sqlite3.Connection:
    """A connection opened the way the store opens its own (its PRAGMAs)."""
    from stackwatch.store.sqlite import SQLiteStore

    return SQLiteStore._connect(str(path), timeout=5.0)


def stage_floor_wide_row(root: Path, data: Path) -> tuple[int, int]:
    """One chained 25-column row per line, the store's row builder and table."""
    from stackwatch.store.rows import RowBuilder
    from stackwatch.store.sqlite import _INSERT as INSERT  # the store's own statement
    from stackwatch.store.sqlite_schema import migrate

    data.mkdir(parents=True, exist_ok=True)
    conn = _connect(data / "floor-wide.db")
    migrate(conn)  # the store's real schema (events, sources, ledger tables...)
    sources: dict[tuple[str, str], int] = {}
    names: dict[int, tuple[str, str]] = {}

    def new_source(host: str, service: str) -> int:
        sources[(host, service)] = source = len(sources) + 1
        names[source] = (host, service)
        return source

    builder = RowBuilder(sources, new_source)
    head, seq, count = bytes(32), 1, 0
    batch: list[Event] = []

    def write(events: list[Event]) -> None:
        nonlocal head, seq
        built = builder.chained_rows(events, seq, head, names)
        if built is None:
            raise RuntimeError("an event needed the store's careful row path")
        rows, _leaves, head = built
        conn.execute("BEGIN")
        conn.executemany(INSERT, rows)
        conn.execute("COMMIT")
        seq += len(rows)

    for event in floor_events(root):
        batch.append(event)
        count += 1
        if len(batch) >= BATCH:
            write(batch)
            batch = []
    if batch:
        write(batch)
    conn.close()
    return count, count


def stage_floor_meta_row(root: Path, data: Path) -> tuple[int, int]:
    """Raw lines in an append-only segment; a chain link and a 4-column row per line."""
    data.mkdir(parents=True, exist_ok=True)
    conn = _connect(data / "floor-meta.db")
    conn.execute("CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, "
                 "source INTEGER NOT NULL, offset INTEGER NOT NULL)")
    conn.execute("CREATE INDEX IF NOT EXISTS events_time ON events (time)")
    from stackwatch.store.rows import EPOCH

    sources: dict[tuple[str, str], int] = {}
    epoch, us = EPOCH, timedelta(microseconds=1)
    head, seq, offset, count = bytes(32), 1, 0, 0
    rows: list[tuple[int, int, int, int]] = []
    chunks: list[bytes] = []
    with (data / "floor-meta.segment").open("wb") as segment:
        def write() -> None:
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
            segment.write(b"".join(chunks))
            rows.clear()
            chunks.clear()

        for event in floor_events(root):
            source = sources.get((event.host, event.service))
            if source is None:
                sources[(event.host, event.service)] = source = len(sources) + 1
            raw = event.raw.encode("utf-8", "surrogateescape") + b"\n"
            head = sha256(head + sha256(raw).digest()).digest()
            rows.append((seq, (event.time - epoch) // us, source, offset))
            chunks.append(raw)
            seq += 1
            offset += len(raw)
            count += 1
            if len(rows) >= BATCH:
                write()
        if rows:
            write()
    conn.close()
    return count, count
