"""Long-running commands say once, at start, when they run less safely than they could: the
web server on plain HTTP, the monitor on a store with no signing key; and the expected sources
are set in one place."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stackwatch.cli.startup_warnings import plain_http_warning, unkeyed_store_warning
from stackwatch.cli.web import load_web_settings
from stackwatch.config.settings import StoreSettings
from stackwatch.core.errors import ConfigError
from tests.servetools import serve_config

PORT = 26514  # this helper's range (26000-26999)


def started(args: list[str], ready: str, timeout: float = 90) -> list[str]:
    """Run ``stackwatch ARGS`` until a stderr line contains ``ready``; its stderr lines so far."""
    proc = subprocess.Popen([sys.executable, "-m", "stackwatch", *args], stderr=subprocess.PIPE, text=True,
                            stdout=subprocess.DEVNULL, env={**os.environ})
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        assert proc.stderr is not None
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if ready in line:
                return lines
        raise AssertionError(f"never ready: {lines}")
    finally:
        proc.send_signal(signal.SIGTERM)  # both stop cleanly on SIGTERM: a hang fails the test
        proc.wait(60)


def warnings_in(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("warning:")]


def test_serve_on_an_unkeyed_store_warns_once_and_not_once_keyed(tmp_path: Path):
    config = serve_config(tmp_path, f"  - {{type: syslog_udp, listen: '127.0.0.1:{PORT}'}}\n")
    first = warnings_in(started(["serve", "--config", str(config)], "ready:"))
    assert len(first) == 1 and "has no signing key" in first[0] and "stackwatch store init" in first[0]
    init = subprocess.run(
        [sys.executable, "-m", "stackwatch", "store", "init", "--data", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=120, check=False)
    assert init.returncode == 0, init.stderr
    assert warnings_in(started(["serve", "--config", str(config)], "ready:")) == []


def test_web_on_plain_http_warns_once(tmp_path: Path):
    lines = started(["web", "--data", str(tmp_path / "data"), "--listen", f"127.0.0.1:{PORT + 1}"],
                    "Uvicorn running")
    found = warnings_in(lines)
    assert len(found) == 1 and "plain HTTP (no TLS)" in found[0] and "--tls-cert" in found[0]


@pytest.mark.parametrize(("host", "words"), [("127.0.0.1", "TLS proxy on this machine"),
                                             ("0.0.0.0", "readable by anyone on the path")])
def test_the_plain_http_warning_says_what_is_at_risk(host: str, words: str):
    assert words in plain_http_warning(host, 8443)


def test_a_server_store_is_not_checked_for_local_keys():
    assert unkeyed_store_warning(StoreSettings(url="postgresql://sw@127.0.0.1/sw")) is None


def test_the_web_reads_the_top_level_expected_sources(tmp_path: Path):
    config = tmp_path / "stackwatch.yaml"
    config.write_text("expected_sources:\n  - {host: ctl1, service: keystone}\nweb:\n  silent_after: 30m\n")
    assert load_web_settings(str(config), {}).expected_sources == (("ctl1", "keystone"),)


def test_expected_sources_under_web_is_refused_with_where_they_moved(tmp_path: Path):
    config = tmp_path / "stackwatch.yaml"
    config.write_text("web:\n  expected_sources: [{host: ctl1, service: keystone}]\n")
    with pytest.raises(ConfigError, match=r"expected_sources: moved: .* top-level `expected_sources:`"):
        load_web_settings(str(config), {})
