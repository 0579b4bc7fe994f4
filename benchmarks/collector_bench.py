"""The collector role's TCP ingest: ``serve --role collector`` publishing to RabbitMQ, beside
``serve --role all`` (the single process, parsing, detecting and storing), same stream, same run.

    python -m benchmarks.collector_bench CORPUS_DIR [--lines N] [--rate 0]

The stream is ``benchmarks.ingest``'s (the corpus' syslog lines re-stamped, scattered sshd
failures and bursts). The collector (built-in rules for routing, one syslog_tcp source) is timed
until a consumer in this process has read every event's home copy from the partition queues
(it decodes only the items' envelopes, not the events); ``serve`` until /metrics counts every
event committed. Prints one JSON object: msgs/s and CPU seconds of each server, the ratio
collector / single process, and the collector's copies per event.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.ingest import _drive, _free_port, _stop, _wait, build_stream, run_serve

SRC = str(Path(__file__).resolve().parent.parent / "src")


class _Item(msgspec.Struct, array_like=True):
    event: msgspec.Raw
    rules: int
    home: bool
    raw: msgspec.Raw | None = None


class _Batch(msgspec.Struct):
    items: list[_Item] = msgspec.field(default_factory=list)


class _Counter:
    """Consumes every partition queue in a thread, counting home copies and copies."""

    def __init__(self, cluster: str, partitions: int) -> None:
        self.cluster, self.partitions = cluster, partitions
        self.homes = self.copies = self.batches = 0
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: self._loop.run_until_complete(self._main()),
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the consumer did not start")

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    async def _main(self) -> None:
        import aio_pika

        from stackwatch.cluster.topology import Topology, declare, delete

        topology = Topology(self.cluster, self.partitions)
        decoder = msgspec.msgpack.Decoder(_Batch)
        self._stop = asyncio.Event()
        connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
        try:
            await declare(connection, topology)
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=100)
            for name in topology.queues:
                queue = await channel.get_queue(name)

                async def on(message: Any) -> None:
                    batch = decoder.decode(message.body)
                    self.batches += 1
                    self.copies += len(batch.items)
                    self.homes += sum(1 for item in batch.items if item.home)
                    await message.ack()

                await queue.consume(on)
            self._ready.set()
            await self._stop.wait()
        finally:
            await delete(connection, topology)
            await connection.close()


def run_collector(work: Path, stream: Path, lines: int, rate: int, partitions: int = 4) -> dict[str, Any]:
    port, folder, cluster = _free_port(), work / "collector", "bench" + uuid.uuid4().hex[:8]
    folder.mkdir(parents=True)
    config = folder / "collector.yaml"
    config.write_text(
        f"hostname: benchcoll\nstate_dir: {folder / 'state'}\nrules: {{builtin: true}}\n"
        f"sources:\n  - {{type: syslog_tcp, name: tcp, listen: '127.0.0.1:{port}'}}\n"
        f"cluster: {{name: {cluster}, amqp_url: 'amqp://guest@127.0.0.1:5672/', partitions: {partitions}}}\n"
        "limits: {heartbeat_interval: 0}\n")
    counter = _Counter(cluster, partitions)
    counter.start()
    log = folder / "collector.log"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with log.open("wb") as err:
        command = [sys.executable, "-m", "stackwatch", "serve", "--role", "collector", "-c", str(config)]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        if not _wait(lambda: b"ready:" in log.read_bytes() or proc.poll() is not None, 60, 0.05) \
                or proc.poll() is not None:
            raise RuntimeError("the collector did not start:\n" + log.read_text()[-3000:])
        figures = _drive(work / "collector.sent", proc.pid, port, stream, lines, rate, {},
                         lambda: counter.homes >= lines, 0.05)
        figures.pop("sent", None)
        figures.update({"homes": counter.homes, "copies": counter.copies, "batches": counter.batches,
                        "copies_per_event": round(counter.copies / max(counter.homes, 1), 3),
                        "events_per_batch": round(counter.copies / max(counter.batches, 1), 1)})
    finally:
        _stop(proc)
        counter.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sw-collector-"))
    stream = work / "stream.log"
    built = build_stream(args.corpus, args.lines, args.rate, stream)
    result: dict[str, Any] = {"lines": args.lines, "rate": args.rate,
                              "collector": run_collector(work, stream, args.lines, args.rate)}
    single = run_serve(work, stream, args.lines, args.rate, built["marks"])
    single.pop("sent", None)
    result["serve_all"] = single
    ours, theirs = result["collector"].get("msgs_per_s"), single.get("msgs_per_s")
    if ours and theirs:
        result["ratio_collector_to_single"] = round(ours / theirs, 3)
    result["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
