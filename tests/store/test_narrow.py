"""Format 2's one-pass encoder (store/narrow.py) against the row path it replaces: the same
record bytes (so blocks, digests and proofs are unchanged) and the same narrow rows, over the
shared corpus and over events that need the careful path."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from stackwatch.core.event import Event, Initiator, Target
from stackwatch.pipeline.reader import discover, read_events
from stackwatch.store.narrow import NARROW_COLUMNS, Encoded, NarrowEncoder, narrow_row, record_bytes
from stackwatch.store.rows import EVENT_COLUMNS, RowBuilder, clean_row, clean_text

Sources = tuple[dict[tuple[str, str], int], dict[int, tuple[str, str]], Callable[[str, str], int]]


def _sources() -> Sources:
    """A writer's source numbering: (host, service) -> id, id -> names as stored, allocator."""
    sources: dict[tuple[str, str], int] = {}
    names: dict[int, tuple[str, str]] = {}

    def allocate(host: str, service: str) -> int:
        key = (clean_text(host), clean_text(service))
        sid = sources.setdefault(key, len(names) + 1)
        names[sid] = key
        sources[(host, service)] = sid
        return sid

    return sources, names, allocate


def _row_path(events: list[Event], first: int) -> Encoded:
    """What the writer stored before: RowBuilder rows, then each record encoded from its row
    (cleaned when it could not be)."""
    sources, names, allocate = _sources()
    rows, records, messages = [], [], []
    for row in RowBuilder(sources, allocate).rows(events, first):
        try:
            rec = record_bytes(row, *names[row[3]])
        except (TypeError, ValueError):
            row = clean_row(row)
            rec = record_bytes(row, *names[row[3]])
        rows.append(narrow_row(row))
        records.append(rec)
        messages.append(row[EVENT_COLUMNS.index("message")])
    return rows, records, messages


def _encoder() -> NarrowEncoder:
    sources, names, allocate = _sources()
    return NarrowEncoder(sources, names, allocate, RowBuilder(sources, allocate).rows)


def test_same_records_and_rows_as_the_row_path_over_the_corpus(corpus: Path) -> None:
    events = list(read_events(discover([str(corpus)])))
    assert len(events) > 1000
    got = _encoder().encode(events, 7)
    want = _row_path(events, 7)
    assert got[1] == want[1]  # record bytes, byte for byte
    assert got[0] == want[0]
    assert got[2] == want[2]
    assert [len(r) for r in got[0]] == [len(NARROW_COLUMNS)] * len(events)


def test_events_needing_the_careful_path_encode_as_before() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    odd = [
        Event(time=t, received=t, host="h", service="s", message="plain", raw="plain"),
        Event(time=t.replace(tzinfo=None), received=t, host="h", service="s", raw="naive time"),
        Event(time=t, received=t, host="h\udcff", service="s", message="bad \udcfe byte", raw="x\udcfe"),
        Event(time=t, received=t + timedelta(seconds=1), host="h", service="s",
              attrs={"n": {1, 2}, "b": b"\xff"}, raw="odd attrs"),
        Event(time=t, received=t, host="h", service="keystone", action="authenticate", outcome="failure",
              initiator=Initiator(name="alice", domain="Default", source_ip="10.0.0.1", user_agent="ua"),
              target=Target(type="t", id="tid", name="tn"), request_id="req-1", raw="login"),
        Event(time=t, received=t, host="h", service="s", origin="o\udc80", raw="bad origin"),
    ]
    for at in range(len(odd)):  # each odd event alone and among plain ones
        batch = [odd[0], odd[at], odd[0]]
        assert _encoder().encode(batch, 1) == _row_path(batch, 1)
    assert _encoder().encode(odd, 1) == _row_path(odd, 1)
