"""Benchmark runner.

    python -m benchmarks [--sizes 100000,1000000] [--seed 7] [--out benchmarks/out] [--smoke]

For each size it generates (or reuses) a seeded multi-host corpus with the scenario generator,
then times each stage in its own process: the baselines (the raw Python read loop and `grep -c`
over the same files) and stackwatch's stages (read, parse, parse+detect, parse+detect+store).
Every figure is reported with its ratio to the baselines of the same run, plus peak RSS.
Writes ``results.json`` and ``results.md`` in the output folder and prints the markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson

BASELINES = ("python_read", "grep")
STAGES = ("read", "parse", "parse_detect", "parse_detect_store")


def ensure_corpus(out: Path, lines: int, seed: int) -> Path:
    root = out / f"corpus-{lines}-{seed}"
    if not (root / "manifest.json").exists():
        from stackwatch.scenario import generate

        generate(root, seed=seed, lines=lines)
    return root


def run_stage(stage: str, corpus: Path, out: Path) -> dict[str, object]:
    command = [sys.executable, "-m", "benchmarks.stage", stage, str(corpus),
               "--data", str(out / "bench-data")]
    done = subprocess.run(command, check=True, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent)
    return orjson.loads(done.stdout.strip().splitlines()[-1])


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def to_markdown(results: list[dict[str, object]], header: str) -> str:
    rows = [header, "",
            "| lines | stage | lines/s | × python read loop | × grep -c | peak RSS MB | seconds |",
            "|---:|---|---:|---:|---:|---:|---:|"]
    for size_result in results:
        base = size_result["baselines"]  # type: ignore[index]
        py_rate = base["python_read"]["lines_per_s"]  # type: ignore[index]
        grep_rate = base["grep"]["lines_per_s"]  # type: ignore[index]
        for name, figures in [*base.items(), *size_result["stages"].items()]:  # type: ignore[union-attr,attr-defined]
            rate = figures["lines_per_s"] or 0
            rows.append(f"| {size_result['lines']:,} | {name} | {rate:,} | {rate / py_rate:.3f} | "
                        f"{rate / grep_rate:.4f} | {figures['peak_rss_mb']} | {figures['seconds']} |")
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--smoke", action="store_true", help="smallest size, for CI: must run, not timed")
    args = parser.parse_args()
    sizes = [2000] if args.smoke else [int(s) for s in args.sizes.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for size in sizes:
        corpus = ensure_corpus(args.out, size, args.seed)
        entry: dict[str, object] = {"lines": size, "baselines": {}, "stages": {}}
        for name in BASELINES:
            entry["baselines"][name] = run_stage(name, corpus, args.out)  # type: ignore[index]
        for name in args.stages.split(","):
            entry["stages"][name] = run_stage(name, corpus, args.out)  # type: ignore[index]
        results.append(entry)
    header = f"Machine: {machine()}; run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; seed {args.seed}."
    report = {"machine": machine(), "time": datetime.now(UTC).isoformat(), "results": results}
    (args.out / "results.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    markdown = to_markdown(results, header)
    (args.out / "results.md").write_text(markdown)
    sys.stdout.write(markdown)


if __name__ == "__main__":
    main()
