"""Reading archives: layout-derived hosts and services, .gz, ordering, and no record lost."""

import gzip
from pathlib import Path

import pytest

from stackwatch.pipeline.reader import ReadProgress, discover, read_events, service_hint

OSLO = "2017-05-16 00:00:{sec:02d}.008 25746 INFO nova.osapi_compute.wsgi.server [-] line {n}"


@pytest.mark.parametrize(("name", "service"), [
    ("keystone.log", "keystone"),
    ("nova-compute.log.1.gz", "nova-compute"),
    ("nova-api.log.2017-05-16", "nova-api"),
    ("syslog", ""),
    ("auth.log.1", ""),
    ("keystone_access.log", "keystone"),
    ("messages-20240101", ""),
])
def test_service_hint_comes_from_the_file_name(name, service):
    assert service_hint(name) == service


def test_host_comes_from_central_server_layout(tmp_path: Path):
    (tmp_path / "ctl1").mkdir()
    (tmp_path / "ctl1" / "nova-api.log").write_text(OSLO.format(sec=1, n=1) + "\n")
    inputs = discover([str(tmp_path)])
    assert [(i.host, i.service) for i in inputs] == [("ctl1", "nova-api")]


def test_host_option_overrides_layout(tmp_path: Path):
    (tmp_path / "ctl1").mkdir()
    (tmp_path / "ctl1" / "nova-api.log").write_text(OSLO.format(sec=1, n=1) + "\n")
    assert discover([str(tmp_path)], host="other")[0].host == "other"


def test_missing_path_is_a_clear_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        discover([str(tmp_path / "nope")])


def test_gzip_files_are_read(tmp_path: Path):
    with gzip.open(tmp_path / "nova-api.log.1.gz", "wt") as handle:
        handle.write(OSLO.format(sec=1, n=1) + "\n" + OSLO.format(sec=2, n=2) + "\n")
    events = list(read_events(discover([str(tmp_path)])))
    assert [e.message for e in events] == ["line 1", "line 2"]


def test_records_are_merged_in_event_time_order_across_files(tmp_path: Path):
    for host, seconds in (("a", (1, 4, 7)), ("b", (2, 5, 8)), ("c", (3, 6, 9))):
        (tmp_path / host).mkdir()
        lines = [OSLO.format(sec=s, n=s) for s in seconds]
        (tmp_path / host / "nova-api.log").write_text("\n".join(lines) + "\n")
    events = list(read_events(discover([str(tmp_path)])))
    assert [e.message for e in events] == [f"line {n}" for n in range(1, 10)]
    assert [e.host for e in events[:3]] == ["a", "b", "c"]


def test_bad_bytes_are_kept_raw_and_counted_never_dropped(tmp_path: Path):
    junk = [b"\xff\xfe invalid utf-8 \x80", b"NUL\x00inside", b"x" * 1_100_000,
            b'{"truncated": ', b"\x1b[31m"]
    (tmp_path / "weird.log").write_bytes(b"\n".join(junk) + b"\n")
    progress = ReadProgress()
    events = list(read_events(discover([str(tmp_path / "weird.log")]), progress))
    stats = progress.stats
    assert stats.records == len(junk)
    assert stats.parsed + stats.unparsed == stats.records
    raw = b"\n".join(e.raw_bytes() for e in events)
    for piece in junk:
        assert piece in raw


def test_many_files_merged_share_a_bounded_read_budget(tmp_path: Path):
    """Every file of a merge stays open with its read block and that block's lines; with a
    block per file of 1 MiB, these 100 files of 256 KiB held ~63 MB (~25 MB now). The blocks shrink with
    the number of files so the total stays near READ_BUDGET."""
    import tracemalloc

    # Long oslo.log lines whose times interleave across the files, so the merge goes round
    # all of them and each holds a full block past its first (small, buffered) read.
    pad = "x" * 2000
    for host in range(100):
        folder = tmp_path / f"node{host:03d}"
        folder.mkdir()
        lines = (f"2017-05-16 00:{n // 60:02d}:{n % 60:02d}.{host:03d} 25746 INFO nova.api [-] {pad}\n"
                 for n in range(128))
        (folder / "nova-api.log").write_text("".join(lines))
    inputs = discover([str(tmp_path)])
    progress = ReadProgress()
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_events(inputs, progress))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == progress.stats.lines == 100 * 128
    assert peak < 40 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"  # 1 MiB blocks: ~63 MB
