"""analyze over a folder of a million lines: bounded memory, and every record reported."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from stackwatch.scenario import generate

LINES = 1_000_000
MAX_RSS_MB = 500
LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_one_million_lines_in_bounded_memory_with_every_record_reported(tmp_path: Path):
    logs = tmp_path / "logs"
    generate(logs, seed=3, lines=LINES)
    written = sum(1 for path in logs.rglob("*") if path.is_file() and path.name != "manifest.json"
                  for _ in path.open("rb"))
    assert written >= LINES * 0.98
    # The peak of this analyze alone (and its workers). Linux carries a process's RSS high-water
    # mark across exec, so a child started straight from this test process (hundreds of MB late
    # in the suite) reports at least this process's size; getrusage(RUSAGE_CHILDREN) is worse
    # still (the largest child ever reaped). A small launcher process starts analyze instead and
    # passes back what wait4 says of it.
    rss_file = tmp_path / "rss"
    with (tmp_path / "out").open("wb") as out, (tmp_path / "err").open("wb") as err:
        done = subprocess.run([sys.executable, "-c", LAUNCHER, str(rss_file), sys.executable, "-m",
                               "stackwatch", "analyze", str(logs), "--format", "json", "--data",
                               str(tmp_path / "data")],
                              stdout=out, stderr=err, timeout=1800, check=False)
    peak_mb = int(rss_file.read_text()) / 1024
    stderr = (tmp_path / "err").read_text(errors="replace")
    assert done.returncode == 0, stderr[-2000:]
    match = re.search(r"records read: (\d+)\s+parsed: (\d+)\s+unparsed: (\d+)\s+\(lines: (\d+)", stderr)
    assert match, stderr[-2000:]
    read, parsed, unparsed, lines = map(int, match.groups())
    assert lines == written
    assert parsed + unparsed == read
    assert unparsed == 0
    assert peak_mb > 50  # a real reading, not an empty rusage
    assert peak_mb < MAX_RSS_MB, f"peak RSS {peak_mb:.0f} MB"
