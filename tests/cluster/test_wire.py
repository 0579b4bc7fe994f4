"""The batch wire format: round trip, rule-set interning, and refusals that say why."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from stackwatch.cluster.wire import (
    MAX_BATCH_BYTES,
    MAX_BATCH_ITEMS,
    WIRE_VERSION,
    Batch,
    BatchBuilder,
    Item,
    WireError,
    decode_batch,
    encode_batch,
)
from stackwatch.core.event import Event, Initiator

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _event(n: int) -> Event:
    return Event(time=T0, received=T0, host="ctl1", service="keystone", kind="oslo_log",
                 action="authenticate", outcome="failure",
                 initiator=Initiator(name=f"user{n}", source_ip="203.0.113.9"),
                 attrs={"pid": n, "nested": {"a": [1, 2]}}, raw=f"line {n} \udcff", origin="file:/x",
                 ref=f"x:{n}")


def test_round_trip_keeps_events_rules_and_home() -> None:
    builder = BatchBuilder()
    for n in range(5):
        builder.add(_event(n), ("r1", "r2") if n % 2 else ("r3",), home=n != 3)
    batch = builder.build(collector="c1", seq=7, epoch="e", bucket=12, sent=1.5)
    assert len(batch.rule_sets) == 2  # interned: one entry per distinct rule set
    back = decode_batch(encode_batch(batch))
    assert (back.collector, back.seq, back.bucket, back.version) == ("c1", 7, 12, WIRE_VERSION)
    routed = back.routed()
    assert [r[0] for r in routed] == [_event(n) for n in range(5)]
    plain = Event(time=T0, received=T0, raw="ascii", message="m")
    assert decode_batch(encode_batch(Batch(collector="c", seq=1, rule_sets=[()], items=[
        Item(plain, 0, True)]))).items[0].event == plain
    assert [r[1] for r in routed] == [("r3",), ("r1", "r2"), ("r3",), ("r1", "r2"), ("r3",)]
    assert [r[2] for r in routed] == [True, True, True, False, True]
    assert routed[0][0].time.tzinfo is not None
    assert routed[0][0].raw_bytes() == b"line 0 \xff"  # undecodable bytes survive exactly
    odd = Event(time=T0, received=T0, raw="a\udcfe", message="m \udcfe", attrs={"k": ["\udcfe"]})
    back_odd = decode_batch(encode_batch(Batch(collector="c", seq=1, rule_sets=[()], items=[
        Item(odd, 0, True)]))).items[0].event
    assert back_odd.raw == odd.raw  # raw exact; other text as the store keeps it (U+FFFD)
    assert (back_odd.message, back_odd.attrs) == ("m \ufffd", {"k": ["\ufffd"]})


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty"),
    (b"\xc1garbage", "not a msgpack batch"),
    (msgspec.msgpack.encode({"version": 99, "collector": "c", "seq": 1}), "version 99"),
    (msgspec.msgpack.encode({"version": 1, "collector": "", "seq": 1}), "collector name"),
    (msgspec.msgpack.encode({"version": 1, "collector": "c", "seq": 0}), "seq must be positive"),
    (msgspec.msgpack.encode({"version": 1, "collector": "c", "seq": 1, "items": [[{"x": 1}, 0, True]]}),
     "malformed batch"),
])
def test_bad_batches_are_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(WireError, match=message):
        decode_batch(data)


def test_item_naming_a_missing_rule_set_is_refused() -> None:
    batch = Batch(collector="c", seq=1, rule_sets=[("r",)], items=[Item(_event(1), 3, True)])
    plain = [Item(Event(time=T0, received=T0), 3, True)]
    data = msgspec.msgpack.encode(msgspec.structs.replace(batch, items=plain))
    with pytest.raises(WireError, match="rule set 3"):
        decode_batch(data)
    with pytest.raises(WireError):
        encode_batch(batch)


def test_size_limits() -> None:
    items = [Item(_event(1), 0, True)] * (MAX_BATCH_ITEMS + 1)
    with pytest.raises(WireError, match="items, over"):
        encode_batch(Batch(collector="c", seq=1, rule_sets=[()], items=items))
    builder = BatchBuilder()
    builder.add(_event(1), (), True)
    assert builder.full(1, 10**9) and builder.full(100, 10) and not builder.full(100, 10**9)


@pytest.mark.parametrize("char", ["a", "é", "€", "\U0001f600"])
def test_a_builder_the_collector_calls_full_always_encodes(char: str) -> None:
    """The collector publishes a builder once ``full(batch_events, BATCH_BYTES)`` says so and
    stops on a WireError (never drops a batch): whatever the records hold, a full builder must
    encode under MAX_BATCH_BYTES. A JSON record with non-ASCII fields (attrs as large as raw,
    4 bytes a character) went to twice the limit."""
    import json

    from stackwatch.cluster.collector import BATCH_BYTES
    from stackwatch.parsers.base import ParseContext
    from stackwatch.parsers.framing import frame_lines

    text = char * 3000
    line = json.dumps({"timestamp": "2026-03-01T12:00:00Z", "level": "INFO", "message": text[:300],
                       "detail": text, "more": text}, ensure_ascii=False)
    (event,) = frame_lines([line], ParseContext(host="ctl1", received=T0))
    assert event.kind == "json" and len(event.attrs["detail"]) == 3000
    builder = BatchBuilder()
    while not builder.full(MAX_BATCH_ITEMS, BATCH_BYTES):
        builder.add(event, ("r1",), True)
    data = encode_batch(builder.build(collector="c1", seq=1, epoch="e", bucket=0, sent=0.0))
    assert len(data) <= MAX_BATCH_BYTES
    assert len(decode_batch(data).items) == len(builder)


def test_the_builder_adds_the_hint_of_each_copy() -> None:
    from stackwatch.cluster.wire import _hint

    builder = BatchBuilder()
    events = [_event(1), replace_text(_event(2), "é" * 10)]
    for event in events:
        builder.add(event, ("r1",), True)
    assert builder.bytes_hint == sum(_hint(e.raw, e.message) for e in events)


def replace_text(event: Event, text: str) -> Event:
    return msgspec.structs.replace(event, raw=text, message=text)
