"""The live tail against a real collector: ``stackwatch serve`` (a child process) takes syslog
over TCP into its store; the dashboard runs beside it over the same data folder (read-only, as
a second process would); in headless Chromium, a line sent with ``logger`` appears in the
search page without a reload, pushed over Server-Sent Events. The stream resumes from
``Last-Event-ID``. Screenshot: test-artifacts/live-tail-serve.png."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stackwatch.api import Services, WebSettings, create_app
from tests.api.conftest import PASSWORDS, ROLES
from tests.servetools import ServeProcess, free_port, logger, serve_config
from tests.web.conftest import serving, shot
from tests.web.test_browser import log_in

QUERY = "service:sshd"


@pytest.fixture()
def collector(tmp_path: Path) -> Iterator[tuple[int, Services]]:
    """(the serve process's TCP syslog port, services over its data folder)."""
    port = free_port()
    config = serve_config(tmp_path, f"  - {{type: syslog_tcp, name: tcp, listen: '127.0.0.1:{port}'}}\n",
                          extra="limits: {heartbeat_interval: 200ms}\n")
    serve = ServeProcess(config).start()
    try:
        services = Services.for_data_dir(tmp_path / "data", read_only=True)
        try:
            services.users.add("vic", PASSWORDS["vic"], ROLES["vic"])
            yield port, services
        finally:
            services.close()
    finally:
        assert serve.stop() == 0, serve.log()


def _rows(response: httpx.Response) -> tuple[int, str]:
    """The first ``rows`` event of an SSE stream: (its id, its data)."""
    event: dict[str, list[str]] = {}
    for line in response.iter_lines():
        if not line:
            if event.get("event") == ["rows"]:
                return int(event["id"][0]), "\n".join(event["data"])
            event = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        event.setdefault(name, []).append(value[1:] if value.startswith(" ") else value)
    raise AssertionError("the stream ended without a rows event")


def test_a_line_sent_to_serve_appears_in_the_live_tail(collector: tuple[int, Services], browser) -> None:  # type: ignore[no-untyped-def]
    port, services = collector
    with serving(create_app(WebSettings(), services)) as server:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.set_default_timeout(20_000)
        try:
            log_in(page, server, "vic")
            page.goto(server + "/search?q=" + QUERY)
            assert int(page.locator("#hit-count").inner_text()) == 0
            page.check("#live-tail")
            page.locator("#events[data-tail-mode=stream]").wait_for()
            marker = f"live-{uuid.uuid4().hex[:12]}"
            logger(port, f"Failed password for root from 203.0.113.77 port 4242 ssh2 {marker}",
                   transport="--tcp")
            page.wait_for_selector("#events tbody tr.fresh")
            assert marker in page.locator("#events tbody tr").first.inner_text()
            assert int(page.locator("#hit-count").inner_text()) == 1
            assert page.evaluate("document.getElementById('events').dataset.tailMode") == "stream"
            assert page.evaluate("performance.getEntriesByType('navigation').length") == 1  # no reload
            shot(page, "live-tail-serve")
        finally:
            context.close()

        token, _ = services.users.create_token("vic", "sse", role="viewer")
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{server}/search/stream"
        with httpx.Client(timeout=30, headers=headers) as client:
            with client.stream("GET", url, params={"q": QUERY}) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                first_id, first = _rows(response)
            assert marker in first
            second = f"live-{uuid.uuid4().hex[:12]}"
            logger(port, f"Failed password for admin from 203.0.113.78 port 4243 ssh2 {second}",
                   transport="--tcp")
            # a reconnecting EventSource sends the last id it got: only what came after
            resume = {"Last-Event-ID": str(first_id)}
            with client.stream("GET", url, params={"q": QUERY}, headers=resume) as response:
                second_id, rows = _rows(response)
            assert second in rows and marker not in rows and second_id > first_id
            assert client.get(url, params={"q": "host:("}).status_code == 400
            assert client.get(url, params={"q": QUERY}, headers={"Last-Event-ID": "x"}).status_code == 400
        assert httpx.get(url, params={"q": QUERY}, follow_redirects=False).status_code in (401, 303, 307)
