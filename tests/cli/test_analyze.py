"""`stackwatch analyze` and `stackwatch demo` as a user runs them: real processes, real files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from stackwatch.scenario import generate

SUMMARY = re.compile(r"records read: (\d+)\s+parsed: (\d+)\s+unparsed: (\d+)")


def run_cli(
    *args: str, stdin: bytes | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "stackwatch", *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scenario") / "logs"
    generate(root, seed=11)
    return root


@pytest.fixture(scope="module")
def json_run(scenario: Path, tmp_path_factory) -> tuple[list[dict], str]:
    data = tmp_path_factory.mktemp("data")
    done = run_cli("analyze", str(scenario), "--format", "json", "--data", str(data))
    assert done.returncode == 0, done.stderr.decode()
    alerts = [json.loads(line) for line in done.stdout.decode().splitlines() if line.strip()]
    return alerts, done.stderr.decode()


def test_json_output_has_the_documented_fields(json_run):
    alerts, _ = json_run
    assert alerts, "the scenario contains attacks; analyze must raise alerts"
    for alert in alerts:
        for key in ("rule", "category", "severity", "time", "host", "summary", "evidence"):
            assert key in alert, key
        assert re.match(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", alert["time"])
        assert alert["evidence"] and all("ref" in ev and "raw" in ev for ev in alert["evidence"])


def test_closing_summary_accounts_every_record(json_run):
    _, stderr = json_run
    match = SUMMARY.search(stderr)
    assert match, stderr
    read, parsed, unparsed = map(int, match.groups())
    assert read > 1000
    assert parsed + unparsed == read


def test_rerun_gives_the_same_alerts(scenario: Path, json_run, tmp_path: Path):
    first, _ = json_run
    again = run_cli("analyze", str(scenario), "--format", "json", "--data", str(tmp_path / "d"))
    second = [json.loads(line) for line in again.stdout.decode().splitlines() if line.strip()]
    assert second == first


def test_stdin_with_host_option(tmp_path: Path):
    lines = b"".join(
        b"Dec 10 06:55:%02d LabSZ sshd[24200]: Failed password for invalid user webmaster "
        b"from 173.234.31.186 port 38926 ssh2\n" % n
        for n in range(3)
    )
    done = run_cli("analyze", "-", "--host", "cmp9", "--data", str(tmp_path / "d"), stdin=lines)
    assert done.returncode == 0, done.stderr.decode()
    match = SUMMARY.search(done.stderr.decode())
    assert match and match.group(1) == "3"


def test_missing_input_is_a_clear_error(tmp_path: Path):
    done = run_cli("analyze", str(tmp_path / "nope"))
    assert done.returncode != 0
    assert b"no such file or folder" in done.stderr


def test_demo_prints_alerts_from_the_bundled_scenario(tmp_path: Path):
    done = run_cli("demo", "--keep", str(tmp_path / "demo"))
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    assert "CATEGORY" in out and "auth.bruteforce" in out
    assert SUMMARY.search(done.stderr.decode())
