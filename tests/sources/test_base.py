"""sources/base: the token bucket that rate-limits sources."""

from __future__ import annotations

import asyncio
import time

import pytest

from stackwatch.sources.base import TokenBucket


def test_waiting_for_more_tokens_than_the_burst_returns_after_the_rate_allows_them():
    bucket = TokenBucket(rate=1000, burst=10)

    async def wait_for_fifty() -> float:
        started = time.monotonic()
        # before the fix the bucket (which never holds more than 10) waited for 50 forever
        await asyncio.wait_for(bucket.wait(50), timeout=5)
        return time.monotonic() - started

    elapsed = asyncio.run(wait_for_fifty())
    # 10 were there at once, the other 40 come at 1000/s: about 40 ms, never less
    assert elapsed >= 0.038
    assert elapsed < 2


def test_waiting_for_tokens_the_bucket_holds_takes_them_at_once():
    bucket = TokenBucket(rate=10, burst=5)

    async def wait_for_five() -> None:
        await asyncio.wait_for(bucket.wait(5), timeout=0.5)

    asyncio.run(wait_for_five())
    assert bucket.take() is False  # the five were taken; at 10/s the next is 0.1 s away


@pytest.mark.parametrize("count", [1, 10_000])
def test_an_unlimited_bucket_never_waits(count: int):
    bucket = TokenBucket(rate=0)
    asyncio.run(asyncio.wait_for(bucket.wait(count), timeout=0.5))
    assert bucket.take(count) is True
