"""``python -m stackwatch.scenario OUT_DIR [--seed N] [--lines N]``: write a scenario."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from stackwatch.scenario.generate import DEFAULT_DURATION, DEFAULT_START, generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stackwatch.scenario",
        description="Generate seeded multi-host OpenStack logs with attacks.",
    )
    parser.add_argument("out_dir", type=Path, help="folder to write <host>/<file> and manifest.json into")
    parser.add_argument("--seed", type=int, default=7, help="random seed (same seed, same bytes; default 7)")
    parser.add_argument(
        "--lines", type=int, default=None, help="target line count over all files (default 60000)"
    )
    parser.add_argument(
        "--start",
        type=datetime.fromisoformat,
        default=DEFAULT_START,
        help=f"ISO start time, UTC unless given (default {DEFAULT_START.isoformat()})",
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=DEFAULT_DURATION.total_seconds() / 60,
        help="duration in minutes (default 120)",
    )
    parser.add_argument("--no-attacks", action="store_true", help="benign background only")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    manifest = generate(
        args.out_dir,
        seed=args.seed,
        lines=args.lines,
        start=args.start,
        duration=timedelta(minutes=args.minutes),
        attacks=not args.no_attacks,
    )
    took = time.perf_counter() - began
    cats = Counter(i.category for i in manifest.incidents)
    print(
        f"wrote {manifest.lines} lines in {len(manifest.files)} files to {args.out_dir} in {took:.1f}s; "
        f"{len(manifest.incidents)} incidents: " + ", ".join(f"{k} {v}" for k, v in sorted(cats.items()))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
