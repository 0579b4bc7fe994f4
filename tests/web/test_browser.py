"""The dashboard in real headless Chromium (Playwright driving Debian's chromium): log in,
overview, an alert and its evidence, acknowledge, search, keystone access. Screenshots go
to test-artifacts/."""

from __future__ import annotations

import re

from stackwatch.store.base import AlertQuery
from tests.api.conftest import PASSWORDS
from tests.web.conftest import shot


def log_in(page, server: str, name: str = "rex") -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/")
    assert "/login" in page.url
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    page.click("button[type=submit]")
    page.wait_for_url(server + "/")


def test_login_shows_the_overview(page, server: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/")
    shot(page, "01-login")
    log_in(page, server)
    assert page.locator("h1").first.inner_text().startswith("Overview")
    assert page.locator("svg.chart").count() >= 1
    assert page.locator(".card .num").count() >= 5
    assert page.locator("a.badge").inner_text() == "integrity: not configured"
    shot(page, "02-overview")
    assert not [e for e in page.console_errors if "Content Security Policy" in e], page.console_errors


def test_wrong_password_stays_on_the_login_page(page, server: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/login")
    page.fill("input[name=username]", "rex")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    assert "Wrong user name or password" in page.locator(".error").inner_text()


def test_open_an_alert_see_its_evidence_and_acknowledge_it(page, server: str, services) -> None:  # type: ignore[no-untyped-def]
    log_in(page, server)
    page.goto(server + "/alerts?status=open&category=auth.bruteforce")
    shot(page, "03-alerts")
    link = page.locator("table.alerts tbody tr td a").first
    alert_id = int(link.inner_text())
    link.click()
    page.wait_for_url(re.compile(rf"/alerts/{alert_id}$"))
    assert page.locator("section.evidence-record table.fields").count() >= 1
    evidence = page.locator("section.evidence-record pre.raw")
    assert evidence.count() >= 1 and (evidence.first.text_content() or "").strip()
    shot(page, "04-alert-evidence")
    page.click("#ack")
    page.wait_for_url(re.compile(rf"/alerts/{alert_id}$"))
    assert page.locator("#alert-status").inner_text() == "acknowledged"
    assert "rex" in page.locator("ul.history").inner_text()
    shot(page, "05-alert-acknowledged")
    assert services.store.get_alert(alert_id).alert.status == "acknowledged"


def test_free_text_search_keeps_its_url(page, server: str) -> None:  # type: ignore[no-untyped-def]
    log_in(page, server, "vic")
    page.goto(server + "/search")
    page.fill("#q", "Authorization failed")
    page.click("#search-button")
    page.wait_for_selector("table.events tbody tr")
    rows = page.locator("table.events tbody tr")
    assert rows.count() > 5
    assert "authorization failed" in rows.first.inner_text().lower()
    assert "q=Authorization" in page.url  # the search is a link
    shot(page, "06-search")


def test_keystone_access_page(page, server: str) -> None:  # type: ignore[no-untyped-def]
    log_in(page, server, "vic")
    page.goto(server + "/keystone")
    assert page.locator("svg.chart").count() == 3
    assert page.locator(".tag-brute_force").count() >= 1 and page.locator(".tag-spraying").count() >= 1
    assert "★" in page.locator("tr.row-privileged").first.inner_text()
    shot(page, "07-keystone")
    page.click("table a:text-is('203.0.113.45')")
    page.wait_for_selector("#timeline")
    assert page.locator("#timeline tbody tr").count() == 40
    shot(page, "08-keystone-timeline")


def test_a_viewer_sees_no_acknowledge_button(page, server: str, services) -> None:  # type: ignore[no-untyped-def]
    alert = services.store.alerts(AlertQuery(limit=1))[0]
    log_in(page, server, "vic")
    page.goto(f"{server}/alerts/{alert.id}")
    assert page.locator("#ack").count() == 0


def test_sources_and_activity_pages(page, server: str) -> None:  # type: ignore[no-untyped-def]
    log_in(page, server, "vic")
    page.goto(server + "/sources")
    assert page.locator("svg.spark").count() > 5
    shot(page, "09-sources")
    page.goto(server + "/activity")
    assert page.locator("table tbody tr").count() > 5
    shot(page, "10-activity")
