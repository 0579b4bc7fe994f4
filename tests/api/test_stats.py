"""Source health: steady sources falling quiet are silent, sporadic ones are not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stackwatch.api.stats import source_health
from stackwatch.store.base import SourceStats

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def stats(service: str, count: int, first_min: float, last_min: float) -> SourceStats:
    return SourceStats(
        "ctl1", service, NOW - timedelta(minutes=first_min), NOW - timedelta(minutes=last_min), count, NOW
    )


def health(*sources: SourceStats, **options: object) -> dict[str, bool]:
    rows = source_health(list(sources), silent_after=900, now=NOW, **options)  # type: ignore[arg-type]
    return {h.service: h.silent for h in rows}


def test_a_steady_source_that_stopped_is_silent() -> None:
    assert health(stats("keystone", 600, 120, 30)) == {"keystone": True}


def test_a_steady_source_still_writing_is_not() -> None:
    assert health(stats("keystone", 600, 120, 0.5)) == {"keystone": False}


def test_a_sporadic_source_is_not_silent_on_its_rate_alone() -> None:
    assert health(stats("CRON", 9, 120, 30), stats("chronyd", 1, 60, 60)) == {"CRON": False, "chronyd": False}


def test_expected_sources_are_held_to_silent_after() -> None:
    result = health(stats("CRON", 9, 120, 30), expected=(("ctl1", "CRON"), ("ctl1", "aide")))
    assert result == {"CRON": True, "aide": True}


def test_an_open_silence_alert_makes_a_source_silent() -> None:
    assert health(stats("nova-compute", 50, 120, 1), silenced={("ctl1", "nova-compute")}) == {
        "nova-compute": True
    }


def rate(count: int, first_min: float, last_min: float) -> float:
    [row] = source_health([stats("keystone", count, first_min, last_min)], silent_after=900, now=NOW)
    return row.per_hour


@pytest.mark.parametrize(("count", "first_min", "last_min", "per_hour"), [
    (1, 0, 0, 1.0),  # one event is one an hour (was 60: a span of 0 floored at one minute)
    (10, 0.05, 0, 10.0),  # a burst of 10 in 3 s is 10 in its hour (was 600)
    (120, 180, 120, 40.0),  # 120 in its first hour, then quiet for two: 40 an hour now (was 120)
    (2400, 1440, 0, 100.0),  # a steady source over a day: its plain average
])
def test_the_hourly_rate_is_over_the_watched_time_and_at_least_an_hour(
    count: int, first_min: float, last_min: float, per_hour: float
) -> None:
    assert rate(count, first_min, last_min) == per_hour
