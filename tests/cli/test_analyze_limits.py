"""`stackwatch analyze` against hostile input and signals, as real processes: a gzip bomb is
read in bounded memory and stopped with a clear message; SIGTERM seals what was stored."""

from __future__ import annotations

import gzip
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servetools import wait_for

_MEASURED = """
import resource, subprocess, sys
done = subprocess.run([sys.executable, "-m", "stackwatch", *sys.argv[1:]], capture_output=True)
sys.stdout.write(f"{done.returncode} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\\n")
sys.stdout.write(done.stderr.decode())
"""


def _analyze_measured(*args: str) -> tuple[int, int, str]:
    """Exit status, peak RSS in KiB and stderr of `stackwatch analyze`, the only child of a fresh
    parent (so RUSAGE_CHILDREN's maximum is this process's own)."""
    done = subprocess.run([sys.executable, "-c", _MEASURED, "analyze", *args],
                          capture_output=True, text=True, timeout=600, check=True)
    first, _, stderr = done.stdout.partition("\n")
    code, rss = first.split()
    return int(code), int(rss), stderr


def _bomb(path: Path, size: int) -> None:
    """``size`` bytes of one line without a newline, deflated (~1000x)."""
    with gzip.open(path, "wb", compresslevel=9) as handle:
        chunk = b"A" * (16 << 20)
        for _ in range(size // len(chunk)):
            handle.write(chunk)


def test_a_gzip_bomb_is_stopped_at_the_ratio_cap_with_its_data_kept(tmp_path: Path) -> None:
    _bomb(tmp_path / "bomb.log.gz", 1 << 30)
    code, rss_kib, stderr = _analyze_measured(str(tmp_path / "bomb.log.gz"), "--data", str(tmp_path / "d"))
    assert code == 1
    assert "incomplete: " in stderr and "--max-inflate-ratio 500" in stderr and "was not read" in stderr
    assert "over-long lines: 1 cut to their first 4 MiB" in stderr
    assert rss_kib < 200 * 1024
    with sqlite3.connect(tmp_path / "d" / "stackwatch.db") as conn:
        (count,) = conn.execute("SELECT count(*) FROM events").fetchone()
    assert count == 1  # the line's head, flagged truncated with the bytes read past


def test_one_line_of_half_a_gigabyte_is_read_in_bounded_memory(tmp_path: Path) -> None:
    _bomb(tmp_path / "bomb.log.gz", 512 << 20)
    code, rss_kib, stderr = _analyze_measured(str(tmp_path / "bomb.log.gz"), "--data", str(tmp_path / "d"),
                                              "--max-inflate-ratio", "0")
    assert code == 0 and "incomplete" not in stderr
    assert f"{(512 << 20) - (4 << 20):,} bytes past the cut not stored" in stderr
    assert rss_kib < 200 * 1024  # the line alone is 512 MiB


def test_many_records_of_megabytes_are_stored_in_bounded_memory(tmp_path: Path) -> None:
    """Sixty lines just under the 4 MiB cut: each is kept whole, and the store batches they go
    into are bounded by bytes as well as by count (5000 of them were held at once: ~0.9 GB for 100)."""
    with gzip.open(tmp_path / "big.log.gz", "wb", compresslevel=1) as handle:
        for n in range(60):
            handle.write(b"%02d" % n + b"B" * ((4 << 20) - 100) + b"\n")
    code, rss_kib, stderr = _analyze_measured(str(tmp_path / "big.log.gz"), "--data", str(tmp_path / "d"),
                                              "--max-inflate-ratio", "0")
    assert code == 0 and "unparsed: 60" in stderr and "over-long" not in stderr
    assert rss_kib < 280 * 1024


def _store_init(data: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "stackwatch", "store", "init", "--data", str(data)],
                          capture_output=True, text=True, timeout=120, check=True)
    return next(line.strip() for line in done.stdout.splitlines() if line.startswith("    "))


@pytest.fixture(scope="module")
def long_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1.5 M syslog lines: long enough to be interrupted in the middle."""
    path = tmp_path_factory.mktemp("long") / "auth.log"
    line = "Dec  6 10:{m:02d}:{s:02d} ctl1 sshd[42]: Accepted publickey for ops from 10.0.0.{n} port 22\n"
    with path.open("w") as handle:
        for n in range(1_500_000):
            handle.write(line.format(m=n // 60 % 60, s=n % 60, n=n % 250))
    return path


@pytest.mark.parametrize(("signum", "jobs"), [(signal.SIGTERM, 1), (signal.SIGTERM, 2), (signal.SIGINT, 2)],
                         ids=["SIGTERM", "SIGTERM-jobs2", "SIGINT-jobs2"])
def test_a_signal_during_analyze_stores_and_seals_what_was_read(tmp_path: Path, long_log: Path,
                                                                signum: int, jobs: int) -> None:
    """With --jobs 2 the file is parsed in a worker, which ignores the signal: the parent stops
    between two lists of events, stores and seals what the merge handed over, stops the worker."""
    data = tmp_path / "d"
    k0 = _store_init(data)
    proc = subprocess.Popen([sys.executable, "-m", "stackwatch", "analyze", str(long_log),
                             "--data", str(data), "--jobs", str(jobs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def stored() -> int:
        try:
            with sqlite3.connect(f"file:{data / 'stackwatch.db'}?mode=ro", uri=True, timeout=5) as conn:
                return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        except sqlite3.Error:
            return 0

    before = stored()  # `store init` records itself
    wait_for(lambda: stored() > before or proc.poll() is not None, timeout=300, interval=0.2)
    assert proc.poll() is None, "analyze ended before it could be interrupted"
    time.sleep(0.5)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum
    assert "interrupted: stopped reading;" in stderr and "stored and sealed" in stderr
    verify = subprocess.run([sys.executable, "-m", "stackwatch", "store", "verify", "--data", str(data),
                             "--key", k0], capture_output=True, text=True, timeout=300)
    assert verify.returncode == 0, verify.stdout
    assert "unsealed" not in verify.stdout and "RESULT: OK" in verify.stdout
    assert before < stored() < before + 1_500_000
