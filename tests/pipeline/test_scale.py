"""analyze over a folder of a million lines: bounded memory, and every record reported."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

from stackwatch.scenario import generate

LINES = 1_000_000
MAX_RSS_MB = 500


def test_one_million_lines_in_bounded_memory_with_every_record_reported(tmp_path: Path):
    logs = tmp_path / "logs"
    generate(logs, seed=3, lines=LINES)
    written = sum(1 for path in logs.rglob("*") if path.is_file() and path.name != "manifest.json"
                  for _ in path.open("rb"))
    assert written >= LINES * 0.98
    # The peak of this analyze alone (and its workers): getrusage(RUSAGE_CHILDREN) would be the
    # largest of every child this test process ever waited for (keystone, serve, chromium...).
    with (tmp_path / "out").open("wb") as out, (tmp_path / "err").open("wb") as err:
        child = subprocess.Popen([sys.executable, "-m", "stackwatch", "analyze", str(logs),
                                  "--format", "json", "--data", str(tmp_path / "data")],
                                 stdout=out, stderr=err)
        watchdog = threading.Timer(1800, child.kill)  # a hung analyze fails the test, not CI
        watchdog.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            watchdog.cancel()
    child.returncode = os.waitstatus_to_exitcode(status)
    peak_mb = usage.ru_maxrss / 1024
    stderr = (tmp_path / "err").read_text(errors="replace")
    assert child.returncode == 0, stderr[-2000:]
    match = re.search(r"records read: (\d+)\s+parsed: (\d+)\s+unparsed: (\d+)\s+\(lines: (\d+)", stderr)
    assert match, stderr[-2000:]
    read, parsed, unparsed, lines = map(int, match.groups())
    assert lines == written
    assert parsed + unparsed == read
    assert unparsed == 0
    assert peak_mb > 50  # a real reading, not an empty rusage
    assert peak_mb < MAX_RSS_MB, f"peak RSS {peak_mb:.0f} MB"
