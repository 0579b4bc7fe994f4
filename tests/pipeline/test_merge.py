"""The batched time-ordered merge gives exactly heapq.merge's order: ties to the lower stream,
files that go back in time merged head by head, empty lists and streams skipped."""

from __future__ import annotations

import heapq
import operator
import random
from datetime import UTC, datetime, timedelta

import pytest

from stackwatch.core.event import Event
from stackwatch.pipeline import reader
from stackwatch.pipeline.reader import merge_by_time

BASE = datetime(2026, 3, 2, tzinfo=UTC)


def stream(index: int, seconds: list[int]) -> list[Event]:
    return [Event(time=BASE + timedelta(seconds=s), received=BASE, message=f"{index}:{n}")
            for n, s in enumerate(seconds)]


def in_lists(events: list[Event], sizes: list[int]) -> list[list[Event]]:
    """``events`` cut into lists of the given sizes (0: an empty list), the rest in one."""
    out: list[list[Event]] = []
    start = 0
    for size in sizes:
        out.append(events[start:start + size])
        start += size
    out.append(events[start:])
    return out


def merged(streams: list[list[list[Event]]]) -> list[str]:
    chunks = merge_by_time([iter(lists) for lists in streams])
    return [event.message for chunk in chunks for event in chunk]


def expected(streams: list[list[list[Event]]]) -> list[str]:
    flat = [[event for events in lists for event in events] for lists in streams]
    return [event.message for event in heapq.merge(*flat, key=operator.attrgetter("time"))]


def test_ties_go_to_the_lower_stream_and_keep_file_order():
    streams = [[stream(0, [1, 2, 2, 3])], [stream(1, [2, 2])], [stream(2, [0, 2, 5])]]
    assert merged(streams) == expected(streams) == [
        "2:0", "0:0", "0:1", "0:2", "1:0", "1:1", "2:1", "0:3", "2:2"]


def test_a_file_going_back_in_time_is_merged_head_by_head():
    streams = [[stream(0, [5, 1, 2, 9, 3])], [stream(1, [2, 4, 6])]]
    assert merged(streams) == expected(streams)


def test_no_stream_one_stream_and_empty_streams():
    assert merged([]) == []
    assert merged([[[]], []]) == []
    streams = [[[], stream(0, [3, 1]), []], [[]]]
    assert merged(streams) == ["0:0", "0:1"]


# (SMALL_ROUNDS, HEAD_BY_HEAD_STEPS, HEAD_BY_HEAD_LIST): as shipped; head by head after every
# round, a step at a time; after every short round, a few steps at a time, handed on in lists
# of two: the two ways take turns.
MODES = [(reader.SMALL_ROUNDS, reader.HEAD_BY_HEAD_STEPS, reader.HEAD_BY_HEAD_LIST), (0, 1, 1), (1, 3, 2)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", range(150))
def test_same_order_as_heapq_merge_on_random_streams(seed: int, mode: tuple[int, int, int],
                                                     monkeypatch: pytest.MonkeyPatch):
    for name, value in zip(("SMALL_ROUNDS", "HEAD_BY_HEAD_STEPS", "HEAD_BY_HEAD_LIST"), mode, strict=True):
        monkeypatch.setattr(reader, name, value)
    rng = random.Random(seed)
    streams = []
    for index in range(rng.randint(1, 7)):
        count = rng.randint(0, 40)
        span = rng.choice([3, 10, 100])  # few distinct times: many ties
        seconds = sorted(rng.randint(0, span) for _ in range(count))
        for _ in range(rng.choice([0, 0, 1, 3, 20])):  # some events out of order
            if seconds:
                seconds[rng.randrange(len(seconds))] = rng.randint(0, span)
        sizes = [rng.choice([0, 1, 2, 5, 17]) for _ in range(rng.randint(0, 6))]
        streams.append(in_lists(stream(index, seconds), sizes))
    assert merged(streams) == expected(streams)


def test_files_often_going_back_in_time_are_merged_head_by_head():
    """Short sorted runs make short rounds: the merge switches to head by head (and back)."""
    rng = random.Random(7)
    streams = []
    for index in range(12):
        seconds = sorted(rng.randint(0, 500) for _ in range(300))
        for position in range(0, len(seconds) - 1, 3):  # back in time every third event
            seconds[position], seconds[position + 1] = seconds[position + 1], seconds[position]
        streams.append(in_lists(stream(index, seconds), [rng.randint(1, 60) for _ in range(8)]))
    assert merged(streams) == expected(streams)
