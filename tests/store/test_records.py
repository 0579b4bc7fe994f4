"""Reading format 2 records back (store/integrity/records.py): ``record_event`` builds the Event
straight from the record's normalized array, and must give exactly what ``row_event`` makes of
``record_row``'s row (the path it replaced); ``record_message`` the row's message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stackwatch.core.event import Event, Initiator, Target
from stackwatch.pipeline.reader import discover, read_events
from stackwatch.store.chain import decode_record_bytes
from stackwatch.store.integrity.records import record_event, record_message, record_row, stored_record
from stackwatch.store.rows import RowBuilder, clean_text, row_event

T = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
ODD = [
    Event(time=T, received=T, host="h", service="s", message="plain", raw="plain"),
    Event(time=T, received=T + timedelta(microseconds=1), host="h", service="keystone", action="authenticate",
          outcome="failure", initiator=Initiator(name="alice", source_ip="10.0.0.1"),
          target=Target(type="user", id="u1", name="alice"), observer="keystone", request_id="req-1",
          attrs={"n": 1, "nested": {"a": [1, 2]}}, raw="login", origin="file:/x", ref="x:1"),
    Event(time=T, received=T, host="h", service="s", target=Target(name="only a name"), raw="target only"),
    Event(time=T, received=T, host="h", service="s", observer="obs", raw="observer only"),
    Event(time=T, received=T, host="h", service="s", initiator=Initiator(user_agent="ua"), raw="agent only"),
    Event(time=T - timedelta(days=20000), received=T, host="h", service="s", raw="before 1970"),
    Event(time=T, received=T, host="h\udcff", service="s", message="bad \udcfe byte", raw="x\udcfe\n\udc80"),
    Event(time=T, received=T, host="h", service="s", origin="o\udc80", raw="bad origin"),
]


def _records(events: list[Event]) -> list[bytes]:
    sources: dict[tuple[str, str], int] = {}
    names: dict[int, tuple[str, str]] = {}

    def allocate(host: str, service: str) -> int:  # names as the writer stores them
        key = (clean_text(host), clean_text(service))
        sid = sources.setdefault(key, len(names) + 1)
        names[sid] = key
        sources[(host, service)] = sid
        return sid

    rows = RowBuilder(sources, allocate).rows(events, 1)
    return [stored_record(row, names)[1] for row in rows]


def _by_row(record: bytes) -> tuple[int, Event]:
    """The reference: the row the writer stored, made an Event by ``row_event``."""
    seq, row, host, service = record_row(record)
    return seq, row_event(row, host, service)


@pytest.mark.parametrize("event", ODD, ids=[e.raw[:12] for e in ODD])
def test_record_event_is_row_event_of_the_record_row(event: Event) -> None:
    (record,) = _records([event])
    assert record_event(record) == _by_row(record)


def test_record_event_gives_back_a_plain_event_as_written() -> None:
    event = ODD[1]
    assert record_event(_records([event])[0]) == (1, event)


def test_record_event_and_message_over_the_corpus(corpus: Path) -> None:
    events = list(read_events(discover([str(corpus)])))
    records = _records(events)
    assert len(records) > 1000
    assert [record_event(r) for r in records] == [_by_row(r) for r in records]
    assert [record_message(r) for r in records] == [(seq, e.message) for seq, e in map(_by_row, records)]


@pytest.mark.parametrize("cut", [0, 4, 31, -1])
def test_damaged_records_raise_what_decoding_raises(cut: int) -> None:
    record = _records([ODD[1]])[0]
    bad = record[:cut] if cut >= 0 else record + b"!"
    with pytest.raises(ValueError) as want:
        decode_record_bytes(bad)
    for read in (record_event, record_row, record_message):
        with pytest.raises(ValueError) as got:
            read(bad)
        assert str(got.value) == str(want.value)
