"""The cloud-usage page in real headless Chromium over the seeded demo store: the leaked
credential's project leads the top movers with its usage alerts, its timeline opens from the
table, the steady CI project is listed with no alert. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re

from stackwatch.scenario import attacks_usage
from tests.web.conftest import shot
from tests.web.test_browser import log_in


def _projects(services) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """project name -> id in the seeded scenario (seed 7)."""
    from stackwatch.scenario.world import World

    world = World.build(7, 0)
    return {p.name: p.id for p in world.projects}


def test_usage_page_shows_the_leaked_project_as_top_mover(page, server: str, services) -> None:  # type: ignore[no-untyped-def]
    ids = _projects(services)
    log_in(page, server, "vic")
    page.click("nav a[href='/usage']")
    page.wait_for_url(server + "/usage")
    assert page.locator("h1").first.inner_text() == "Cloud usage"
    assert page.locator("svg.chart").count() >= 2  # creations over time, top movers
    first = page.locator("table.movers tbody tr").first
    assert first.locator("td").first.inner_text() == ids["ml-training"]
    assert int(first.locator("td").nth(1).inner_text()) >= attacks_usage.LAUNCHES
    assert int(first.locator("td").nth(4).inner_text()) >= 4  # burst, GPU, large flavor, quota, credential
    ci_row = page.locator("table.usage tbody tr", has=page.locator(f"a:text-is('{ids['ci-runners']}')"))
    assert ci_row.count() == 1
    assert ci_row.locator("td").last.inner_text() == ""  # busy, and no alert
    assert page.locator("table.usage svg.spark").count() == page.locator("table.usage tbody tr").count()
    shot(page, "20-usage")
    first.locator("td a").first.click()
    page.wait_for_url(re.compile(r"/usage\?project="))
    assert ids["ml-training"] in page.locator("#selected").inner_text()
    assert page.locator("#selected svg.chart rect.c-t0").count() >= 1  # its instances over time
    shot(page, "21-usage-project")
    assert not [e for e in page.console_errors if "Content Security Policy" in e], page.console_errors
