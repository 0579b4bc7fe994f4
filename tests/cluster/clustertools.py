"""Helpers for the cluster tests: a collector as a real process, a test consumer of the partition
queues, unique cluster names (deleted after each test)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from stackwatch.cluster.topology import Topology, delete
from stackwatch.cluster.wire import decode_batch
from stackwatch.core.event import Event
from tests.servetools import ServeProcess, wait_for

AMQP = "amqp://guest:guest@127.0.0.1:5672/"
SRC = str(Path(__file__).resolve().parents[2] / "src")


def unique_cluster() -> str:
    return "t" + uuid.uuid4().hex[:12]


def collector_config(folder: Path, cluster: str, sources: str, *, partitions: int = 4, buckets: int = 64,
                     hostname: str = "coll", extra: str = "", top: str = "",
                     batch_delay: str = "100ms") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = (f"hostname: {hostname}\nstate_dir: {folder / 'state'}\nrules: {{builtin: true}}\n"
            f"limits: {{heartbeat_interval: 0}}\n"
            f"cluster: {{name: {cluster}, amqp_url: 'amqp://guest@127.0.0.1:5672/', "
            f"partitions: {partitions}, buckets: {buckets}, member: {hostname}, "
            f"batch_delay: {batch_delay}{extra}}}\n"
            f"{top}sources:\n{sources}")
    path = folder / "collector.yaml"
    path.write_text(text)
    return path


THIS_TREE = (sys.executable, "-m", "stackwatch")
"""How the cluster tests run stackwatch: this tree's code (``SRC`` on the path), not the venv's."""


def this_tree(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment that runs this tree's code, with ``env`` added."""
    return {"PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {})}


class CollectorProcess(ServeProcess):
    """`python -m stackwatch serve --role collector` as a real child process (this tree's code)."""

    name = "the collector"

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        super().__init__(config, this_tree(env), options=("--role", "collector"), command=THIS_TREE)

    def start(self, timeout: float = 30.0) -> Self:
        return super().start(timeout)

    def stop(self, timeout: float = 30.0) -> int:
        return super().stop(timeout)


@dataclass
class Received:
    """What the test consumer read: (queue, bucket, event, rule ids, home) per item."""

    items: list[tuple[str, int, Event, tuple[str, ...], bool]] = field(default_factory=list)
    batches: list[tuple[str, str, str, int]] = field(default_factory=list)  # (queue, collector, epoch, seq)
    # (queue, collector, partition, watermark, items, sent) per batch, in arrival order
    shapes: list[tuple[str, str, int, float, int, float]] = field(default_factory=list)
    # (queue, watermark, the times of its copies) per batch, in arrival order
    times: list[tuple[str, float, list[float]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def homes(self, where: Callable[[Event], bool] = lambda e: True) -> list[Event]:
        with self.lock:
            return [event for _, _, event, _, home in self.items if home and where(event)]

    def copies(self) -> list[tuple[str, int, Event, tuple[str, ...], bool]]:
        with self.lock:
            return list(self.items)


class Consumer:
    """A test consumer of every partition queue of a cluster, in a thread with its own loop;
    acknowledges each batch after decoding it. ``close`` deletes the cluster's topology."""

    def __init__(self, cluster: str, partitions: int = 4) -> None:
        self.topology = Topology(cluster, partitions)
        self.received = Received()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.errors: list[BaseException] = []

    def __enter__(self) -> Consumer:
        self._thread.start()
        if not self._ready.wait(30):
            raise AssertionError(f"the test consumer did not start: {self.errors}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:  # reported by the test through self.errors
            self.errors.append(exc)
            self._ready.set()

    async def _main(self) -> None:
        import aio_pika

        from stackwatch.cluster.topology import declare

        self._stop = asyncio.Event()
        connection = await aio_pika.connect(AMQP)
        try:
            await declare(connection, self.topology)
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=50)
            for name in self.topology.queues:
                queue = await channel.get_queue(name)

                async def on(message: Any, name: str = name) -> None:
                    batch = decode_batch(message.body)
                    with self.received.lock:
                        self.received.batches.append((name, batch.collector, batch.epoch, batch.seq))
                        self.received.shapes.append((name, batch.collector, batch.partition, batch.watermark,
                                                     len(batch.items), batch.sent))
                        self.received.times.append(
                            (name, batch.watermark, [e.time.timestamp() for e, _, _ in batch.routed()]))
                        for event, rules, home in batch.routed():
                            self.received.items.append((name, batch.bucket, event, rules, home))
                    await message.ack()

                await queue.consume(on)
            self._ready.set()
            await self._stop.wait()
        finally:
            await delete(connection, self.topology)
            await connection.close()


def set_topology(topology: Topology, *, create: bool) -> None:
    """Declare (``create``) or delete a cluster's exchanges and queues on the test broker."""
    import aio_pika

    from stackwatch.cluster.topology import declare

    async def run() -> None:
        connection = await aio_pika.connect(AMQP)
        async with connection:
            await (declare(connection, topology) if create else delete(connection, topology))

    asyncio.run(run())


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    return wait_for(predicate, timeout, 0.1, what=what)


def markers(events: Iterator[Event] | list[Event], prefix: str) -> list[str]:
    """The unique markers (``<prefix>-<n>``) in the events' messages."""
    out = []
    for event in events:
        for word in event.raw.split():
            if word.startswith(prefix + "-"):
                out.append(word)
    return out


class TcpProxy:
    """A real TCP forwarder to RabbitMQ that the test can cut (every connection closed, new ones
    refused) and restore: the broker going away and coming back, for one client only."""

    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 5672)) -> None:
        import socket

        self.upstream = upstream
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.up = True
        self._sockets: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket

        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: Any, target: Any) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.close()

    def cut(self) -> None:
        import socket

        self.up = False
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.listener.close()


class AnalyzerProcess(ServeProcess):
    """`python -m stackwatch serve --role analyzer --prefer P` as a real child process (this
    tree's code), started at once unless ``started`` is False."""

    ready_mark = " ready: "

    def __init__(self, config: Path, prefer: str, name: str = "analyzer", data: str | None = None, *,
                 env: dict[str, str] | None = None, started: bool = True) -> None:
        options = ("--role", "analyzer", "--prefer", prefer, *(["--data", data] if data else []))
        super().__init__(config, this_tree(env), options=options, command=THIS_TREE)
        self.name = f"analyzer {name}"
        if started:
            self.start()

    def start(self, timeout: float = 60.0) -> Self:
        return super().start(timeout)

    def holds(self, partition: str) -> bool:
        return any(f"partition {partition}: active here" in line for line in list(self.stderr))

    def stop(self, timeout: float = 60.0) -> int:
        return super().stop(timeout)


def analyzer_config(folder: Path, cluster: str, member: str, store_url: str, *, partitions: int = 4,
                    buckets: int = 64) -> Path:
    """The configuration of one analyzer (its own member name: its own PostgreSQL writers)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{member}.yaml"
    path.write_text(
        f"hostname: mon\nstate_dir: '{folder / member}'\nrules: {{builtin: true}}\n"
        f"store: {{url: '{store_url}'}}\n"
        f"cluster: {{name: {cluster}, amqp_url: 'amqp://guest@127.0.0.1:5672/', partitions: {partitions}, "
        f"buckets: {buckets}, member: {member}}}\n"
        # the demo's records are months old: wall-clock ticks would judge the time-driven rules on
        # today's clock; the comparison with analyze is on the records' own time
        "limits: {tick_interval: 1h, heartbeat_interval: 0}\n")
    return path
