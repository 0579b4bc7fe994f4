"""Points in time as operators write them, resolved against a fixed now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from stackwatch.search.times import TimeSpecError, parse_instant, parse_span

NOW = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "start", "end"), [
    ("now", NOW, NOW),
    ("now-1h", NOW - timedelta(hours=1), NOW - timedelta(hours=1)),
    ("-15m", NOW - timedelta(minutes=15), NOW - timedelta(minutes=15)),
    ("-2w", NOW - timedelta(weeks=2), NOW - timedelta(weeks=2)),
    ("-30s", NOW - timedelta(seconds=30), NOW - timedelta(seconds=30)),
    ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)),
    ("2026-12-01T08:30", datetime(2026, 12, 1, 8, 30, tzinfo=UTC), datetime(2026, 12, 1, 8, 30, tzinfo=UTC)),
    ("2026-12-01 08:30:05", datetime(2026, 12, 1, 8, 30, 5, tzinfo=UTC),
     datetime(2026, 12, 1, 8, 30, 5, tzinfo=UTC)),
    ("2026-12-01T08:30:00.250Z", datetime(2026, 12, 1, 8, 30, 0, 250000, tzinfo=UTC),
     datetime(2026, 12, 1, 8, 30, 0, 250000, tzinfo=UTC)),
    ("2026-12-01T08:30+01:00", datetime(2026, 12, 1, 8, 30, tzinfo=timezone(timedelta(hours=1))),
     datetime(2026, 12, 1, 7, 30, tzinfo=UTC)),
])
def test_instants_resolve_against_now(text: str, start: datetime, end: datetime) -> None:
    instant = parse_instant(text)
    assert instant.resolve(NOW) == start
    assert instant.resolve_end(NOW) == end


@pytest.mark.parametrize("text", ["", "yesterday", "1h", "now+1h", "-1y", "2026-13-01", "2026-12-01T25:00",
                                  "-99999999999h", "12:00"])
def test_other_text_is_not_an_instant(text: str) -> None:
    with pytest.raises(TimeSpecError):
        parse_instant(text)


@pytest.mark.parametrize(("text", "seconds"), [("15m", 900), ("1h", 3600), ("24h", 86400), ("7d", 604800)])
def test_spans(text: str, seconds: int) -> None:
    assert parse_span(text) == seconds


@pytest.mark.parametrize("text", ["", "0m", "h", "-1h", "1y", "99999999w"])
def test_bad_spans(text: str) -> None:
    with pytest.raises(TimeSpecError):
        parse_span(text)
