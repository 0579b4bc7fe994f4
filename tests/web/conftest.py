"""A real uvicorn server on 127.0.0.1 over the seeded store, and headless Chromium."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from tests.api.conftest import (  # noqa: F401 - shared fixtures
    app,
    seeded_dir,
    services,
    triage_app,
    triage_services,
)
from tests.api.keystone_cloud import cloud  # noqa: F401 - the keystone browser test's

CHROMIUM = os.environ.get("STACKWATCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@contextlib.contextmanager
def serving(asgi) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """``asgi`` under a real uvicorn on 127.0.0.1 (an ephemeral port); yields its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="session")
def server(app) -> Iterator[str]:  # type: ignore[no-untyped-def]  # noqa: F811
    with serving(app) as url:
        yield url


@pytest.fixture(scope="module")
def triage_server(triage_app) -> Iterator[str]:  # type: ignore[no-untyped-def]  # noqa: F811
    """A server over a store of the module's own (tests that change many alerts)."""
    with serving(triage_app) as url:
        yield url


# Module scope, not session: Playwright's sync API keeps its event loop set as the running loop of
# the main thread for as long as it is open, so every later test that calls asyncio.run (the
# keystone test server's drain in tests/producers, for one) failed with "cannot be called from a
# running event loop" when a browser module ran before it (random or explicit order).
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        if os.environ.get("CI"):
            pytest.fail(f"chromium not found at {CHROMIUM}: CI must install it (apt-get install chromium)")
        pytest.skip(f"chromium not found at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser) -> Iterator[object]:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.console_errors = []  # type: ignore[attr-defined]
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))  # type: ignore[attr-defined]
    yield page
    context.close()


def shot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
