"""Run one ``stackwatch`` command under yappi with its CPU clock, every thread profiled (an
analyzer commits in worker threads), and write a pstats file at exit (``cluster_bench`` uses it
when ``SW_BENCH_PROFILE`` names a folder; cProfile's wall clock counted the event loop's waits).

    python -m benchmarks.profile_role OUT.prof stackwatch-args...

SIGUSR1 clears what was collected so far: the benchmark sends it when its measured stream starts,
so start-up and warm-up (rules parsed, partitions opened) stay out of the profile.
"""

from __future__ import annotations

import signal
import sys


def main() -> None:
    import yappi

    out, args = sys.argv[1], sys.argv[2:]
    yappi.set_clock_type("cpu")
    signal.signal(signal.SIGUSR1, lambda *_: yappi.clear_stats())
    yappi.start(builtins=False)
    try:
        from stackwatch.cli.main import main as cli

        sys.argv = ["stackwatch", *args]
        cli()
    except SystemExit:
        pass
    finally:
        yappi.stop()
        yappi.get_func_stats().save(out, type="pstat")


if __name__ == "__main__":
    main()
