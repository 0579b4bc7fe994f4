"""Takeover time: an analyzer holding every partition is killed with SIGKILL and a standby
(``--prefer none``) takes them all (issue #17).

    python -m benchmarks.takeover_bench [--partitions 8] [--rounds 2] [--base SRC_DIR]

Per round, two real analyzer processes on the real broker (embedded stores, built-in rules): the
active one prefers every partition and opens them all (its start-up probe batches), the standby
subscribes to all; the active one is killed with SIGKILL and an idle batch sent to every
partition (a partition opens on its first batch); measured until the standby's log says it is
active on every partition: wall seconds and the standby's CPU seconds (utime + stime) in that
span. With ``--base`` (another tree's ``src``, e.g. ``git archive`` of the commit before) each
round runs the base code first and this tree's second, interleaved in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from tests.cluster.clustertools import AMQP, SRC, AnalyzerProcess, set_topology
from tests.servetools import wait_for

from stackwatch.cluster.topology import Topology
from stackwatch.cluster.wire import BatchBuilder, encode_batch

CLK = os.sysconf("SC_CLK_TCK")


def cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


async def _idle_batches(topology: Topology) -> None:
    import aio_pika

    connection = await aio_pika.connect(AMQP)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        for number, queue in enumerate(topology.queues):
            batch = BatchBuilder().build(collector="bench", seq=1, epoch=uuid.uuid4().hex, partition=number,
                                         sent=time.time(), watermark=time.time())
            await channel.default_exchange.publish(aio_pika.Message(encode_batch(batch)), routing_key=queue)


def one_round(src: str, partitions: int, folder: Path) -> tuple[float, float]:
    cluster = f"tb{uuid.uuid4().hex[:10]}"
    topology = Topology(cluster, partitions)
    config = folder / f"{cluster}.yaml"
    config.write_text(
        f"hostname: mon\nstate_dir: '{folder / cluster / 'state'}'\n"
        f"store: {{url: '{folder / cluster / 'data'}'}}\n"
        f"cluster:\n  name: {cluster}\n  amqp_url: amqp://guest@127.0.0.1:5672/\n"
        f"  password: $env:SW_AMQP_PASSWORD\n  partitions: {partitions}\n"
        "limits: {tick_interval: 1h}\n")
    env = {"SW_AMQP_PASSWORD": "guest", "PYTHONPATH": src}
    names = [f"p{n:03d}" for n in range(partitions)]
    set_topology(topology, create=True)
    processes: list[AnalyzerProcess] = []
    try:
        active = AnalyzerProcess(config, ",".join(map(str, range(partitions))), "active", env=env)
        processes.append(active)
        assert wait_for(lambda: all(active.holds(n) for n in names), 60, 0.05), active.log()
        standby = AnalyzerProcess(config, "none", "standby", env=env)
        processes.append(standby)
        time.sleep(3)  # subscribed to every partition (after STANDBY_DELAY)
        assert standby.proc is not None
        before = cpu(standby.proc.pid)
        active.kill()
        killed = time.monotonic()
        asyncio.run(_idle_batches(topology))
        assert wait_for(lambda: all(standby.holds(n) for n in names), 60, 0.02), standby.log()
        wall = time.monotonic() - killed
        used = cpu(standby.proc.pid) - before
        standby.stop()
        return wall, used
    finally:
        for process in processes:
            process.kill()
        set_topology(topology, create=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--base", help="another tree's src directory, run first in each round")
    args = parser.parse_args()
    variants = ([("base", args.base)] if args.base else []) + [("this", SRC)]
    results: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for name, src in variants:
                wall, used = one_round(src, args.partitions, Path(tmp))
                results[name].append((wall, used))
                print(f"round {round_ + 1} {name}: all {args.partitions} partitions taken after "
                      f"{wall:.2f} s wall, standby CPU {used:.2f} s", flush=True)
    for name, runs in results.items():
        print(f"{name}: wall median {statistics.median(w for w, _ in runs):.2f} s, "
              f"CPU median {statistics.median(c for _, c in runs):.2f} s over {len(runs)} rounds")


if __name__ == "__main__":
    main()
