"""One benchmark stage, run in its own process so its peak RSS is its own.

    python -m benchmarks.stage STAGE CORPUS_DIR [--data DIR] [--ips N --events N]

prints one JSON object: stage, lines, records, seconds, cpu_seconds, lines_per_s,
lines_per_cpu_s, peak_rss_mb (plus a stage's own figures). "lines" is the unit of the
stage: input lines, or events for the keys / cadf_orjson / sigma stages.

Stages: python_read and grep (baselines), read, parse, parse_detect (header events for the
records no rule can use: detect/prefilter.py), parse_detect_fullparse (every record parsed in
full: the prefilter's baseline), parse_detect_store
(the pipeline over a corpus folder), parse_detect_store_nochain (the same into the store
without its hash chain: ``store.benchmark_unchained``, for the chain's cost); cadf_orjson (baseline:
the two orjson decodes of an oslo.messaging envelope), cadf_parse, cadf_e2e over a CADF
envelope file; keys (the keystone rules fed N distinct source addresses); sigma (auditd:
ours vs SQL over SQLite); floor_event, floor_wide_row, floor_meta_row (the pipeline's fixed
per-line costs without parsing or detection: see ``benchmarks.floors``).
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

from benchmarks import floors


class Clock:
    """Wall and CPU time since ``restart``: a stage restarts it once its setup (imports,
    loading the rule packs, opening the store) is done, so only the stream is timed."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu = usage.ru_utime + usage.ru_stime
        self.wall = time.perf_counter()

    def elapsed(self) -> tuple[float, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return time.perf_counter() - self.wall, usage.ru_utime + usage.ru_stime - self.cpu


CLOCK = Clock()


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

    # the reader's imports (sources.base, the parsers it names) are set-up, not per line
    CLOCK.restart()
    lines = 0
    for source in discover([str(root)]):
        with source.path.open("rb") as handle:  # type: ignore[union-attr]
            for _line in read_lines(handle):
                lines += 1
    return lines, lines


def warm_parsers() -> None:
    """Import every parser module before the clock starts: imports are set-up, not per line
    (with PYTHONDONTWRITEBYTECODE they compile, ~50 ms, inside the timed stream otherwise)."""
    from stackwatch.parsers import registry

    registry.record_parsers()
    registry.message_parsers()
    registry.json_shapes()


def stage_parse(root: Path) -> tuple[int, int]:
    from stackwatch.detect.gc_tuning import tune_gc
    from stackwatch.pipeline.reader import ReadProgress, discover, read_events

    progress = ReadProgress()
    warm_parsers()
    tune_gc()  # as `stackwatch analyze` does, so parse and parse_detect are comparable
    CLOCK.restart()
    for _event in read_events(discover([str(root)]), progress):
        pass
    return progress.stats.lines, progress.stats.records


def stage_detect(root: Path, *, prefilter: bool = True) -> tuple[int, int]:
    """parse + detect (``analyze`` without a store). ``prefilter`` False: every record parsed
    in full (the same-run baseline of the record prefilter, detect/prefilter.py)."""
    from stackwatch.detect.gc_tuning import tune_gc
    from stackwatch.pipeline.analyze import analyze
    from stackwatch.pipeline.engine import build_engine
    from stackwatch.pipeline.reader import discover

    engine, inputs = build_engine(), discover([str(root)])
    warm_parsers()
    tune_gc()  # as `stackwatch analyze` does
    CLOCK.restart()
    result = analyze(inputs, engine=engine, prefilter=prefilter)
    return result.progress.stats.lines, result.progress.stats.records


def stage_detect_fullparse(root: Path) -> tuple[int, int]:
    return stage_detect(root, prefilter=False)


def stage_store(root: Path, data: Path, *, chained: bool = True) -> tuple[int, int]:
    from stackwatch.detect.gc_tuning import tune_gc
    from stackwatch.pipeline.analyze import analyze
    from stackwatch.pipeline.engine import build_engine
    from stackwatch.pipeline.reader import discover
    from stackwatch.store import open_store
    from stackwatch.store.benchmark_unchained import UnchainedBenchmarkStore, UnchainedBlockStore
    from stackwatch.store.sqlite import new_store_format

    shutil.rmtree(data, ignore_errors=True)
    # $STACKWATCH_STORE_FORMAT picks the record format of both (2: the chain off is no digests)
    unchained = UnchainedBlockStore if new_store_format() == 2 else UnchainedBenchmarkStore
    store = open_store(str(data)) if chained else unchained(data)
    engine, inputs = build_engine(), discover([str(root)])
    warm_parsers()
    tune_gc()  # as `stackwatch analyze` does
    CLOCK.restart()
    try:
        result = analyze(inputs, engine=engine, store=store)
    finally:
        store.close()
    return result.progress.stats.lines, result.progress.stats.records


def stage_jobs(root: Path, data: Path | None, jobs: int) -> tuple[int, int, dict[str, object]]:
    """``analyze --jobs N`` as the CLI runs it: the reader pool started before the store (or no
    store when ``data`` is None), files parsed in N workers, detection and the store here.
    Reports this process's CPU and the workers' apart: what bounds the speed-up."""
    import resource as res

    from stackwatch.detect.gc_tuning import tune_gc
    from stackwatch.pipeline.analyze import analyze
    from stackwatch.pipeline.engine import build_engine
    from stackwatch.pipeline.reader import discover
    from stackwatch.pipeline.workers import ReaderPool
    from stackwatch.store import open_store

    if data is not None:
        shutil.rmtree(data, ignore_errors=True)
    engine, inputs = build_engine(), discover([str(root)])
    warm_parsers()
    tune_gc()  # as `stackwatch analyze` does
    pool = ReaderPool(jobs) if jobs > 1 else None
    # as the CLI does: with workers, the search index is filled by a process of its own
    store = open_store(str(data), **({"index_process": True} if pool is not None else {})) \
        if data is not None else None
    CLOCK.restart()

    def reaped() -> float:  # CPU of the children reaped so far
        usage = res.getrusage(res.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    children = reaped()
    indexer_cpu = 0.0
    try:
        result = analyze(inputs, engine=engine, store=store, pool=pool)
    finally:
        if store is not None:
            store.close()  # reaps the indexer process, when there is one
        indexer_cpu = reaped() - children
        if pool is not None:
            pool.close()  # the workers are reaped: their CPU time is in RUSAGE_CHILDREN
    workers_cpu = reaped() - children - indexer_cpu
    return result.progress.stats.lines, result.progress.stats.records, {
        "jobs": jobs, "store": data is not None, "workers_cpu_seconds": round(workers_cpu, 4),
        "indexer_cpu_seconds": round(indexer_cpu, 4)}


def stage_cadf_orjson(root: Path) -> tuple[int, int]:
    """Baseline for CADF: orjson alone, both decodes of each envelope (outer, then the
    ``oslo.message`` JSON string inside it)."""
    loads = orjson.loads
    count = 0
    for path in corpus_files(root):
        with path.open("rb") as handle:
            for line in handle:
                loads(loads(line)["oslo.message"])
                count += 1
    return count, count


def stage_keys(ips: int, events: int) -> tuple[int, int, dict[str, object]]:
    """The built-in keystone rules over ``events`` failed logins from ``ips`` addresses, all
    in one window. Event construction is timed alone first and subtracted."""
    from benchmarks.synthetic import keystone_failures
    from stackwatch.detect.engine import Engine
    from stackwatch.detect.loader import builtin_rules

    rules = [r for r in builtin_rules().rules if "/keystone/" in r.source.replace("\\", "/")]
    started = time.perf_counter()
    for _event in keystone_failures(ips, events):
        pass
    build = time.perf_counter() - started
    engine = Engine(rules)
    process = engine.process
    CLOCK.restart()
    for event in keystone_failures(ips, events):
        process(event)
    engine.finish()
    total = time.perf_counter() - CLOCK.wall
    held = sum(figures["keys"] for figures in engine.state_stats().values())
    detect = max(total - build, 1e-9)
    return events, events, {"ips": ips, "rules": len(rules), "keys_held": held,
                            "alerts": len(engine.alerts()), "build_seconds": round(build, 4),
                            "detect_seconds": round(detect, 4),
                            "detect_events_per_s": round(events / detect)}


def stage_sigma(root: Path, min_events: int) -> tuple[int, int, dict[str, object]]:
    from benchmarks import sigma_bench
    from stackwatch.pipeline.reader import discover, read_events

    audit = [source for source in discover([str(root)]) if source.path and source.path.name == "audit.log"]
    events = [event for event in read_events(audit) if event.kind == "auditd"]
    figures = sigma_bench.run(events, min_events=min_events)
    return figures["rounds"] * len(events), len(events), figures


STAGES = {
    "python_read": stage_python_read,
    "read": stage_read,
    "parse": stage_parse,
    "parse_detect": stage_detect,
    "parse_detect_fullparse": stage_detect_fullparse,
    "cadf_orjson": stage_cadf_orjson,
    "cadf_parse": stage_parse,
    "cadf_e2e": stage_detect,
    "floor_event": floors.stage_floor_event,
}
JOBS_STAGES = {"analyze_jobs1": (1, True), "analyze_jobs2": (2, True),
               "detect_jobs1": (1, False), "detect_jobs2": (2, False)}
"""``analyze --jobs N`` with the store, and without it (parsing + detection only)."""
FLOORS_WITH_DATA = {"floor_wide_row": floors.stage_floor_wide_row,
                    "floor_meta_row": floors.stage_floor_meta_row}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("stage", choices=[*STAGES, *FLOORS_WITH_DATA, *JOBS_STAGES, "parse_detect_store",
                                          "parse_detect_store_nochain", "cadf_store", "grep", "keys",
                                          "sigma"])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--ips", type=int, default=10_000, help="keys: distinct source addresses")
    parser.add_argument("--events", type=int, default=0, help="keys: events (default 2 per address); "
                        "sigma: events to run at least (the auditd set is repeated)")
    args = parser.parse_args()
    extra: dict[str, object] = {}
    CLOCK.restart()
    started = CLOCK.wall
    if args.stage in ("parse_detect_store", "parse_detect_store_nochain", "cadf_store"):
        lines, records = stage_store(args.corpus, args.data or args.corpus.parent / "bench-data",
                                     chained=args.stage != "parse_detect_store_nochain")
    elif args.stage in FLOORS_WITH_DATA:
        data = (args.data or args.corpus.parent / "bench-data") / "floors"
        shutil.rmtree(data, ignore_errors=True)
        lines, records = FLOORS_WITH_DATA[args.stage](args.corpus, data)
        shutil.rmtree(data, ignore_errors=True)
    elif args.stage in JOBS_STAGES:
        jobs, stored = JOBS_STAGES[args.stage]
        data = (args.data or args.corpus.parent / "bench-data") if stored else None
        lines, records, extra = stage_jobs(args.corpus, data, jobs)
    elif args.stage == "keys":
        lines, records, extra = stage_keys(args.ips, args.events or 2 * args.ips)
    elif args.stage == "sigma":
        lines, records, extra = stage_sigma(args.corpus, args.events or 200_000)
    elif args.stage == "grep":
        files = [str(p) for p in corpus_files(args.corpus)]
        subprocess.run([shutil.which("grep") or "grep", "-c", "-F", "Authorization failed", *files],
                       check=False, capture_output=True)
        elapsed = time.perf_counter() - started
        lines = sum(1 for p in files for _ in open(p, "rb"))  # noqa: SIM115
        records = lines
        CLOCK.wall = time.perf_counter() - elapsed
    else:
        lines, records = STAGES[args.stage](args.corpus)
    seconds, cpu = CLOCK.elapsed()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.stage == "grep":
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak = children.ru_maxrss / 1024
        cpu = children.ru_utime + children.ru_stime
    if args.stage == "keys":  # the figure of interest is detection alone
        seconds = float(extra["detect_seconds"])  # type: ignore[arg-type]
        cpu = max(cpu - float(extra["build_seconds"]), 1e-9)  # type: ignore[arg-type]
    elif args.stage == "sigma":  # its own figures are per side; the stage time includes parsing
        seconds, cpu = float(extra["stackwatch"]["seconds"]), 0.0  # type: ignore[index]
    sys.stdout.write(orjson.dumps({
        "stage": args.stage, "lines": lines, "records": records, "seconds": round(seconds, 4),
        "cpu_seconds": round(cpu, 4), "lines_per_s": round(lines / seconds) if seconds else None,
        "lines_per_cpu_s": round(lines / cpu) if cpu > 0 else None, "peak_rss_mb": round(peak, 1),
        "hot_paths": hot_paths(args.stage), **extra,
    }).decode() + "\n")


def hot_paths(stage: str) -> str:
    """Which build of the hot modules the stage ran (stackwatch.accel), '' for a baseline."""
    if stage in ("python_read", "grep", "cadf_orjson"):
        return ""
    from stackwatch import accel

    return accel.status()


if __name__ == "__main__":
    main()
