"""Triage in real headless Chromium over a store of its own: tick alerts and acknowledge
them in one go, assign them to oneself and find them under "Mine", sort by a column, silence
an alert's rule and key from its page and expire the silence; the sources page grouped.
Screenshots go to test-artifacts/ (triage-*.png)."""

from __future__ import annotations

import re

from stackwatch.store.base import AlertQuery
from tests.web.conftest import shot
from tests.web.test_browser import log_in


def _picked_ids(page) -> list[int]:  # type: ignore[no-untyped-def]
    values = page.locator("#bulk input.pick:checked").evaluate_all("els => els.map(e => e.value)")
    return [int(v) for v in values]


def test_tick_two_alerts_and_acknowledge_them_at_once(page, triage_server: str, triage_services) -> None:  # type: ignore[no-untyped-def]
    server = triage_server
    log_in(page, server)
    page.goto(server + "/alerts?status=open")
    before = int(re.search(r"of (\d+) alert", page.locator("#alert-totals").inner_text()).group(1))  # type: ignore[union-attr]
    picks = page.locator("#bulk input.pick")
    picks.nth(0).check()
    picks.nth(1).check()
    ids = _picked_ids(page)
    assert len(ids) == 2 and page.locator("#selected-count").inner_text() == "2 selected:"
    shot(page, "triage-01-two-selected")
    page.click("#bulk-ack")
    page.wait_for_url(re.compile(r"/alerts\?status=open$"))
    after = int(re.search(r"of (\d+) alert", page.locator("#alert-totals").inner_text()).group(1))  # type: ignore[union-attr]
    assert after == before - 2
    shot(page, "triage-02-after-bulk-ack")
    assert {triage_services.store.get_alert(i).alert.status for i in ids} == {"acknowledged"}
    assert not [e for e in page.console_errors if "Content Security Policy" in e], page.console_errors


def test_select_all_then_resolve_a_filtered_page(page, triage_server: str, triage_services) -> None:  # type: ignore[no-untyped-def]
    server = triage_server
    log_in(page, server)
    page.goto(server + "/alerts?status=open&severity=low")
    page.check("#select-all")
    ids = _picked_ids(page)
    assert ids and len(ids) == page.locator("#bulk input.pick").count()
    page.click("#bulk-resolve")
    page.wait_for_url(re.compile(r"/alerts\?status=open&severity=low$"))
    assert "No alerts match." in page.content()
    assert {triage_services.store.get_alert(i).alert.status for i in ids} == {"resolved"}


def test_assign_to_me_and_find_it_under_mine(page, triage_server: str, triage_services) -> None:  # type: ignore[no-untyped-def]
    server = triage_server
    log_in(page, server)
    page.goto(server + "/alerts?status=")
    page.locator("#bulk input.pick").nth(2).check()
    [target] = _picked_ids(page)
    page.fill("#bulk-assignee", "me")
    page.click("#bulk-assign")
    page.wait_for_url(re.compile(r"/alerts\?status=$"))
    page.click("#mine")
    page.wait_for_url(re.compile(r"assignee=me"))
    rows = page.locator("table.alerts tbody tr")
    assert rows.count() >= 1 and str(target) in [rows.nth(i).locator("td a").first.inner_text()
                                                 for i in range(rows.count())]
    assert "rex" in page.locator("table.alerts").inner_text()
    shot(page, "triage-03-mine")
    assert triage_services.store.get_alert(target).assignee == "rex"


def test_sort_by_severity_from_the_column_header(page, triage_server: str) -> None:  # type: ignore[no-untyped-def]
    server = triage_server
    log_in(page, server)
    page.goto(server + "/alerts?status=")
    page.click("a.sort >> text=Severity")
    page.wait_for_url(re.compile(r"sort=severity&order=desc"))
    severities = page.locator("table.alerts tbody tr .sev").all_inner_texts()
    order = ["critical", "high", "medium", "low"]
    assert [order.index(s) for s in severities] == sorted(order.index(s) for s in severities)
    shot(page, "triage-04-sorted-by-severity")


def test_silence_an_alert_from_its_page_then_expire_it(page, triage_server: str, triage_services) -> None:  # type: ignore[no-untyped-def]
    server = triage_server
    [target] = triage_services.store.alerts(AlertQuery(category="auth.bruteforce", limit=1))
    log_in(page, server)
    page.goto(f"{server}/alerts/{target.id}")
    assert page.locator("section.evidence-record table.fields").count() >= 1
    assert page.locator("#show-all-events").get_attribute("href").startswith("/search?q=")
    shot(page, "triage-05-alert-evidence-fields")
    page.click("#silence")
    page.wait_for_url(re.compile(r"/silences\?rule="))
    assert page.input_value("input[name=rule]") == target.alert.rule
    assert page.input_value("input[name=key]") == target.alert.key
    page.select_option("select[name=duration]", "4h")
    page.fill("input[name=reason]", "pen test by the red team")
    shot(page, "triage-06-silence-form")
    page.click("#create-silence")
    page.wait_for_url(server + "/silences")
    active = page.locator("#active-silences")
    assert "pen test by the red team" in active.inner_text() and "rex" in active.inner_text()
    shot(page, "triage-07-silence-active")
    page.goto(f"{server}/alerts/{target.id}")
    assert "pen test by the red team" in page.locator("#alert-silenced").inner_text()
    page.goto(server + "/silences")
    page.locator("#active-silences button.expire").first.click()
    page.wait_for_url(server + "/silences")
    assert "pen test by the red team" in page.locator("#ended-silences").inner_text()
    shot(page, "triage-08-silence-expired")
    assert triage_services.store.get_alert(target.id).silenced_by is None


def test_a_viewer_gets_no_checkboxes_and_no_silence_form(page, triage_server: str) -> None:  # type: ignore[no-untyped-def]
    server = triage_server
    log_in(page, server, "vic")
    page.goto(server + "/alerts?status=")
    assert page.locator("#bulk input.pick").count() == 0 and page.locator("#bulk-ack").count() == 0
    page.goto(server + "/silences")
    assert page.locator("#new-silence").count() == 0


def test_sources_filtered_and_grouped_by_host(page, triage_server: str) -> None:  # type: ignore[no-untyped-def]
    server = triage_server
    log_in(page, server)
    page.goto(server + "/sources")
    page.fill("input[name=q]", "cmp")
    page.select_option("select[name=group]", "host")
    page.click("#source-filter button[type=submit]")
    page.wait_for_url(re.compile(r"q=cmp&group=host"))
    groups = page.locator("tbody.source-group").evaluate_all("els => els.map(e => e.dataset.group)")
    assert len(groups) > 1 and all(g.startswith("cmp") for g in groups)
    shot(page, "triage-09-sources-grouped")
