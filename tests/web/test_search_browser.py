"""Search in real headless Chromium: field queries and their hit count, a parse error shown
where it is, pivots and sidebar filters, a request's path, brushing the histogram, the time
picker, the display zone, and the live tail picking up a newly stored event. Screenshots go
to test-artifacts/ (search-*.png)."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

from stackwatch.api.params import store_now
from stackwatch.search.run import run_search
from stackwatch.testing import make_event
from tests.web.conftest import ARTIFACTS, shot
from tests.web.test_browser import log_in

IP = "203.0.113.45"


def search(page, server: str, query: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/search")
    page.fill("#q", query)
    with page.expect_navigation():
        page.click("#search-button")
    page.wait_for_selector("#hit-count")


def shots(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """The whole page, and what the window shows first (easier to check by eye)."""
    shot(page, name)
    page.screenshot(path=str(ARTIFACTS / f"{name}-top.png"))


def hits(page) -> int:  # type: ignore[no-untyped-def]
    return int(page.locator("#hit-count").inner_text())


def column(page, field: str) -> list[str]:  # type: ignore[no-untyped-def]
    return page.locator(f"#events tbody a.pivot[data-field={field}]").all_inner_texts()


def test_a_field_query_shows_its_hit_count_and_only_matching_rows(page, server: str, services) -> None:  # type: ignore[no-untyped-def]
    log_in(page, server, "vic")
    search(page, server, f"source_ip:{IP} AND outcome:failure")
    expected = run_search(services.store, f"source_ip:{IP} AND outcome:failure", count=True).total
    assert expected and hits(page) == expected
    rows = page.locator("#events tbody tr")
    assert rows.count() == min(expected, 50)
    assert set(column(page, "source_ip")) == {IP}
    assert page.locator("#events tbody .status-failure").count() == rows.count()
    assert page.locator("svg#histogram rect.bar").count() >= 1
    shots(page, "search-01-field-query")


def test_a_parse_error_points_at_the_offending_token(page, server: str) -> None:  # type: ignore[no-untyped-def]
    log_in(page, server, "vic")
    search_page = server + "/search"
    page.goto(search_page)
    page.fill("#q", "outcome:failure AND user: admin")
    page.click("#search-button")
    error = page.locator("#query-error")
    assert "error at column 26: expected a value after 'user:'" in error.inner_text()
    caret = page.locator("#query-error pre.caret").inner_text().splitlines()
    assert caret[0] == "outcome:failure AND user: admin" and caret[1] == " " * 25 + "^"
    shots(page, "search-02-parse-error")


def test_clicking_an_ip_pivots_to_a_search_for_it(page, server: str) -> None:  # type: ignore[no-untyped-def]
    log_in(page, server, "vic")
    search(page, server, "action:authenticate AND outcome:failure")
    link = page.locator("#events tbody a.pivot[data-field=source_ip]").first
    ip = link.inner_text()
    link.click()
    page.wait_for_url(re.compile(r"q=source_ip"))
    assert parse_qs(urlparse(page.url).query)["q"] == [f"source_ip:{ip}"]
    assert set(column(page, "source_ip")) == {ip}
    shots(page, "search-03-pivot")


def test_a_sidebar_value_narrows_the_query(page, server: str) -> None:  # type: ignore[no-untyped-def]
    log_in(page, server, "vic")
    search(page, server, "outcome:failure")
    before = hits(page)
    facet = page.locator("aside#fields a.facet[data-field=host]").first
    host = facet.inner_text()
    facet.click()
    page.wait_for_url(re.compile(r"host"))
    assert parse_qs(urlparse(page.url).query)["q"] == [f"outcome:failure AND host:{host}"]
    assert 0 < hits(page) < before
    assert set(column(page, "host")) == {host}
    shots(page, "search-04-sidebar-filter")


def test_a_request_id_shows_the_requests_path_across_services(page, server: str, services) -> None:  # type: ignore[no-untyped-def]
    by_request: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for stored in run_search(services.store, "request_id:*", limit=10_000).events:
        by_request[stored.event.request_id or ""].add((stored.event.host, stored.event.service))
    request_id, hops = max(by_request.items(), key=lambda item: len(item[1]))
    assert len(hops) >= 3
    log_in(page, server, "vic")
    search(page, server, f"request_id:{request_id}")
    page.locator("#events tbody a.request").first.click()
    page.wait_for_url(re.compile(r"/search/request/"))
    assert page.locator("#request-id").inner_text() == request_id
    assert page.locator("ol#path li").count() == len(hops)
    times = page.locator("#timeline tbody td.time time").evaluate_all("els => els.map(e => e.dateTime)")
    assert times == sorted(times, key=datetime.fromisoformat) and len(times) >= len(hops)
    shots(page, "search-05-request-path")


def test_brushing_the_histogram_zooms_the_time_window(page, server: str) -> None:  # type: ignore[no-untyped-def]
    log_in(page, server, "vic")
    search(page, server, "service:keystone")  # the archive's span (stackwatch audits its logins now)
    everything = hits(page)
    box = page.locator("svg#histogram").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.3, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.45, y, steps=5)
    page.mouse.move(box["x"] + box["width"] * 0.6, y, steps=5)
    page.mouse.up()
    page.wait_for_url(re.compile(r"from=.*to="))
    params = parse_qs(urlparse(page.url).query)
    start = datetime.fromisoformat(params["from"][0])
    end = datetime.fromisoformat(params["to"][0])
    assert 0 < hits(page) < everything
    assert "→" in page.locator("#window-label").inner_text()
    shown = [datetime.fromisoformat(t) for t in page.locator("#events tbody td.time time").evaluate_all(
        "els => els.map(e => e.dateTime)")]
    assert shown and all(start <= t < end for t in shown)
    shots(page, "search-06-brushed")


def test_the_time_picker_sets_relative_and_absolute_windows(page, server: str, services) -> None:  # type: ignore[no-untyped-def]
    log_in(page, server, "vic")
    page.goto(server + "/alerts")
    assert page.locator("#timepicker").count() == 1  # the picker is on every page
    search(page, server, "action:authenticate")
    everything = hits(page)
    page.click("#timepicker a[data-range='24h']")
    page.wait_for_url(re.compile(r"range=24h"))
    assert page.locator("#window-label").inner_text() == "Last 24 hours"
    assert parse_qs(urlparse(page.url).query)["q"] == ["action:authenticate"]  # the query is kept
    last_day = datetime.now(UTC) - timedelta(hours=24)
    assert hits(page) == run_search(services.store, "action:authenticate", since=last_day, count=True).total
    page.fill("#window-from", "2026-03-02T08:00")
    page.fill("#window-to", "2026-03-02T08:30")
    page.click("#window-apply")
    page.wait_for_url(re.compile(r"from=2026-03-02T08%3A00"))
    assert 0 < hits(page) < everything
    assert page.locator("#window-label").inner_text() == "2026-03-02T08:00 → 2026-03-02T08:30"
    shots(page, "search-07-time-picker")


def test_timestamps_switch_to_the_browsers_zone_and_stay_switched(browser, server: str) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, timezone_id="Asia/Kolkata")
    page = context.new_page()
    try:
        log_in(page, server, "vic")
        search(page, server, f"source_ip:{IP}")
        first = page.locator("#events tbody td.time time").first
        moment = datetime.fromisoformat(first.get_attribute("datetime"))
        assert first.inner_text() == moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        with page.expect_navigation():
            page.click("#zone-toggle")
        zone = page.locator("#zone-toggle").inner_text()
        assert zone in ("Asia/Kolkata", "Asia/Calcutta")  # the browser's name for it (ICU keeps the old one)
        first = page.locator("#events tbody td.time time").first
        local = moment.astimezone(datetime.fromisoformat("2026-01-01T00:00+05:30").tzinfo)
        assert first.inner_text() == local.strftime("%Y-%m-%d %H:%M:%S IST")
        shots(page, "search-08-browser-zone")
        page.goto(server + "/alerts")  # remembered across pages
        assert page.locator("#zone-toggle").inner_text() == zone
        assert "IST" in page.locator("main").inner_text()
    finally:
        context.close()


def test_the_live_tail_shows_a_newly_stored_event(page, server: str, services) -> None:  # type: ignore[no-untyped-def]
    log_in(page, server, "vic")
    search(page, server, "host:tail-test-host")
    assert hits(page) == 0
    page.check("#live-tail")
    page.wait_for_timeout(300)
    # At the archive's end, not now: the store's "now" (other pages' default window) stays put.
    event = make_event(time=store_now(services.store), host="tail-test-host", service="keystone",
                       kind="oslo_log", message="live tail sees this authentication failure",
                       raw="live tail record")
    services.store.append_events([event])
    services.store.flush()
    page.wait_for_selector("#events tbody tr.fresh")
    assert "live tail sees this" in page.locator("#events tbody tr").first.inner_text()
    assert hits(page) == 1
    shots(page, "search-09-live-tail")


def test_the_live_tail_falls_back_to_polling_when_the_stream_is_refused(  # type: ignore[no-untyped-def]
        page, server: str, app, services) -> None:
    from stackwatch.api.routes.live import MAX_STREAMS

    log_in(page, server, "vic")
    search(page, server, "host:tail-fallback-host")
    app.state.live_streams = MAX_STREAMS  # every stream is refused (503): EventSource gives up
    try:
        page.check("#live-tail")
        page.locator("#events[data-tail-mode=poll]").wait_for()
        event = make_event(time=store_now(services.store), host="tail-fallback-host", service="keystone",
                           kind="oslo_log", message="polled into the live tail", raw="fallback record")
        services.store.append_events([event])
        services.store.flush()
        page.wait_for_selector("#events tbody tr.fresh")
        assert "polled into the live tail" in page.locator("#events tbody tr").first.inner_text()
    finally:
        app.state.live_streams = 0
        page.uncheck("#live-tail")
