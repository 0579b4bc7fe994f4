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
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from stackwatch.cluster.topology import Topology
from stackwatch.cluster.wire import BatchBuilder, encode_batch
from stackwatch.core.event import Event
from stackwatch.detect.loader import builtin_rules
from stackwatch.pipeline.reader import discover, read_event_batches
from stackwatch.respond.orphans import RULE_ID as ORPHANS
from stackwatch.scenario import demo_dataset
from stackwatch.store import open_store
from tests.cluster.clustertools import AMQP, AnalyzerProcess, set_topology
from tests.integration.cluster_pg import WALL_CLOCK, alert_key, analyze_alerts, stored_count
from tests.servetools import wait_for

pytestmark = pytest.mark.integration

ENV = {"SW_AMQP_PASSWORD": "guest"}  # the configuration reads the broker's password from it
PARTITIONS = 2
BATCH = 100


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


def _evidence(alerts: list[dict]) -> dict[tuple[str, str], set[str]]:
    return {(a["rule"], a["key"]): {e["ref"] for e in a["evidence"]} for a in alerts}


def _kill_point(events: list[Event], alerts: list[dict], batches: int) -> tuple[int, int]:
    """The batch count to publish before the kill: the middle of the widest span of records one
    alert's evidence covers (so the kill falls inside that attack), kept off both ends; and the
    span's first record, which must be committed before the kill."""
    index = {event.ref: n for n, event in enumerate(events)}
    spans = [sorted(index[ref] for ref in refs if ref in index) for refs in _evidence(alerts).values()]
    low, high = max(((s[0], s[-1]) for s in spans if s), key=lambda span: span[1] - span[0])
    return min(max((low + high) // 2 // BATCH, 2), batches - 2), low


def test_a_standby_takes_over_a_killed_analyzer_and_every_alert_is_raised_once(tmp_path: Path) -> None:
    logs = demo_dataset(tmp_path / "demo", seed=7)
    events = [e for batch in read_event_batches(discover([str(logs)])) for e in batch]
    rules = (*(rule.id for rule in builtin_rules().rules), ORPHANS)
    cluster = f"t{uuid.uuid4().hex[:10]}"
    topology = Topology(cluster, PARTITIONS)
    data = tmp_path / "data"
    store = str(data / "p000")  # the partition's embedded store
    config = tmp_path / "stackwatch.yaml"
    config.write_text(
        f"hostname: mon\nstate_dir: '{tmp_path / 'state'}'\nstore: {{url: '{data}'}}\n"
        f"cluster:\n  name: {cluster}\n  amqp_url: amqp://guest@127.0.0.1:5672/\n"
        f"  password: $env:SW_AMQP_PASSWORD\n  partitions: {PARTITIONS}\n"
        # the demo's records are months old: wall-clock ticks (serve's, an analyzer's) would judge
        # the time-driven rules on today's clock; this compares the records' own time with analyze
        "limits: {tick_interval: 1h}\n")
    from_analyze = analyze_alerts(logs, config, tmp_path / "analyzed", ENV)

    set_topology(topology, create=True)
    analyzers: list[AnalyzerProcess] = []
    try:
        first = AnalyzerProcess(config, "0", "a", env=ENV)
        analyzers.append(first)
        analyzers.append(AnalyzerProcess(config, "1", "b", env=ENV))
        analyzers.append(AnalyzerProcess(config, "none", "standby", env=ENV))
        time.sleep(3)  # every analyzer subscribed to every partition (standbys after their delay)
        bodies = _batches(events, rules)
        # the kill falls inside an attack: after the batch in the middle of the widest evidence
        # span analyze found (a fixed half missed every attack once commits waited for the
        # collectors' time: the analyzer had committed exactly the first half when it died)
        half, attack_start = _kill_point(events, from_analyze, len(bodies))
        asyncio.run(_publish(topology.queue(0), bodies[:half]))
        assert wait_for(lambda: first.holds("p000"), 20), first.log()
        # windows open and checkpointed past the attack's first record (commits wait for the
        # publishers' time and a loaded machine commits late: killed earlier, nothing straddles)
        assert wait_for(lambda: stored_count(store) > attack_start, 60, 0.1), first.log()
        rest = _publish(topology.queue(0), bodies[half:], 0.01)
        publisher = threading.Thread(target=asyncio.run, args=(rest,))
        publisher.start()  # under load: batches keep arriving while the active analyzer dies
        time.sleep(0.05)
        first.kill()
        killed = time.monotonic()
        at_kill = stored_count(store)
        took = wait_for(lambda: next((a for a in analyzers[1:] if a.holds("p000")), None), 10, 0.05)
        assert took, "a standby owns the partition within 10 s:\n" + "".join(a.log() for a in analyzers)
        taken_after = time.monotonic() - killed
        publisher.join(60)
        assert wait_for(lambda: stored_count(store) >= len(events), 120, 0.5), \
            f"{stored_count(store)} of {len(events)} stored"
        time.sleep(4)  # the idle partition finishes (held correlation groups, last tick) and commits
        for analyzer in analyzers[1:]:
            assert analyzer.stop() == 0, analyzer.log()
    finally:
        for analyzer in analyzers:
            analyzer.kill()
        set_topology(topology, create=False)

    with open_store(data / "p000", read_only=True) as store:
        assert store.counts().events == len(events), "every acknowledged record stored, none twice"
        refs = Counter(s.event.ref for s in store.get_events(list(range(1, len(events) + 1))))
        from_cluster = [json.loads(msgspec.json.encode(s.alert)) for s in store.alerts()]
    assert max(refs.values()) == 1 and len(refs) == len(events)
    print(f"takeover after {taken_after:.2f}s")
    assert from_analyze
    cluster_keys = [(a["rule"], a["key"]) for a in from_cluster]
    assert len(cluster_keys) == len(set(cluster_keys)), "no alert raised twice"
    expected = sorted(alert_key(a) for a in from_analyze if a["category"] not in WALL_CLOCK)
    got = sorted(alert_key(a) for a in from_cluster if a["category"] not in WALL_CLOCK)
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
