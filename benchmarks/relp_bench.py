"""RELP ingest against plain TCP syslog, same sender, same run: what acknowledging after the
store commit costs.

    python -m benchmarks.relp_bench [--lines 20000] [--windows 128,1024] [--commit-interval 0.2]

A real rsyslogd reads N lines from a file (imfile) and forwards them through a disk-assisted
queue to ``stackwatch serve``, first with ``omfwd`` over TCP (the baseline: no
acknowledgements) into a ``syslog_tcp`` source, then with ``omrelp`` at each window size into a
``relp`` source. Each run is timed from the moment the file is complete until serve's /metrics
counts all N events committed. One RELP session carries at most ``window`` unacknowledged
messages and they are acknowledged at each commit, so its rate is bounded by about
``window / commit_interval``: the figures show where that bound bites. Prints JSON (msgs/s per
variant and the ratio to the TCP baseline, serve's CPU seconds and peak RSS).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.ingest import STACKWATCH, TOKEN, _free_port, _proc_figures, _stop, _wait

LINE = "Failed password for invalid user bench{0} from 198.51.100.{1} port {2} ssh2\n"


def _serve(folder: Path, source: str, port: int, http: int,
           commit_interval: float) -> subprocess.Popen[bytes]:
    folder.mkdir(parents=True)
    config = folder / "serve.yaml"
    config.write_text(
        f"hostname: benchmon\nstate_dir: {folder / 'state'}\nstore: {{url: '{folder / 'data'}'}}\n"
        "rules: {builtin: false}\n"
        f"sources:\n  - {{type: {source}, name: bench, listen: '127.0.0.1:{port}'}}\n"
        f"listen: {{metrics: '127.0.0.1:{http}', metrics_token: $env:SW_BENCH_TOKEN}}\n"
        f"limits: {{commit_interval: {commit_interval}s}}\n")
    log = folder / "serve.log"
    with log.open("wb") as err:
        proc = subprocess.Popen([STACKWATCH, "serve", "--config", str(config)], stdout=subprocess.DEVNULL,
                                stderr=err, env={**os.environ, "SW_BENCH_TOKEN": TOKEN})
    if not _wait(lambda: b"ready:" in log.read_bytes() or proc.poll() is not None, 60, 0.05) \
            or proc.poll() is not None:
        _stop(proc)
        raise RuntimeError("stackwatch serve did not start:\n" + log.read_text()[-3000:])
    return proc


def _committed(http: int) -> int:
    pattern = re.compile(r'^stackwatch_events_committed_total\{source="bench"\} (\d+)', re.M)
    request = urllib.request.Request(f"http://127.0.0.1:{http}/metrics",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            match = pattern.search(response.read().decode())
    except OSError:
        return 0
    return int(match.group(1)) if match else 0


def run_variant(work: Path, name: str, lines: int, window: int, commit_interval: float) -> dict[str, Any]:
    port, http = _free_port(), _free_port()
    relp = window > 0
    serve = _serve(work / name / "serve", "relp" if relp else "syslog_tcp", port, http, commit_interval)
    folder = work / name / "rsyslog"
    (folder / "work").mkdir(parents=True)
    source = folder / "in.log"
    source.touch()
    forward = (f'action(type="omrelp" target="127.0.0.1" port="{port}" windowSize="{window}"' if relp else
               f'action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp"')
    conf = folder / "rsyslog.conf"
    conf.write_text(
        f'global(workDirectory="{folder / "work"}")\nmodule(load="imfile")\n'
        + ('module(load="omrelp")\n' if relp else "")
        + f'input(type="imfile" file="{source}" tag="sshd:" facility="auth" severity="info")\n'
        + forward + ' template="RSYSLOG_SyslogProtocol23Format"\n'
        '       queue.type="LinkedList" queue.filename="fwd" queue.size="1000000"'
        ' action.resumeRetryCount="-1" action.resumeInterval="1")\n')
    rsyslog = subprocess.Popen(["rsyslogd", "-n", "-f", str(conf), "-i", str(folder / "rsyslog.pid")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # imfile watching, omrelp/omfwd connected
        with source.open("w") as handle:
            handle.write("".join(LINE.format(i, i % 250, 10000 + i % 50000) for i in range(lines)))
        started = time.monotonic()
        done = _wait(lambda: _committed(http) >= lines, 600, 0.05)
        seconds = time.monotonic() - started
        peak, cpu = _proc_figures(serve.pid)
        stored = _committed(http)
    finally:
        _stop(rsyslog)
        _stop(serve)
    return {"variant": name, "window": window or None, "lines": lines, "stored": stored,
            "complete": bool(done), "seconds": round(seconds, 3),
            "msgs_per_s": int(stored / seconds) if seconds else 0,
            "serve_cpu_s": cpu, "serve_peak_rss_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--windows", default="128,1024")
    parser.add_argument("--commit-interval", type=float, default=0.2)
    args = parser.parse_args()
    windows = [int(w) for w in args.windows.split(",") if w]
    with tempfile.TemporaryDirectory(prefix="relp-bench-") as tmp:
        work = Path(tmp)
        results = [run_variant(work, "tcp", args.lines, 0, args.commit_interval)]
        results += [run_variant(work, f"relp_w{w}", args.lines, w, args.commit_interval) for w in windows]
    base = results[0]["msgs_per_s"] or 1
    for result in results:
        result["ratio_to_tcp"] = round(result["msgs_per_s"] / base, 3)
    print(json.dumps({"commit_interval": args.commit_interval, "results": results}, indent=2))


if __name__ == "__main__":
    main()
