"""The analyzer role, as real processes on a real RabbitMQ: two analyzers and a standby consume
the partition queues; the demo's events, published in batches of routed copies while the
active analyzer of their partition is killed with SIGKILL, end stored exactly once and raise
the alerts `stackwatch analyze` raises over the same files, each exactly once (an attack whose
events straddle the kill is still caught: the standby resumed the windows from the checkpoint).

The publisher here is the test itself (wire.BatchBuilder straight to the partition queue,
with publisher confirms): routing events by rule keys is the collector's part, tested with it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from stackwatch.cluster.topology import Topology, declare, delete
from stackwatch.cluster.wire import BatchBuilder, encode_batch
from stackwatch.core.event import Event
from stackwatch.detect.loader import builtin_rules
from stackwatch.pipeline.reader import discover, read_event_batches
from stackwatch.respond.orphans import RULE_ID as ORPHANS
from stackwatch.scenario import demo_dataset
from stackwatch.store import open_store
from tests.servetools import wait_for

pytestmark = pytest.mark.integration

AMQP = "amqp://guest:guest@127.0.0.1:5672/"
PARTITIONS = 2
BATCH = 100
WALL_CLOCK = {"logging.silence", "monitor.heartbeat"}


class Analyzer:
    """`stackwatch serve --role analyzer` as a child process."""

    def __init__(self, config: Path, prefer: str, name: str) -> None:
        env = {**os.environ, "SW_AMQP_PASSWORD": "guest"}
        self.name = name
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stackwatch", "serve", "--config", str(config), "--role", "analyzer",
             "--prefer", prefer], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(30):
            self.kill()
            raise AssertionError(f"analyzer {name} not ready:\n{self.log()}")

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            if " ready: " in line:
                self.ready.set()

    def holds(self, partition: str) -> bool:
        return any(f"partition {partition}: active here" in line for line in self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def log(self) -> str:
        return "".join(self.lines)


def _batches(events: list[Event], rules: tuple[str, ...]) -> list[bytes]:
    out = []
    for seq, start in enumerate(range(0, len(events), BATCH), 1):
        builder = BatchBuilder()
        for event in events[start:start + BATCH]:
            builder.add(event, rules, True)
        batch = builder.build(collector="test", seq=seq, epoch="run1", bucket=0, sent=time.time())
        out.append(encode_batch(batch))
    return out


async def _publish(queue: str, bodies: list[bytes], pause: float = 0.0) -> None:
    import aio_pika

    connection = await aio_pika.connect(AMQP)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        for body in bodies:
            await channel.default_exchange.publish(
                aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=queue)
            if pause:
                await asyncio.sleep(pause)


async def _topology(topology: Topology, create: bool) -> None:
    import aio_pika

    connection = await aio_pika.connect(AMQP)
    async with connection:
        if create:
            await declare(connection, topology)
        else:
            await delete(connection, topology)


def _stored(data: Path) -> int:
    try:
        with open_store(data / "p000", read_only=True) as store:
            return store.counts().events
    except Exception:  # not created yet, or being written: asked again
        return 0


def _key(alert: dict) -> tuple:
    details = alert.get("details") or {}
    return (alert["rule"], alert["key"], alert["category"], alert["severity"], details.get("events"),
            alert.get("count", 1), alert["time"])


def _evidence(alerts: list[dict]) -> dict[tuple[str, str], set[str]]:
    return {(a["rule"], a["key"]): {e["ref"] for e in a["evidence"]} for a in alerts}


def _kill_point(events: list[Event], alerts: list[dict], batches: int) -> int:
    """The batch count to publish before the kill: the middle of the widest span of records one
    alert's evidence covers (so the kill falls inside that attack), kept off both ends."""
    index = {event.ref: n for n, event in enumerate(events)}
    spans = [sorted(index[ref] for ref in refs if ref in index) for refs in _evidence(alerts).values()]
    low, high = max(((s[0], s[-1]) for s in spans if s), key=lambda span: span[1] - span[0])
    return min(max((low + high) // 2 // BATCH, 2), batches - 2)


def test_a_standby_takes_over_a_killed_analyzer_and_every_alert_is_raised_once(tmp_path: Path) -> None:
    logs = demo_dataset(tmp_path / "demo", seed=7)
    events = [e for batch in read_event_batches(discover([str(logs)])) for e in batch]
    rules = (*(rule.id for rule in builtin_rules().rules), ORPHANS)
    cluster = f"t{uuid.uuid4().hex[:10]}"
    topology = Topology(cluster, PARTITIONS)
    data = tmp_path / "data"
    config = tmp_path / "stackwatch.yaml"
    config.write_text(
        f"hostname: mon\nstate_dir: '{tmp_path / 'state'}'\nstore: {{url: '{data}'}}\n"
        f"cluster:\n  name: {cluster}\n  amqp_url: amqp://guest@127.0.0.1:5672/\n"
        f"  password: $env:SW_AMQP_PASSWORD\n  partitions: {PARTITIONS}\n"
        # the demo's records are months old: wall-clock ticks (serve's, an analyzer's) would judge
        # the time-driven rules on today's clock; this compares the records' own time with analyze
        "limits: {tick_interval: 1h}\n")
    done = subprocess.run([sys.executable, "-m", "stackwatch", "analyze", str(logs), "--config", str(config),
                           "--data", str(tmp_path / "analyzed"), "--format", "json"],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "SW_AMQP_PASSWORD": "guest"})
    assert done.returncode == 0, done.stderr
    from_analyze = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    asyncio.run(_topology(topology, True))
    analyzers: list[Analyzer] = []
    try:
        first = Analyzer(config, "0", "a")
        analyzers.append(first)
        analyzers.append(Analyzer(config, "1", "b"))
        analyzers.append(Analyzer(config, "none", "standby"))
        time.sleep(3)  # every analyzer subscribed to every partition (standbys after their delay)
        bodies = _batches(events, rules)
        # the kill falls inside an attack: after the batch in the middle of the widest evidence
        # span analyze found (a fixed half missed every attack once commits waited for the
        # collectors' time: the analyzer had committed exactly the first half when it died)
        half = _kill_point(events, from_analyze, len(bodies))
        asyncio.run(_publish(topology.queue(0), bodies[:half]))
        assert wait_for(lambda: first.holds("p000"), 20), first.log()
        assert wait_for(lambda: _stored(data) > 0, 30), first.log()  # windows open, checkpointed
        rest = _publish(topology.queue(0), bodies[half:], 0.01)
        publisher = threading.Thread(target=asyncio.run, args=(rest,))
        publisher.start()  # under load: batches keep arriving while the active analyzer dies
        time.sleep(0.05)
        first.kill()
        killed = time.monotonic()
        at_kill = _stored(data)
        took = wait_for(lambda: next((a for a in analyzers[1:] if a.holds("p000")), None), 10, 0.05)
        assert took, "a standby owns the partition within 10 s:\n" + "".join(a.log() for a in analyzers)
        taken_after = time.monotonic() - killed
        publisher.join(60)
        assert wait_for(lambda: _stored(data) >= len(events), 120, 0.5), \
            f"{_stored(data)} of {len(events)} stored"
        time.sleep(4)  # the idle partition finishes (held correlation groups, last tick) and commits
        for analyzer in analyzers[1:]:
            assert analyzer.stop() == 0, analyzer.log()
    finally:
        for analyzer in analyzers:
            analyzer.kill()
        asyncio.run(_topology(topology, False))

    with open_store(data / "p000", read_only=True) as store:
        assert store.counts().events == len(events), "every acknowledged record stored, none twice"
        refs = Counter(s.event.ref for s in store.get_events(list(range(1, len(events) + 1))))
        from_cluster = [json.loads(msgspec.json.encode(s.alert)) for s in store.alerts()]
    assert max(refs.values()) == 1 and len(refs) == len(events)
    print(f"takeover after {taken_after:.2f}s")
    assert from_analyze
    cluster_keys = [(a["rule"], a["key"]) for a in from_cluster]
    assert len(cluster_keys) == len(set(cluster_keys)), "no alert raised twice"
    expected = sorted(_key(a) for a in from_analyze if a["category"] not in WALL_CLOCK)
    got = sorted(_key(a) for a in from_cluster if a["category"] not in WALL_CLOCK)
    assert got == expected, (f"only analyze: {sorted(set(expected) - set(got))}\n"
                             f"only the cluster: {sorted(set(got) - set(expected))}")
    # The engine keeps 10 evidence records per alert, refreshing the last; the store keeps every
    # record an upsert carried (analyze upserts once at the end, an analyzer after every commit).
    assert 0 < at_kill < len(events), "killed under load, half way"
    before = {event.ref for event in events[:at_kill]}
    straddling = [ident for ident, refs in _evidence(from_analyze).items()
                  if refs & before and refs - before]
    assert straddling, "an attack whose records straddle the kill"
    stored_evidence = _evidence(from_cluster)
    for ident, refs in _evidence(from_analyze).items():
        assert refs <= stored_evidence[ident], ident
