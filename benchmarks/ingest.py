"""End-to-end TCP syslog ingest: ``stackwatch serve`` against real rsyslog, same stream, same run.

    python -m benchmarks.ingest CORPUS_DIR [--lines N] [--rate 20000 | --rate 0] [--stages ...]

One stream of N syslog lines (LF framing) is built once from the scenario corpus' auth.log,
syslog (RFC 3164) and keystone.log (RFC 5424) lines, re-stamped to now, with ~1% scattered
sshd failures and a few bursts of ten failures from one new address each, spread through the
stream. A sender process streams it over loopback TCP, paced at ``--rate`` messages/s
(0: flat out), to each server in turn:

* ``rsyslog_tcp``: rsyslogd (imtcp -> omfile), timed until its file holds all N lines;
* ``syslog_tcp``: ``stackwatch serve`` (one syslog_tcp source, the built-in rules plus a
  threshold rule on sshd failures, the embedded store, a webhook sink to a receiver in this
  process), timed until /metrics counts all N events committed to the store. Alert latency
  is from the sender's ``sendall`` of each burst's tenth failure to the webhook's receipt.

Each server is a child process: its peak RSS (VmHWM) and CPU time are read from /proc just
before it is stopped. Prints one JSON object; ``markdown()`` renders it for the report.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

INGEST_STAGES = ("rsyslog_tcp", "syslog_tcp")
RULE_ID = "7b1f3c2e-5a4d-4e8b-9c61-2d0e8f4a9b10"
RULE = f"""\
id: {RULE_ID}
title: SSH brute force (ingest benchmark)
category: auth.bruteforce
severity: high
kind: threshold
condition: {{action: authenticate, outcome: failure, service: sshd}}
group_by: [initiator.source_ip]
threshold: 10
window: 1m
summary: "{{count}} failed ssh logins from {{initiator.source_ip}}"
"""
BURST = 10  # failures per burst: the rule's threshold
SYSLOG_LINE = re.compile(rb"^\w{3} [ \d]\d \d\d:\d\d:\d\d (\S+) ([^\[:\s]+)(?:\[(\d+)\])?: (.*)$")
STACKWATCH = str(Path(sys.executable).parent / "stackwatch")
TOKEN = "bench-metrics"


# ---------------------------------------------------------------------------- the stream


def _pool(corpus: Path) -> list[tuple[bool, int, bytes, bytes, bytes, bytes]]:
    """(rfc5424, pri, host, app, pid, message) of the corpus' auth.log, syslog and keystone.log."""
    pool = []
    for path in sorted(corpus.rglob("*")):
        if path.name in ("auth.log", "syslog"):
            pri = 38 if path.name == "auth.log" else 30  # auth.info, daemon.info
            for line in path.read_bytes().splitlines():
                match = SYSLOG_LINE.match(line)
                if match:
                    host, app, pid, message = match.groups()
                    pool.append((pri == 38, pri, host, app, pid or b"-", message))
        elif path.name == "keystone.log":
            host = path.parent.name.encode()
            for line in path.read_bytes().splitlines():
                pid = line.split(b" ", 3)[2] if line.count(b" ") > 3 else b"-"
                pool.append((True, 134, host, b"keystone", pid, line))  # local0.info
    if not pool:
        raise SystemExit(f"no auth.log/syslog/keystone.log lines under {corpus}")
    return pool


