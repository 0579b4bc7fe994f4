"""The cluster roles against the single process: TCP ingest through collectors, RabbitMQ and
analyzers, same stream, same run (issue #17's benchmark).

    python -m benchmarks.cluster_bench CORPUS_DIR [--lines N] [--rate R] [--shapes 1x1,2x2]
                                                  [--partitions 4] [--store sqlite|URL]
                                                  [--hosts N] [--split contiguous|hosts]

The stream is ``benchmarks.ingest``'s (the corpus' syslog lines re-stamped to now, scattered sshd
failures, bursts of ten failures from one new address each, caught by a threshold rule). Stages:

* ``single``: ``stackwatch serve --role all`` (``benchmarks.ingest.run_serve``): parse, detect,
  store, webhook; timed until /metrics counts every event committed.
* ``CxA`` per shape: C ``serve --role collector`` and A ``serve --role analyzer`` processes (the
  partitions split between the analyzers with ``--prefer``), one TCP sender per collector with
  its share of the stream (contiguous parts, or with ``--split hosts`` the lines of its hosts;
  sent at once, each paced at its share of ``--rate``), the same rules and webhook sink on the
  analyzers; timed until the analyzers' /metrics count every event stored.

Primary measure: **CPU seconds per event** of every child process (utime + stime from
/proc/<pid>/stat, from the first line sent to the last event stored), because the 2-core
machine this runs on is shared: wall-clock rates say how loaded it was, not what the roles cost.
From the CPU figures:

* ``parallel_speedup``: the single-threaded ceiling of the busiest process of a shape (events
  per CPU-second of its most loaded analyzer, or collector) relative to the 1x1 shape's: what
  doubling the processes buys when each gets a core;
* ``cores_per_10k``: CPU cores all roles of a shape (and the broker, measured the same way; other
  clients of the broker inflate it) need for 10,000 events/s; ``capacity_2_cores``: the events/s
  that fit in 2 cores, against the single process on one core.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import zlib
from pathlib import Path
from typing import Any

from benchmarks.ingest import (
    RULE,
    TOKEN,
    Hooks,
    _free_port,
    _percentile,
    _proc_figures,
    _stop,
    _wait,
    build_stream,
    run_serve,
)

SRC = str(Path(__file__).resolve().parent.parent / "src")
AMQP = "amqp://guest@127.0.0.1:5672/"
STORED = re.compile(r"^stackwatch_analyzer_events_stored_total\{[^}]*\} (\d+)", re.M)


def _broker_pid() -> int | None:
    """The RabbitMQ node's Erlang VM (beam.smp), read from /proc (nothing is signalled)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "beam.smp":
                    return int(entry.name)
            except OSError:
                continue
    return None


def _cpu(pid: int) -> float:
    try:
        return _proc_figures(pid)[1]
    except OSError:  # gone
        return 0.0


class Role:
    """One ``serve --role`` child process with its config and log."""

    def __init__(self, folder: Path, name: str, role: str, config: str, prefer: str | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.name, self.role = name, role
        self.config = folder / f"{name}.yaml"
        self.config.write_text(config)
        self.log = folder / f"{name}.log"
        command = [sys.executable, "-m", "stackwatch", "serve", "--role", role, "-c", str(self.config)]
        if os.environ.get("SW_BENCH_PROFILE"):  # yappi's CPU clock in each role (benchmarks/profile_role.py)
            out = Path(os.environ["SW_BENCH_PROFILE"]) / f"{name}.prof"
            command[1:3] = ["-m", "benchmarks.profile_role", str(out)]
        if prefer is not None:
            command += ["--prefer", prefer]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join((SRC, str(Path(SRC).parent), os.environ.get("PYTHONPATH", ""))),
            "SW_BENCH_TOKEN": TOKEN,
        }
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=env)
        self.cpu_start = 0.0

    def wait_ready(self) -> None:
        if (
            not _wait(lambda: b"ready:" in self.log.read_bytes() or self.proc.poll() is not None, 90, 0.05)
            or self.proc.poll() is not None
        ):
            raise RuntimeError(f"{self.name} did not start:\n" + self.log.read_text()[-3000:])

    def figures(self) -> dict[str, Any]:
        peak, cpu = _proc_figures(self.proc.pid)
        return {"cpu_seconds": round(cpu - self.cpu_start, 2), "peak_rss_mb": peak}


