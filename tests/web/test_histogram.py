"""Charts over time say their zone; the search histogram carries its axis for the brush and
links every bar to its own span."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from stackwatch.search.run import Buckets
from stackwatch.web.charts import time_bars
from stackwatch.web.histogram import histogram_svg

START = datetime(2026, 12, 1, 8, tzinfo=UTC)


def test_a_time_chart_names_its_zone() -> None:
    times = [START, START + timedelta(hours=1)]
    svg = time_bars(times, [("events", "c-total", [3, 4])], step=3600, title="t")
    assert '<text class="tick zone"' in svg and ">UTC</text>" in svg


def test_the_histogram_carries_its_axis_and_links_each_bar() -> None:
    buckets = Buckets(START, timedelta(minutes=5), (2, 0, 7))
    svg = histogram_svg(buckets, UTC, lambda a, b: f"/search?from={a}&to={b}")
    assert f'data-start="{int(START.timestamp() * 1000)}"' in svg and 'data-step="300000"' in svg
    assert 'data-size="3"' in svg
    assert svg.count('class="bar"') == 2  # empty buckets draw nothing
    assert 'href="/search?from=2026-12-01T08:10:00Z&amp;to=2026-12-01T08:15:00Z"' in svg
    assert "Hits per 5 minutes (UTC)" in svg


def test_the_histogram_labels_in_the_display_zone() -> None:
    svg = histogram_svg(Buckets(START, timedelta(hours=1), (1,)), ZoneInfo("Asia/Tokyo"), lambda a, b: "#")
    assert "12-01 17:00" in svg and "(JST)" in svg
