"""Every chart follows the display zone, not only the search page's: in headless Chromium set
to Asia/Kolkata (UTC+05:30), switching to the browser's zone moves the overview's and the
keystone page's time axes by 5 h 30 and names the zone on them. Screenshots go to
test-artifacts/ (zone-*.png)."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.web.conftest import shot
from tests.web.test_browser import log_in

PAGES = ("/", "/keystone")


def _axis(page) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    """(the zone written on the first time chart, its tick labels)."""
    chart = page.locator("svg.chart").filter(has=page.locator("text.zone")).first
    return (chart.locator("text.zone").text_content() or "",
            [t or "" for t in chart.locator("text.tick:not(.zone)").all_text_contents()])


def _shifted(label: str, by: timedelta) -> str:
    return (datetime.strptime(label, "%H:%M") + by).strftime("%H:%M")


def test_chart_axes_follow_the_browsers_zone(browser, server: str) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, timezone_id="Asia/Kolkata")
    page = context.new_page()
    try:
        log_in(page, server, "vic")
        utc = {}
        for path in PAGES:
            page.goto(server + path)
            zone, ticks = _axis(page)
            assert zone == "UTC"
            utc[path] = [t for t in ticks if ":" in t]
            assert utc[path], f"{path}: no time ticks"
        with page.expect_navigation():
            page.click("#zone-toggle")
        for path in PAGES:
            page.goto(server + path)
            zone, ticks = _axis(page)
            assert zone == "IST"
            assert [t for t in ticks if ":" in t] == [_shifted(t, timedelta(hours=5, minutes=30))
                                                       for t in utc[path]]
            titles = page.locator("svg.chart rect title").all_text_contents()
            assert titles and all(":" in t for t in titles)
            shot(page, "zone-" + (path.strip("/") or "overview"))
    finally:
        context.close()
