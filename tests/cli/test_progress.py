"""The analyze progress bar and closing summary: true counts, rate, elapsed time and ETA."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from stackwatch.cli.output import ProgressBar, write_summary
from stackwatch.pipeline.analyze import analyze
from stackwatch.pipeline.engine import build_engine
from stackwatch.pipeline.reader import ReadProgress, discover, read_events

OSLO = "2017-05-16 00:{m:02d}:{s:02d}.008 25746 INFO nova.compute.manager [-] line {n}\n"


def oslo_lines(count: int) -> str:
    return "".join(OSLO.format(m=(n // 60) % 60, s=n % 60, n=n) for n in range(count))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_bar_shows_share_records_rate_elapsed_and_eta():
    clock = Clock()
    bar = ProgressBar(io.StringIO(), clock=clock, enabled=True)
    progress = ReadProgress(total_bytes=1000, read_bytes=250)
    progress.stats.records = 5000
    clock.now += 10
    line = bar.line(progress)
    assert " 25.0%" in line
    assert "5,000 records" in line
    assert "500/s" in line
    assert "elapsed 0:10" in line
    assert "ETA 0:30" in line  # a quarter in 10 s: three quarters left at that pace


def test_the_bar_has_no_eta_when_done():
    clock = Clock()
    bar = ProgressBar(io.StringIO(), clock=clock, enabled=True)
    progress = ReadProgress(total_bytes=1000, read_bytes=1000)
    clock.now += 3725
    assert "ETA" not in bar.line(progress)
    assert "elapsed 1:02:05" in bar.line(progress)


@pytest.mark.parametrize("name", ["nova-compute.log", "nova-compute.log.gz"])
def test_records_are_counted_while_a_single_file_is_read(name: str, tmp_path: Path):
    text = oslo_lines(60_000)
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    seen: list[tuple[float, int]] = []

    def report(progress: ReadProgress) -> None:
        seen.append((progress.file_bytes / progress.total_bytes, progress.stats.records))

    analyze(discover([str(path)], host="cmp1"), engine=build_engine(), on_progress=report,
            progress_every=5000)
    midway = [(share, records) for share, records in seen[:-1]]
    assert midway, "progress must be reported while reading"
    assert all(records > 0 for _, records in midway)
    assert all(share <= 1.0 for share, _ in seen)
    assert [r for _, r in seen] == sorted(r for _, r in seen)
    assert seen[-1] == (1.0, 60_000)


def test_the_summary_names_files_without_service_or_host(tmp_path: Path):
    access = '10.0.0.1 - - [16/May/2017:00:00:01 +0000] "GET / HTTP/1.1" 200 12 "-" "curl/8"\n'
    (tmp_path / "x").mkdir()
    path = tmp_path / "x" / "foo.log"
    path.write_text(access * 4)
    inputs = discover([str(path)])
    progress = ReadProgress()
    list(read_events(inputs, progress))
    out = io.StringIO()
    write_summary(progress, 0, out, inputs=inputs, already_stored=0)
    text = out.getvalue()
    assert f"no known service: 4 of 4 events of {path}" in text
    assert f"no host: 4 of 4 events of {path}" in text
    assert "--host" in text
