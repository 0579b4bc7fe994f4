"""``stackwatch analyze`` at growing sizes: peak RSS and whether time grows linearly (issue #16).

    python -m benchmarks.scale [--sizes 1000000,3000000,10000000] [--jobs 1] [--corpora DIR]

For each size, a scenario corpus (generated once per size and seed, as ``python -m benchmarks``
does) goes through the real command, ``python -m stackwatch analyze CORPUS --format json
--data FRESH_DIR`` (the default store: record format 2), started by a small launcher process
that reports what ``wait4`` says of it: its peak RSS and its CPU time. Linux carries a process's
RSS high-water mark across exec, so a child started straight from a big parent would report at
least the parent's size (see tests/pipeline/test_scale.py); the launcher is a bare interpreter.
``--jobs 1`` by default: with worker processes ``ru_maxrss`` is the largest single process, not
their sum, so one process is the honest whole-program figure.

The baseline, measured in the same run over the same corpus: the raw Python ``for line in f``
loop (benchmarks.stage python_read, the fastest of three). Printed: lines, wall and CPU seconds,
peak RSS, lines per CPU-s, the time ratio to the smallest size over the size ratio (1.0 is
linear), and the read loop's seconds. The last line is the JSON of every figure.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks.__main__ import ROOT, ensure_corpus, run_stage

LAUNCHER = """
import os, subprocess, sys, time
began = time.perf_counter()
child = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - began
with open(sys.argv[1], "w") as out:
    out.write(f"{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime} {wall}")
sys.exit(os.waitstatus_to_exitcode(status))
"""
SUMMARY = re.compile(r"records read: (\d+)\s+parsed: (\d+)\s+unparsed: (\d+)\s+\(lines: (\d+)")


def analyze(corpus: Path, data: Path, jobs: int, keep: bool = False) -> dict[str, Any]:
    """One ``analyze`` under the launcher: its figures and the summary it printed; the store
    is removed after unless ``keep``."""
    shutil.rmtree(data, ignore_errors=True)
    figures = data.parent / f"{data.name}.rusage"
    command = [sys.executable, "-c", LAUNCHER, str(figures), sys.executable, "-m", "stackwatch",
               "analyze", str(corpus), "--format", "json", "--data", str(data), "--jobs", str(jobs)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT,
                          env={**os.environ})
    if done.returncode != 0:
        raise RuntimeError(f"analyze {corpus} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    maxrss_kib, cpu, wall = figures.read_text().split()
    match = SUMMARY.search(done.stderr)
    if match is None:
        raise RuntimeError(f"no summary from analyze:\n{done.stderr[-3000:]}")
    read, parsed, unparsed, lines = map(int, match.groups())
    store_bytes = sum(p.stat().st_size for p in data.rglob("*") if p.is_file())
    if not keep:
        shutil.rmtree(data, ignore_errors=True)
    return {"lines": lines, "records": read, "parsed": parsed, "unparsed": unparsed,
            "seconds": round(float(wall), 2), "cpu_seconds": round(float(cpu), 2),
            "peak_rss_mb": round(int(maxrss_kib) / 1024, 1), "store_mb": round(store_bytes / 1e6, 1),
            "lines_per_cpu_s": round(lines / float(cpu)) if float(cpu) else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,3000000,10000000")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--corpora", type=Path, help="where generated corpora are kept (default: --out)")
    parser.add_argument("--keep", action="store_true",
                        help="keep each size's store as OUT/scale-data-LINES (for benchmarks.search_bench)")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    corpora = (args.corpora or out).resolve()
    rows: list[dict[str, Any]] = []
    for size in (int(s) for s in args.sizes.split(",")):
        corpus = ensure_corpus(corpora, size, args.seed)
        baseline = min((run_stage("python_read", corpus, out) for _ in range(3)), key=lambda r: r["seconds"])
        sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] analyze {size:,} lines\n")
        data = out / (f"scale-data-{size}" if args.keep else "scale-data")
        row = analyze(corpus, data, args.jobs, args.keep)
        row["read_loop_seconds"] = baseline["seconds"]
        rows.append(row)
    first = rows[0]
    print(f"analyze --jobs {args.jobs}, store format 2 (the default)\n")
    print("| lines | seconds | CPU s | lines per CPU-s | peak RSS MB | store MB | "
          "CPU time / smallest's ÷ size ratio | read loop s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        linear = (row["cpu_seconds"] / first["cpu_seconds"]) / (row["lines"] / first["lines"])
        row["cpu_growth_over_linear"] = round(linear, 3)
        print(f"| {row['lines']:,} | {row['seconds']} | {row['cpu_seconds']} | {row['lines_per_cpu_s']:,} | "
              f"{row['peak_rss_mb']} | {row['store_mb']} | {linear:.3f} | {row['read_loop_seconds']} |")
    sys.stdout.write(orjson.dumps({"jobs": args.jobs, "rows": rows}).decode() + "\n")


if __name__ == "__main__":
    main()
