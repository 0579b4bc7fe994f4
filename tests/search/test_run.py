"""Histogram buckets: aligned, a step from the fixed list, never more than BARS (plus one)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stackwatch.search.run import BARS, buckets_for

T = datetime(2026, 12, 1, 8, 7, 13, tzinfo=UTC)


@pytest.mark.parametrize(("span", "step"), [
    (timedelta(seconds=30), timedelta(seconds=1)),
    (timedelta(minutes=10), timedelta(seconds=10)),
    (timedelta(hours=1), timedelta(minutes=1)),
    (timedelta(hours=24), timedelta(minutes=30)),
    (timedelta(days=7), timedelta(hours=3)),
    (timedelta(days=365), timedelta(days=7)),
    (timedelta(days=1800), timedelta(days=30)),
    (timedelta(days=5000), timedelta(days=90)),
])
def test_the_step_is_the_smallest_that_fits(span: timedelta, step: timedelta) -> None:
    start, chosen, size = buckets_for(T, T + span)
    assert chosen == step
    assert start <= T < start + chosen and (start - datetime(1970, 1, 1, tzinfo=UTC)) % chosen == timedelta(0)
    assert start + chosen * size >= T + span and size <= BARS + 1


def test_an_empty_span_still_has_a_bar() -> None:
    assert buckets_for(T, T)[2] == 1
