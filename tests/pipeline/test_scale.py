"""analyze over a folder of a million lines: bounded memory, and every record reported."""

from __future__ import annotations

import re
import resource
import subprocess
import sys
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
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run([sys.executable, "-m", "stackwatch", "analyze", str(logs), "--format", "json",
                           "--data", str(tmp_path / "data")], capture_output=True, timeout=1800, check=False)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    match = re.search(r"records read: (\d+)\s+parsed: (\d+)\s+unparsed: (\d+)\s+\(lines: (\d+)",
                      done.stderr.decode())
    assert match, done.stderr.decode()[-2000:]
    read, parsed, unparsed, lines = map(int, match.groups())
    assert lines == written
    assert parsed + unparsed == read
    assert unparsed == 0
    assert before <= peak_mb * 1024
    assert peak_mb < MAX_RSS_MB, f"peak RSS {peak_mb:.0f} MB"
