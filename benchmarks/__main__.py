"""Benchmark runner.

    python -m benchmarks [--quick | --full | --smoke] [--sizes 100000,1000000] [--keys 10000,100000]
                         [--seed 7] [--out benchmarks/out] [--corpora DIR]

Profiles: ``--smoke`` (smallest sizes, for CI: must run, not timed; < 1 min), ``--quick``
(a few minutes: 100k lines, 10k/100k keys, 100k CADF events), the default full profile
(100k, 1M and 10M lines; 10k, 100k and 1M keys; 1M CADF events).

Every stage runs in its own process (so its peak RSS is its own), after the baselines of
the same run over the same input (each baseline is the fastest of five runs: one pass of
``for line in f`` takes hundredths of a second, mostly start-up noise otherwise):

* pipeline, per corpus size: baselines ``python_read`` (the raw ``for line in f`` loop) and
  ``grep`` (``grep -c -F`` of one fixed string); stages read, parse, parse_detect (all
  built-in rules; records no rule can use get only their header, detect/prefilter.py),
  parse_detect_fullparse (the same with every record parsed in full), parse_detect_store (the
  SQLite store with its tamper-evident chain), parse_detect_store_nochain (the same store
  without the chain: the chain's cost is the ratio on/off, ``chain_ratio`` in the JSON);
* keys: the built-in keystone rules fed N distinct source addresses in one window;
* cadf: keystone CADF envelopes end to end; baseline ``cadf_orjson`` (the two decodes alone);
* sigma: SigmaHQ Linux rules over the corpus' auditd events, ours vs SQL over SQLite.

* jobs (``benchmarks.jobs``): ``analyze --jobs 1`` and ``--jobs 2`` over the smallest corpus,
  with and without the store; the wall-clock ratio and the CPU of the parent and the workers,
  with the model that gives the speed-up for more cores;
* ingest (``benchmarks.ingest``, not in ``--smoke``): one syslog stream over loopback TCP into
  rsyslog (imtcp -> omfile, the baseline) and into ``stackwatch serve``, paced at 20,000 msg/s
  and flat out; msgs/s, the ratio, alert latency p50/p99 and each server's peak RSS.

Corpora are generated once per (size, seed) with the scenario generator and reused (pass
``--corpora`` to keep them outside ``--out``). Writes ``results.json`` and ``results.md``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from benchmarks import jobs as jobs_bench
from benchmarks.ingest import markdown as ingest_markdown
from benchmarks.report import to_markdown

BASELINES = ("python_read", "grep")
BASELINE_RUNS = 5
STAGES = ("read", "parse", "parse_pure", "parse_detect", "parse_detect_pure", "parse_detect_fullparse",
          "parse_detect_fullparse_pure", "parse_detect_store",
          "parse_detect_store_pure", "parse_detect_store_nochain")
PURE = "_pure"
"""A stage name ending so runs that stage with STACKWATCH_PURE_PYTHON=1: the pure-Python path
beside the compiled one (when the install built it; else both rows are pure Python)."""
FLOORS = ("floor_event", "floor_wide_row", "floor_meta_row")  # benchmarks.floors
CADF_STAGES = ("cadf_orjson", "cadf_parse", "cadf_e2e", "cadf_store")
INGEST_STAGES: tuple[str, ...] = ("rsyslog_tcp", "syslog_tcp")  # run by benchmarks.ingest
INGEST_RATES = (20_000, 0)  # paced msg/s, then flat out

PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {"sizes": [2000], "keys": [1000], "cadf": 2000, "sigma_events": 2000, "ingest": 0},
    "quick": {"sizes": [100_000], "keys": [10_000, 100_000], "cadf": 100_000, "sigma_events": 200_000,
              "ingest": 100_000},
    "full": {"sizes": [100_000, 1_000_000, 10_000_000], "keys": [10_000, 100_000, 1_000_000],
             "cadf": 1_000_000, "sigma_events": 1_000_000, "ingest": 1_000_000},
}
ROOT = Path(__file__).resolve().parent.parent


def ensure_corpus(corpora: Path, lines: int, seed: int) -> Path:
    root = corpora / f"corpus-{lines}-{seed}"
    if not (root / "manifest.json").exists():
        from stackwatch.scenario import generate

        generate(root, seed=seed, lines=lines)
    return root


def ensure_cadf(corpora: Path, events: int, seed: int) -> Path:
    root = corpora / f"cadf-{events}-{seed}"
    target = root / "ctl1" / "notifications.json"
    if not target.exists():
        from benchmarks.synthetic import write_cadf

        write_cadf(target, events, seed)
    return root


def run_stage(stage: str, corpus: Path, out: Path, *extra: str) -> dict[str, Any]:
    pure = stage.endswith(PURE)
    command = [sys.executable, "-m", "benchmarks.stage", stage.removesuffix(PURE), str(corpus),
               "--data", str(out / "bench-data"), *extra]
    env = {**os.environ}
    if pure:
        env["STACKWATCH_PURE_PYTHON"] = "1"
    done = subprocess.run(command, check=False, capture_output=True, text=True, cwd=ROOT, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"stage {stage} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = orjson.loads(done.stdout.strip().splitlines()[-1])
    figures["stage"] = stage
    return figures


def best_of(runs: int, stage: str, corpus: Path, out: Path) -> dict[str, Any]:
    """The fastest of ``runs`` runs of a stage."""
    return min((run_stage(stage, corpus, out) for _ in range(runs)), key=lambda r: r["seconds"])


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{memory}, Python {platform.python_version()}, {platform.system()}"


def _log(message: str) -> None:
    sys.stderr.write(f"[{datetime.now(UTC):%H:%M:%S}] {message}\n")
    sys.stderr.flush()


def run_pipeline(sizes: list[int], stages: list[str], corpora: Path, out: Path,
                 seed: int, repeat: int = 1) -> list[dict[str, Any]]:
    results = []
    for size in sizes:
        _log(f"corpus of {size:,} lines")
        corpus = ensure_corpus(corpora, size, seed)
        entry: dict[str, Any] = {"lines": size, "baselines": {}, "stages": {}}
        for name in BASELINES:
            # A baseline pass takes a few hundredths of a second, so one run is mostly start-up
            # noise (page cache, CPU clock ramp): the fastest of several is the honest figure.
            entry["baselines"][name] = best_of(BASELINE_RUNS, name, corpus, out)
        if "floors" in stages:
            _log("  floors")
            entry["floors"] = {name: best_of(max(repeat, 3), name, corpus, out) for name in FLOORS}
        for name in stages:
            if name == "floors":
                continue
            _log(f"  {name}")
            entry["stages"][name] = best_of(repeat, name, corpus, out)
        ratio = chain_ratio(entry["stages"])
        if ratio is not None:
            entry["chain_ratio"] = ratio
        results.append(entry)
    return results


def chain_ratio(stages: dict[str, Any]) -> dict[str, float] | None:
    """End-to-end rate with the chain over the rate without it (wall and CPU), when both ran."""
    on, off = stages.get("parse_detect_store"), stages.get("parse_detect_store_nochain")
    if not on or not off:
        return None
    return {key: round(on[key] / off[key], 3) for key in ("lines_per_s", "lines_per_cpu_s")
            if on.get(key) and off.get(key)}


def run_ingest(lines: int, corpus: Path) -> dict[str, Any]:
    runs = []
    for rate in INGEST_RATES:
        _log(f"ingest: {lines:,} messages over TCP, {f'{rate:,}/s' if rate else 'flat out'}")
        command = [sys.executable, "-m", "benchmarks.ingest", str(corpus), "--lines", str(lines),
                   "--rate", str(rate), "--stages", ",".join(INGEST_STAGES)]
        done = subprocess.run(command, check=False, capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            raise RuntimeError(f"ingest failed ({done.returncode}):\n{done.stderr[-3000:]}")
        runs.append(orjson.loads(done.stdout.strip().splitlines()[-1]))
    ratios = ", ".join(f"{r.get('ratio', '–')} at " + (f"{r['rate']:,}/s" if r["rate"] else "flat out")
                       for r in runs)
    return {"status": f"stackwatch / rsyslog msgs/s {ratios} (table below)", "runs": runs}


def growth(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Time and peak RSS per stage across sizes, and each size's time ratio to the previous one."""
    table: dict[str, Any] = {}
    for previous, current in itertools.pairwise(results):
        scale = current["lines"] / previous["lines"]
        for name, figures in current["stages"].items():
            before = previous["stages"].get(name)
            if before and before["seconds"]:
                table.setdefault(name, []).append({
                    "from": previous["lines"], "to": current["lines"], "size_ratio": scale,
                    "time_ratio": round(figures["seconds"] / before["seconds"], 2),
                    "rss_from_mb": before["peak_rss_mb"], "rss_to_mb": figures["peak_rss_mb"]})
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--smoke", action="store_true", help="smallest sizes, for CI: must run, not timed")
    group.add_argument("--quick", action="store_true", help="a few minutes in all")
    group.add_argument("--full", action="store_true", help="100k-10M lines, up to 1M keys (the default)")
    parser.add_argument("--sizes", help="corpus sizes in lines, comma-separated (overrides the profile)")
    parser.add_argument("--keys", help="distinct source addresses for the keys benchmark (overrides)")
    parser.add_argument("--cadf", type=int, help="CADF events (overrides the profile)")
    parser.add_argument("--skip", default="",
                        help="comma-separated sections to skip: pipeline,keys,cadf,sigma,jobs,ingest")
    parser.add_argument("--stages", default=",".join((*STAGES, "floors")),
                        help="pipeline stages to run ('floors': the floor stages of benchmarks.floors)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each pipeline and CADF stage N times and keep the fastest (baselines: 5)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--corpora", type=Path, help="where generated inputs are kept (default: --out)")
    args = parser.parse_args()
    profile_name = "smoke" if args.smoke else "quick" if args.quick else "full"
    profile = dict(PROFILES[profile_name])
    if args.sizes:
        profile["sizes"] = [int(s) for s in args.sizes.split(",")]
    if args.keys:
        profile["keys"] = [int(s) for s in args.keys.split(",")]
    if args.cadf:
        profile["cadf"] = args.cadf
    skip = set(filter(None, args.skip.split(",")))
    out: Path = args.out.resolve()
    corpora: Path = (args.corpora or args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    corpora.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report: dict[str, Any] = {"machine": machine(), "time": datetime.now(UTC).isoformat(timespec="seconds"),
                              "profile": profile_name, "seed": args.seed, "settings": profile,
                              "repeat": args.repeat}
    stages = [s for s in args.stages.split(",") if s]
    if "pipeline" not in skip:
        report["results"] = run_pipeline(profile["sizes"], stages, corpora, out, args.seed, args.repeat)
        report["growth"] = growth(report["results"])
    if "keys" not in skip:
        report["keys"] = []
        for ips in profile["keys"]:
            _log(f"keys: {ips:,} source addresses")
            report["keys"].append(run_stage("keys", corpora, out, "--ips", str(ips)))
    if "cadf" not in skip:
        _log(f"cadf: {profile['cadf']:,} events")
        cadf = ensure_cadf(corpora, profile["cadf"], args.seed)
        report["cadf"] = {
            name: best_of(BASELINE_RUNS if name == "cadf_orjson" else args.repeat, name, cadf, out)
            for name in CADF_STAGES}
    if "sigma" not in skip:
        # the auditd records of the largest corpus up to 1M lines
        size = max([s for s in profile["sizes"] if s <= 1_000_000] or [min(profile["sizes"])])
        _log(f"sigma: auditd events of the {size:,}-line corpus")
        report["sigma"] = run_stage("sigma", ensure_corpus(corpora, size, args.seed), out,
                                    "--events", str(profile["sigma_events"]))
        report["sigma"]["corpus_lines"] = size
    if "jobs" not in skip:
        size = min(profile["sizes"])
        _log(f"jobs: analyze --jobs 1 and 2 over the {size:,}-line corpus")
        corpus = ensure_corpus(corpora, size, args.seed)
        report["jobs"] = jobs_bench.summary({name: best_of(args.repeat, name, corpus, out)
                                            for name in jobs_bench.STAGES})
    report["ingest"] = {"status": "not run in this profile"}
    if "ingest" not in skip and profile["ingest"]:
        pool = ensure_corpus(corpora, min(profile["sizes"]), args.seed)  # the lines the stream cycles
        report["ingest"] = run_ingest(profile["ingest"], pool)
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    (out / "results.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    markdown = to_markdown(report)
    markdown += "".join(f"{row}\n" for row in jobs_bench.markdown(report.get("jobs", {})))
    markdown += "".join(f"{row}\n" for row in ingest_markdown(report["ingest"].get("runs", [])))
    (out / "results.md").write_text(markdown)
    sys.stdout.write(markdown)


if __name__ == "__main__":
    main()
