"""The keystone login form in Chromium: a tenant logs in with its keystone user, password,
domain and project, and lands on its project's overview (its alert, not the other project's;
no infrastructure pages in the menu). Screenshots go to test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stackwatch.api import Services
from stackwatch.core.alert import Alert
from tests.api.conftest import make_app, services_over
from tests.api.keystone_cloud import GENEROUS, T0, Cloud, _settings
from tests.web.conftest import serving, shot


@pytest.fixture(scope="module")
def browser_services(tmp_path_factory: pytest.TempPathFactory, cloud: Cloud) -> Iterator[Services]:
    """Each project's alert and an infrastructure alert (no AMQP here: Playwright's sync API
    holds the thread's event loop once the browser runs)."""
    services = services_over(Path(tmp_path_factory.mktemp("keystone-browser")) / "data")
    services.store.upsert_alerts([
        Alert(rule=f"t-{label}", title=f"{label.upper()}-ALERT-MARKER", category="test.tenant",
              severity="high",
              time=T0, last_seen=T0, key=label, project=cloud.projects[label]) for label in ("alpha", "beta")
    ] + [Alert(rule="t-node", title="INFRA-ALERT-MARKER", category="test.node", severity="high", time=T0,
               last_seen=T0, key="cmp-9", host="cmp-9")])
    services.store.flush()
    yield services
    services.close()


# ``keystone`` first: its start-up speaks AMQP with asyncio, which must happen before the browser
def test_the_keystone_login_form_in_chromium(keystone, cloud: Cloud, browser_services: Services,  # type: ignore[no-untyped-def]
                                             browser) -> None:
    user = cloud.users["alphavictim"]
    app = make_app(browser_services, keystone=_settings(cloud), login_rate=GENEROUS)
    with serving(app) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            page.goto(url + "/")
            assert page.url.startswith(url + "/login")
            form = page.locator("#keystone-login")
            form.locator("input[name=username]").fill(user.name)
            form.locator("input[name=password]").fill(user.password)
            form.locator("input[name=domain]").fill("Default")
            form.locator("input[name=project]").fill(user.project or "")
            shot(page, "keystone-login-form")
            form.locator("button[type=submit]").click()
            page.wait_for_url(url + "/")
            shot(page, "keystone-tenant-overview")
            text = page.inner_text("body")
            assert cloud.projects["alpha"] in text
            assert "ALPHA-ALERT-MARKER" in text
            assert "BETA-ALERT-MARKER" not in text and "INFRA-ALERT-MARKER" not in text
            nav = [a.inner_text() for a in page.locator("nav a").all()]
            assert "Sources" not in nav and "Rules" not in nav and "Alerts" in nav
        finally:
            context.close()
