"""One benchmark stage, run in its own process so its peak RSS is its own.

    python -m benchmarks.stage STAGE CORPUS_DIR [--data DIR]

prints one JSON object: stage, lines, records, seconds, lines_per_s, peak_rss_mb.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson


def corpus_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "manifest.json")


def stage_python_read(root: Path) -> tuple[int, int]:
    """Baseline: the raw Python text read loop (`for line in f`)."""
    lines = 0
    for path in corpus_files(root):
        with path.open(encoding="utf-8", errors="surrogateescape") as handle:
            for _line in handle:
                lines += 1
    return lines, lines


def stage_read(root: Path) -> tuple[int, int]:
    """stackwatch's reader alone: bytes -> decoded lines (no parsing)."""
    from stackwatch.pipeline.reader import discover, read_lines

    lines = 0
    for source in discover([str(root)]):
        with source.path.open("rb") as handle:  # type: ignore[union-attr]
            for _line in read_lines(handle):
                lines += 1
    return lines, lines


def stage_parse(root: Path) -> tuple[int, int]:
    from stackwatch.pipeline.reader import ReadProgress, discover, read_events

    progress = ReadProgress()
    for _event in read_events(discover([str(root)]), progress):
        pass
    return progress.stats.lines, progress.stats.records


def stage_detect(root: Path) -> tuple[int, int]:
    from stackwatch.pipeline.analyze import analyze
    from stackwatch.pipeline.engine import build_engine
    from stackwatch.pipeline.reader import discover

    result = analyze(discover([str(root)]), engine=build_engine())
    return result.progress.stats.lines, result.progress.stats.records


def stage_store(root: Path, data: Path) -> tuple[int, int]:
    from stackwatch.pipeline.analyze import analyze
    from stackwatch.pipeline.engine import build_engine
    from stackwatch.pipeline.reader import discover
    from stackwatch.store import open_store

    shutil.rmtree(data, ignore_errors=True)
    store = open_store(str(data))
    try:
        result = analyze(discover([str(root)]), engine=build_engine(), store=store)
    finally:
        store.close()
    return result.progress.stats.lines, result.progress.stats.records


STAGES = {
    "python_read": stage_python_read,
    "read": stage_read,
    "parse": stage_parse,
    "parse_detect": stage_detect,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("stage", choices=[*STAGES, "parse_detect_store", "grep"])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    if args.stage == "parse_detect_store":
        lines, records = stage_store(args.corpus, args.data or args.corpus.parent / "bench-data")
    elif args.stage == "grep":
        files = [str(p) for p in corpus_files(args.corpus)]
        subprocess.run([shutil.which("grep") or "grep", "-c", "-F", "Authorization failed", *files],
                       check=False, capture_output=True)
        elapsed = time.perf_counter() - started
        lines = sum(1 for p in files for _ in open(p, "rb"))  # noqa: SIM115
        records = lines
        started = time.perf_counter() - elapsed
    else:
        lines, records = STAGES[args.stage](args.corpus)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.stage == "grep":
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    sys.stdout.write(orjson.dumps({
        "stage": args.stage, "lines": lines, "records": records, "seconds": round(seconds, 4),
        "lines_per_s": round(lines / seconds) if seconds else None, "peak_rss_mb": round(peak, 1),
    }).decode() + "\n")


if __name__ == "__main__":
    main()
