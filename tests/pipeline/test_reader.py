"""Reading archives: layout-derived hosts and services, .gz, ordering, and no record lost."""

import gzip
from pathlib import Path

import pytest

from stackwatch.parsers.service_hints import service_hint
from stackwatch.pipeline.reader import ReadProgress, discover, read_events

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


def test_an_over_long_line_keeps_its_head_flagged_with_its_length_and_the_rest_is_counted(tmp_path: Path):
    from stackwatch.pipeline.reader import MAX_LINE_BYTES

    long_line = b"y" * (3 * MAX_LINE_BYTES + 17)
    (tmp_path / "app.log").write_bytes(OSLO.format(sec=1, n=1).encode() + b"\n" + long_line + b"\n"
                                       + OSLO.format(sec=2, n=2).encode() + b"\n")
    progress = ReadProgress()
    events = list(read_events(discover([str(tmp_path / "app.log")]), progress))
    assert [e.kind for e in events] == ["oslo_log", "unparsed", "oslo_log"]
    cut = events[1]
    assert cut.raw_bytes() == long_line[:MAX_LINE_BYTES]
    assert cut.attrs["truncated"] is True and cut.attrs["original_bytes"] == len(long_line)
    assert (progress.cut_lines, progress.cut_bytes) == (1, len(long_line) - MAX_LINE_BYTES)


@pytest.mark.parametrize("newline_at_end", [True, False])
def test_a_file_that_is_one_endless_line_gives_one_truncated_record(tmp_path: Path, newline_at_end: bool):
    from stackwatch.pipeline.reader import MAX_LINE_BYTES

    body = b"z" * (2 * MAX_LINE_BYTES + 5) + (b"\n" if newline_at_end else b"")
    (tmp_path / "one.log").write_bytes(body)
    events = list(read_events(discover([str(tmp_path / "one.log")])))
    assert len(events) == 1 and events[0].attrs["original_bytes"] == 2 * MAX_LINE_BYTES + 5


def _gzip_of_zeros(path: Path, size: int) -> None:
    with gzip.open(path, "wb", compresslevel=9) as handle:
        chunk = b"0" * (8 << 20)
        for _ in range(size // len(chunk)):
            handle.write(chunk)


def test_a_gzip_that_inflates_past_the_ratio_stops_and_says_so(tmp_path: Path):
    from stackwatch.pipeline.reader import InflateLimits, read_event_batches

    _gzip_of_zeros(tmp_path / "bomb.log.gz", 256 << 20)
    progress = ReadProgress()
    events = [e for batch in read_event_batches(discover([str(tmp_path / "bomb.log.gz")]), progress,
                                                InflateLimits(max_ratio=100)) for e in batch]
    assert len(events) == 1 and events[0].attrs["truncated"] is True
    (message,) = progress.stopped
    assert "bomb.log.gz: stopped after" in message and "--max-inflate-ratio 100" in message
    assert progress.read_bytes < 80 << 20  # stopped soon after the 64 MiB floor, not at 256 MiB


def test_the_decompressed_size_cap_keeps_the_data_up_to_the_cap(tmp_path: Path):
    from stackwatch.pipeline.reader import InflateLimits, read_event_batches

    lines = "".join(OSLO.format(sec=n % 60, n=n) + "\n" for n in range(1000)).encode()
    with gzip.open(tmp_path / "nova-api.log.gz", "wb") as handle:
        handle.write(lines)
    cap = lines.index(b"line 500\n") + len(b"line 500\n")
    progress = ReadProgress()
    events = [e for batch in read_event_batches(discover([str(tmp_path / "nova-api.log.gz")]), progress,
                                                InflateLimits(max_ratio=0, max_bytes=cap)) for e in batch]
    assert [e.message for e in events] == [f"line {n}" for n in range(501)]
    assert "more than --max-inflated-size" in progress.stopped[0]


def test_a_gzip_within_the_limits_is_read_whole(tmp_path: Path):
    from stackwatch.pipeline.reader import InflateLimits, read_event_batches

    with gzip.open(tmp_path / "nova-api.log.gz", "wt") as handle:
        handle.write(OSLO.format(sec=1, n=1) + "\n")
    progress = ReadProgress()
    batches = list(read_event_batches(discover([str(tmp_path / "nova-api.log.gz")]), progress,
                                      InflateLimits()))
    assert [e.message for batch in batches for e in batch] == ["line 1"] and not progress.stopped