def _split(stream: Path, parts: int, marks: dict[int, str], work: Path,
           how: str = "contiguous") -> list[tuple[Path, dict[int, str], int]]:
    """The stream in ``parts`` (path, its marks renumbered, its lines). ``contiguous``: the first
    part holds the stream's first lines, and so on (a paced stream is stamped by its position,
    so the second collector's records are ahead in time of the first's by half the run, and an
    analyzer holds them for the first: the reorder's longest hold). ``hosts``: each line to the
    part of its host name (crc32), as nodes point at collectors: every part spans the whole run,
    stamped as it is sent."""
    lines = stream.read_bytes().splitlines(keepends=True)
    if how == "contiguous":
        size = -(-len(lines) // parts)
        chosen = [min(i // size, parts - 1) for i in range(len(lines))]
    else:
        chosen = []
        for line in lines:
            match = _HOST_5424.match(line) or _HOST_3164.match(line)
            chosen.append(zlib.crc32(match.group(2)) % parts if match else 0)
    out = []
    for k in range(parts):
        numbers = [i for i, c in enumerate(chosen) if c == k]
        path = work / f"part{k}.log"
        path.write_bytes(b"".join(lines[i] for i in numbers))
        renumbered = {n: marks[i] for n, i in enumerate(numbers) if i in marks}
        out.append((path, renumbered, len(numbers)))
    return out


def _summed(ports: list[int], name: str) -> float:
    """One metric summed over every analyzer and partition (0 when an analyzer cannot be read)."""
    pattern = re.compile(rf"^{name}\{{[^}}]*\}} (\S+)", re.M)
    total = 0.0
    for port in ports:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                total += sum(float(v) for v in pattern.findall(response.read().decode()))
        except OSError:
            pass
    return total


def _stored(ports: list[int]) -> int:
    total = 0
    for port in ports:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                total += sum(int(m) for m in STORED.findall(response.read().decode()))
        except OSError:  # busy: counted at the next poll
            return -1
    return total


_HOST_5424 = re.compile(rb"^(<\d+>1 \S+ )(\S+)( .*)$", re.S)
_HOST_3164 = re.compile(rb"^(<\d+>\w{3} [ \d]\d \d\d:\d\d:\d\d )(\S+)( .*)$", re.S)


def spread_hosts(stream: Path, hosts: int, block: int = 20) -> None:
    """Rename each line's host to one of ``hosts`` (``<host>-<k>``, k per block of lines): the
    corpus has four compute hosts, two of them writing nearly everything, where a cloud has
    thousands, and the partitions are keyed by host (and address, user...). Both sides of the
    run read the same rewritten stream."""
    out = []
    for i, line in enumerate(stream.read_bytes().splitlines(keepends=True)):
        match = _HOST_5424.match(line) or _HOST_3164.match(line)
        if match:
            line = b"%s%s-%d%s" % (match.group(1), match.group(2), (i // block) % hosts, match.group(3))
        out.append(line)
    stream.write_bytes(b"".join(out))


def _no_marks(folder: Path) -> Path:
    path = folder / "none.marks"
    path.write_text("[]")
    return path


def run_cluster(
    warm: Path | None,
    work: Path,
    stream: Path,
    lines: int,
    rate: int,
    marks: dict[int, str],
    collectors: int,
    analyzers: int,
    partitions: int,
    store: str,
    split: str = "contiguous",
) -> dict[str, Any]:
    folder = work / f"c{collectors}a{analyzers}"
    (folder / "rules").mkdir(parents=True)
    (folder / "rules" / "bench.yaml").write_text(RULE)
    cluster = "bench" + uuid.uuid4().hex[:8]
    common = (
        f"rules: {{builtin: true, paths: ['{folder / 'rules'}']}}\n"
        f"cluster: {{name: {cluster}, amqp_url: '{AMQP}', partitions: {partitions}}}\n"
    )
    hooks = Hooks()
    roles: list[Role] = []
    try:
        metrics = []
        for a in range(analyzers):
            port = _free_port()
            metrics.append(port)
            url = f"{folder / 'data'}" if store == "sqlite" else store
            mine = ",".join(str(p) for p in range(partitions) if p % analyzers == a)
            roles.append(
                Role(
                    folder,
                    f"analyzer{a}",
                    "analyzer",
                    prefer=mine,
                    config=(
                        f"hostname: benchan{a}\nstate_dir: {folder / f'an{a}'}\n"
                        f"store: {{url: '{url}'}}\n{common}"
                        f"sinks:\n  - {{type: webhook, name: hook, url: '{hooks.url}'}}\n"
                        f"throttle: {{max_per_minute: 1000000}}\n"
                        f"listen: {{metrics: '127.0.0.1:{port}', metrics_token: $env:SW_BENCH_TOKEN}}\n"
                    ),
                )
            )
        ports = []
        for c in range(collectors):
            port = _free_port()
            ports.append(port)
            roles.append(
                Role(
                    folder,
                    f"collector{c}",
                    "collector",
                    config=(
                        f"hostname: benchcoll{c}\nstate_dir: {folder / f'coll{c}'}\n{common}"
                        f"sources:\n  - {{type: syslog_tcp, name: tcp, listen: '127.0.0.1:{port}'}}\n"
                        "limits: {heartbeat_interval: 0}\n"
                    ),
                )
            )
        for role in roles:
            role.wait_ready()
        time.sleep(2.5)  # every analyzer also subscribed to the others' partitions (standby)
        # Warm-up: an analyzer opens a partition (its store, an engine built from the rules) at the
        # partition's first batch; serve builds its engine before it is ready. Not measured, as
        # serve's start is not.
        warmed = 0
        if warm is not None:
            warm_lines = sum(1 for _ in warm.open("rb"))
            for port in ports:
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.ingest",
                        "--send",
                        str(port),
                        str(warm),
                        "--rate",
                        "0",
                        "--marks",
                        str(_no_marks(folder)),
                        "--sent",
                        str(folder / "warm.sent"),
                    ],
                    cwd=Path(__file__).resolve().parent.parent,
                    check=True,
                )
            warmed = warm_lines * len(ports)
            if not _wait(lambda: _stored(metrics) >= warmed, 120, 0.2):
                logs = "".join(f"--- {r.name}\n{r.log.read_text()[-2000:]}" for r in roles)
                raise RuntimeError("the warm-up stream was not stored:\n" + logs)
            time.sleep(1.0)  # the warm-up's last commits and alerts settle
            hooks.received.clear()
        warm_checkpoint = _summed(metrics, "stackwatch_analyzer_checkpoint_cpu_seconds_total")
        warm_store = _summed(metrics, "stackwatch_analyzer_store_cpu_seconds_total")
        broker = _broker_pid()
        broker_start = _cpu(broker) if broker else 0.0
        for role in roles:
            if os.environ.get("SW_BENCH_PROFILE"):
                role.proc.send_signal(signal.SIGUSR1)  # the profile starts here (profile_role.py)
            role.cpu_start = _cpu(role.proc.pid)
        senders = []
        parts = _split(stream, collectors, marks, folder, split)
        for k, ((part, part_marks, size), port) in enumerate(zip(parts, ports, strict=True)):
            job = folder / f"part{k}.marks"
            job.write_text(json.dumps(sorted(part_marks)))
            senders.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.ingest",
                        "--send",
                        str(port),
                        str(part),
                        "--rate",
                        str(max(1, rate * size // lines) if rate else 0),  # its share of the rate
                        "--marks",
                        str(job),
                        "--sent",
                        str(folder / f"part{k}.sent"),
                    ],
                    cwd=Path(__file__).resolve().parent.parent,
                )
            )
        counted = [0]

        def complete() -> bool:
            counted[0] = max(counted[0], _stored(metrics) - warmed)
            return counted[0] >= lines

        done = _wait(complete, 120 + lines / 500, 0.1)
        finished = time.time()
        per_role = {role.name: role.figures() for role in roles}
        checkpoint_cpu = (
            _summed(metrics, "stackwatch_analyzer_checkpoint_cpu_seconds_total") - warm_checkpoint
        )
        store_cpu = _summed(metrics, "stackwatch_analyzer_store_cpu_seconds_total") - warm_store
        checkpoint_bytes = _summed(metrics, "stackwatch_analyzer_checkpoint_bytes")
        broker_cpu = round(_cpu(broker) - broker_start, 2) if broker else None
        for sender in senders:
            sender.wait(60)
        reports = [json.loads((folder / f"part{k}.sent").read_text()) for k in range(collectors)]
        start = min(r["start"] for r in reports)
        _wait(lambda: len(hooks.first_alert()) >= len(marks), 10, 0.05)
        first = hooks.first_alert()
        latencies = [
            first[address] - float(report["sent"][str(i)])
            for (_, part_marks, _), report in zip(parts, reports, strict=True)
            for i, address in part_marks.items()
            if address in first and str(i) in report["sent"]
        ]
        seconds = finished - start
        cpu = {
            kind: round(sum(f["cpu_seconds"] for n, f in per_role.items() if n.startswith(kind)), 2)
            for kind in ("collector", "analyzer")
        }
        busiest = {
            kind: max(f["cpu_seconds"] for n, f in per_role.items() if n.startswith(kind))
            for kind in ("collector", "analyzer")
        }
        return {
            "collectors": collectors,
            "analyzers": analyzers,
            "partitions": partitions,
            "store": store,
            "complete": bool(done),
            "stored": counted[0],
            "seconds": round(seconds, 3),
            "msgs_per_s": round(lines / seconds) if done else None,
            "roles": per_role,
            "cpu_seconds": cpu,
            "broker_cpu_seconds": broker_cpu,
            "cpu_us_per_event": {k: round(v / lines * 1e6, 1) for k, v in cpu.items()},
            "broker_cpu_us_per_event": round(broker_cpu / lines * 1e6, 1) if broker_cpu is not None else None,
            "busiest_events_per_cpu_s": {k: round(lines / v) if v > 0 else None for k, v in busiest.items()},
            "analyzer_checkpoint_us_per_event": round(checkpoint_cpu / lines * 1e6, 1),
            "analyzer_store_us_per_event": round(store_cpu / lines * 1e6, 1),
            "checkpoint_kib_all_partitions": round(checkpoint_bytes / 1024),
            "alerts_expected": len(marks),
            "alerts_received": len(latencies),
            "latency_p50_s": _percentile(latencies, 0.5),
            "latency_p99_s": _percentile(latencies, 0.99),
        }
    finally:
        for role in roles:
            _stop(role.proc)
        hooks.close()
        _delete(cluster, partitions)


def _delete(cluster: str, partitions: int) -> None:
    import asyncio

    import aio_pika

    from stackwatch.cluster.topology import Topology, delete

    async def main() -> None:
        connection = await aio_pika.connect(AMQP)
        async with connection:
            await delete(connection, Topology(cluster, partitions))

    asyncio.run(main())


def model(result: dict[str, Any]) -> dict[str, Any]:
    """Cores per 10k events/s and what fits in 2 cores, from the CPU per event measured."""
    out: dict[str, Any] = {}
    single = result.get("single", {})
    if single.get("cpu_seconds"):
        per = single["cpu_seconds"] / result["lines"]
        out["single_events_per_cpu_s"] = round(1 / per)
    base = None
    for key, shape in result.items():
        if not isinstance(shape, dict) or "cpu_us_per_event" not in shape:
            continue
        us = shape["cpu_us_per_event"]
        broker = shape.get("broker_cpu_us_per_event") or 0.0
        total_us = us["collector"] + us["analyzer"] + broker
        entry = {
            "cpu_us_per_event_all_roles": round(total_us, 1),
            "cores_per_10k": round(total_us * 1e-6 * 10_000, 2),
            "capacity_2_cores": round(2 / (total_us * 1e-6)),
        }
        ceiling = min(v for v in shape["busiest_events_per_cpu_s"].values() if v)
        entry["ceiling_busiest_process"] = ceiling
        if base is None:
            base = ceiling
        entry["parallel_speedup"] = round(ceiling / base, 3)
        if out.get("single_events_per_cpu_s"):
            entry["capacity_2_cores_vs_single"] = round(
                entry["capacity_2_cores"] / out["single_events_per_cpu_s"], 3
            )
        out[key] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=0, help="messages/s in all (0: flat out)")
    parser.add_argument("--shapes", default="1x1,2x2", help="collectors x analyzers, comma-separated")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--store", default="sqlite", help="sqlite (a folder per partition) or a postgresql:// URL"
    )
    parser.add_argument("--no-single", action="store_true")
    parser.add_argument("--hosts", type=int, default=0, help="spread the lines over this many host names")
    parser.add_argument("--split", choices=("contiguous", "hosts"), default="contiguous",
                        help="how the stream is split between collectors (see _split)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sw-cluster-"))
    try:
        stream = work / "stream.log"
        built = build_stream(args.corpus, args.lines, args.rate, stream)
        marks = built["marks"]
        warm = work / "warm.log"
        build_stream(args.corpus, 2000, 0, warm, seed=11)
        # without its bursts: they use the stream's addresses, whose first alerts the run times
        warm.write_bytes(
            b"".join(x for x in warm.read_bytes().splitlines(keepends=True) if b"203.0.113." not in x)
        )
        if args.hosts:
            spread_hosts(stream, args.hosts)
            spread_hosts(warm, args.hosts)
        result: dict[str, Any] = {
            "hosts": args.hosts or "corpus",
            "lines": args.lines,
            "rate": args.rate,
            "bursts": len(marks),
            "split": args.split,
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if not args.no_single:
            single = run_serve(work, stream, args.lines, args.rate, marks)
            single.pop("sent", None)
            result["single"] = single
        for shape in args.shapes.split(","):
            c, a = (int(x) for x in shape.split("x"))
            result[shape] = run_cluster(
                warm, work, stream, args.lines, args.rate, marks, c, a, args.partitions, args.store,
                args.split,
            )
        result["model"] = model(result)
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