def build_stream(corpus: Path, lines: int, rate: int, target: Path, seed: int = 7) -> dict[str, Any]:
    """Write the stream; return where each burst's threshold-crossing line is and its address."""
    pool, rnd = _pool(corpus), random.Random(seed)
    bursts = 10 if lines <= 200_000 else 20
    starts = {int(lines * (0.05 + 0.9 * k / max(bursts - 1, 1))): k for k in range(bursts)}
    pending: dict[int, tuple[int, int]] = {}  # line index -> (burst, nth failure)
    for start, k in starts.items():
        for n in range(BURST):
            pending[min(start + 20 * n, lines - 1 - (BURST - n))] = (k, n)
    marks: dict[int, str] = {}
    base = datetime.now(UTC)
    step = max(rate // 1000, 1) if rate else lines  # one stamp per millisecond of the pacing
    failures = 0
    with target.open("wb") as out:
        for i in range(lines):
            if i % step == 0:
                now = base + timedelta(seconds=i / rate) if rate else base
                iso = now.isoformat(timespec="microseconds").replace("+00:00", "Z").encode()
                bsd = now.strftime("%b %e %H:%M:%S").encode()
            burst = pending.get(i)
            if burst is not None:
                address = f"203.0.113.{burst[0] + 1}"
                if burst[1] == BURST - 1:
                    marks[i] = address
                message = f"Failed password for root from {address} port {40000 + i % 20000} ssh2"
                out.write(b"<38>1 %s cmp2 sshd %d - - %s\n" % (iso, 3000 + i % 9000, message.encode()))
            elif rnd.random() < 0.01:  # scattered failures, two or so per address: below thresholds
                failures += 1
                address = f"10.{rnd.randrange(40, 48)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
                user = rnd.choice(("admin", "ubuntu", "oracle", "test", "git", "root"))
                port = rnd.randrange(1024, 65535)
                message = f"Failed password for invalid user {user} from {address} port {port} ssh2"
                out.write(b"<38>1 %s cmp%d sshd %d - - %s\n" % (iso, 1 + i % 4, 2000 + i % 9000,
                                                              message.encode()))
            else:
                rfc5424, pri, host, app, pid, text = pool[i % len(pool)]
                if rfc5424:
                    out.write(b"<%d>1 %s %s %s %s - - %s\n" % (pri, iso, host, app, pid, text))
                else:
                    tag = b"%s[%s]" % (app, pid) if pid != b"-" else app
                    out.write(b"<%d>%s %s %s: %s\n" % (pri, bsd, host, tag, text))
    return {"marks": marks, "failures": failures + BURST * bursts, "bytes": target.stat().st_size}


def send(port: int, stream: Path, rate: int, marks: set[int]) -> dict[str, Any]:
    """The sender: stream the file to 127.0.0.1:port, paced, noting when each mark was sent."""
    step = max(rate // 1000, 1) if rate else 2000
    sent: dict[int, float] = {}
    batch: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=600) as sock, stream.open("rb") as handle:
        start, began = time.perf_counter(), time.time()
        count = 0
        for line in handle:
            batch.append(line)
            marked = count in marks
            count += 1
            if marked or len(batch) >= step:
                sock.sendall(b"".join(batch))
                batch.clear()
                if marked:
                    sent[count - 1] = time.time()
                if rate and (delay := start + count / rate - time.perf_counter()) > 0:
                    time.sleep(delay)
        if batch:
            sock.sendall(b"".join(batch))
        ended = time.time()
        sock.shutdown(socket.SHUT_WR)
    return {"start": began, "end": ended, "lines": count, "sent": sent}


def _sender(port: int, stream: Path, rate: int, marks: dict[int, str], out: Path) -> subprocess.Popen[bytes]:
    job = out.with_suffix(".marks")
    job.write_text(json.dumps(sorted(marks)))
    command = [sys.executable, "-m", "benchmarks.ingest", "--send", str(port), str(stream),
               "--rate", str(rate), "--marks", str(job), "--sent", str(out)]
    return subprocess.Popen(command, cwd=Path(__file__).resolve().parent.parent)


# ---------------------------------------------------------------------------- helpers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _proc_figures(pid: int) -> tuple[float, float]:
    """Peak RSS (MB) and CPU seconds of a live process."""
    peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return round(peak, 1), round(cpu, 2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _wait(predicate: Any, timeout: float, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


def _connectable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Hooks:
    """A local HTTP receiver for the webhook sink, noting when each POST arrived."""

    def __init__(self) -> None:
        self.received: list[tuple[float, bytes]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append((time.time(), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def first_alert(self) -> dict[str, float]:
        """Address -> arrival of the first alert of the benchmark's rule for it."""
        first: dict[str, float] = {}
        for arrived, body in list(self.received):
            alert = json.loads(body).get("alert", {})
            if alert.get("rule") == RULE_ID and alert.get("source_ip"):
                first.setdefault(alert["source_ip"], arrived)
        return first

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 4)


# ---------------------------------------------------------------------------- the two sides


def run_rsyslog(work: Path, stream: Path, lines: int, rate: int, marks: dict[int, str]) -> dict[str, Any]:
    port, folder = _free_port(), work / "rsyslog"
    (folder / "work").mkdir(parents=True)
    output = folder / "out.log"
    conf = folder / "rsyslog.conf"
    conf.write_text(
        f'global(workDirectory="{folder / "work"}")\nmodule(load="imtcp")\n'
        f'input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="bench")\n'
        f'ruleset(name="bench") {{ action(type="omfile" file="{output}") }}\n')
    proc = subprocess.Popen(["rsyslogd", "-n", "-f", str(conf), "-i", str(folder / "rsyslog.pid")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not _wait(lambda: _connectable(port), 20, 0.05):
            raise RuntimeError("rsyslogd did not listen")
        counted, offset = [0], [0]

        def complete() -> bool:
            if output.exists():
                with output.open("rb") as handle:
                    handle.seek(offset[0])
                    chunk = handle.read()
                offset[0] += len(chunk)
                counted[0] += chunk.count(b"\n")
            return counted[0] >= lines

        figures = _drive(work / "rsyslog.sent", proc.pid, port, stream, lines, rate, marks, complete)
        figures["stored"] = counted[0]
    finally:
        _stop(proc)
    return figures


def run_serve(work: Path, stream: Path, lines: int, rate: int, marks: dict[int, str]) -> dict[str, Any]:
    port, http, folder = _free_port(), _free_port(), work / "serve"
    (folder / "rules").mkdir(parents=True)
    (folder / "rules" / "bench.yaml").write_text(RULE)
    hooks = Hooks()
    config = folder / "serve.yaml"
    config.write_text(
        f"hostname: benchmon\nstate_dir: {folder / 'state'}\nstore: {{url: '{folder / 'data'}'}}\n"
        f"rules: {{builtin: true, paths: ['{folder / 'rules'}']}}\n"
        f"sources:\n  - {{type: syslog_tcp, name: tcp, listen: '127.0.0.1:{port}'}}\n"
        f"sinks:\n  - {{type: webhook, name: hook, url: '{hooks.url}'}}\n"
        f"throttle: {{max_per_minute: 1000000}}\n"
        f"listen: {{metrics: '127.0.0.1:{http}', metrics_token: $env:SW_BENCH_TOKEN}}\n"
        "limits: {heartbeat_interval: 1s}\n")
    log = folder / "serve.log"
    with log.open("wb") as err:
        proc = subprocess.Popen([STACKWATCH, "serve", "--config", str(config)], stdout=subprocess.DEVNULL,
                                stderr=err, env={**os.environ, "SW_BENCH_TOKEN": TOKEN})
    try:
        if not _wait(lambda: b"ready:" in log.read_bytes() or proc.poll() is not None, 60, 0.05) \
                or proc.poll() is not None:
            raise RuntimeError("stackwatch serve did not start:\n" + log.read_text()[-3000:])
        committed = [0]
        pattern = re.compile(r'^stackwatch_events_committed_total\{source="tcp"\} (\d+)', re.M)
        request = urllib.request.Request(f"http://127.0.0.1:{http}/metrics",
                                         headers={"Authorization": f"Bearer {TOKEN}"})

        def complete() -> bool:
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    match = pattern.search(response.read().decode())
            except OSError:  # busy: ask again
                return False
            committed[0] = int(match.group(1)) if match else 0
            return committed[0] >= lines

        figures = _drive(work / "serve.sent", proc.pid, port, stream, lines, rate, marks, complete, 0.05)
        figures["stored"] = committed[0]
        _wait(lambda: len(hooks.first_alert()) >= len(marks), 10, 0.05)  # the last bursts' alerts
        first = hooks.first_alert()
        sent = figures.pop("sent")
        latencies = [first[address] - sent[i] for i, address in marks.items()
                     if address in first and i in sent]
        figures.update({"alerts_expected": len(marks), "alerts_received": len(latencies),
                        "latency_p50_s": _percentile(latencies, 0.5),
                        "latency_p99_s": _percentile(latencies, 0.99),
                        "latency_max_s": round(max(latencies), 4) if latencies else None,
                        "webhook_posts": len(hooks.received)})
    finally:
        _stop(proc)
        hooks.close()
    return figures


def _drive(sent_file: Path, pid: int, port: int, stream: Path, lines: int, rate: int,
           marks: dict[int, str], complete: Any, interval: float = 0.02) -> dict[str, Any]:
    """Run the sender and poll ``complete`` until every line is in (bounded). The server's CPU
    time is counted from here (its start-up is not), its peak RSS over its whole life."""
    _, cpu_before = _proc_figures(pid)
    sender = _sender(port, stream, rate, marks, sent_file)
    limit = 120 + lines / 1000  # no server here is slower than 1,000 msg/s
    try:
        done = _wait(complete, limit, interval)
        finished = time.time()
        peak, cpu_after = _proc_figures(pid)
        if sender.wait(60) != 0:
            raise RuntimeError("sender failed")
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait(10)
    report = json.loads(sent_file.read_text())
    seconds, cpu = finished - report["start"], round(cpu_after - cpu_before, 2)
    return {"lines": lines, "complete": bool(done), "seconds": round(seconds, 3),
            "msgs_per_s": round(lines / seconds) if done else None, "cpu_seconds": cpu,
            "msgs_per_cpu_s": round(lines / cpu) if done and cpu > 0 else None, "peak_rss_mb": peak,
            "send_seconds": round(report["end"] - report["start"], 3),
            "sent_per_s": round(lines / max(report["end"] - report["start"], 1e-9)),
            "sent": {int(k): v for k, v in report["sent"].items()}}


def run(corpus: Path, lines: int, rate: int, stages: tuple[str, ...] = INGEST_STAGES) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="sw-ingest-"))
    try:
        stream = work / "stream.log"
        built = build_stream(corpus, lines, rate, stream)
        marks = built["marks"]
        result: dict[str, Any] = {"lines": lines, "rate": rate, "bytes": built["bytes"],
                                  "sshd_failures": built["failures"], "bursts": len(marks)}
        for stage in stages:
            side = run_rsyslog if stage == "rsyslog_tcp" else run_serve
            figures = side(work, stream, lines, rate, marks)
            figures.pop("sent", None)
            result[stage] = figures
        ours, theirs = result.get("syslog_tcp", {}), result.get("rsyslog_tcp", {})
        if ours.get("msgs_per_s") and theirs.get("msgs_per_s"):
            result["ratio"] = round(ours["msgs_per_s"] / theirs["msgs_per_s"], 3)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def markdown(runs: list[dict[str, Any]]) -> list[str]:
    rows = ["", "### TCP syslog ingest: `stackwatch serve` vs rsyslog (same stream, loopback, LF framing)",
            "",
            "| messages | sent at | server | msgs/s | ÷ rsyslog | msgs per CPU-s | alert p50 / p99 s "
            "| peak RSS MB |",
            "|---:|---|---|---:|---:|---:|---|---:|"]
    for entry in runs:
        pace = f"{entry['rate']:,}/s" if entry["rate"] else "flat out"
        for stage, label in (("rsyslog_tcp", "rsyslogd imtcp → omfile"),
                             ("syslog_tcp", "stackwatch serve (parse, rules, store, webhook)")):
            fig = entry.get(stage)
            if not fig:
                continue
            rate = f"{fig['msgs_per_s']:,}" if fig["msgs_per_s"] else f"incomplete ({fig['stored']:,})"
            latency = (f"{fig['latency_p50_s']} / {fig['latency_p99_s']} "
                       f"({fig['alerts_received']}/{fig['alerts_expected']} bursts)"
                       if "alerts_expected" in fig else "–")
            ratio = entry.get("ratio", "–") if stage == "syslog_tcp" else "1.000"
            per_cpu = f"{fig['msgs_per_cpu_s']:,}" if fig.get("msgs_per_cpu_s") else "–"
            rows.append(f"| {entry['lines']:,} | {pace} | {label} | {rate} | {ratio} | {per_cpu} "
                        f"| {latency} | {fig['peak_rss_mb']} |")
    if runs:
        rows += ["", "msgs/s: first line sent until all N are in rsyslog's file / committed to stackwatch's "
                 "store (per /metrics). rsyslogd runs several threads, so its CPU-s can be below its wall "
                 "time. Alert latency: the sender's `sendall` of a burst's tenth sshd failure to the "
                 "webhook's receipt; it includes any backlog when serve is slower than the sender, and with "
                 "ten bursts p99 is the slowest."]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path, nargs="?")
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=20_000, help="messages/s (0: flat out)")
    parser.add_argument("--stages", default=",".join(INGEST_STAGES))
    parser.add_argument("--send", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--marks", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sent", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.send:  # the sender process
        marks = set(json.loads(args.marks.read_text()))
        args.sent.write_text(json.dumps(send(args.send, args.corpus, args.rate, marks)))
        return
    stages = tuple(s for s in args.stages.split(",") if s in INGEST_STAGES)
    sys.stdout.write(json.dumps(run(args.corpus, args.lines, args.rate, stages)) + "\n")


if __name__ == "__main__":
    main()
