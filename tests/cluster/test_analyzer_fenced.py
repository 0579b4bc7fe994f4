"""Fencing through a live analyzer (cluster/analyzer.py, store/fencing.py) on the real broker and
an embedded store: the analyzer owns the partition and commits a batch; then another analyzer's
claim (a standby that became active while this one was cut off) raises the partition's epoch.
The analyzer's next commit is refused and rolled back: it gives the partition up (its channel
closed, so the broker takes the batch back), subscribes again as a standby and, the broker
handing the partition back to it, opens it anew from the checkpoint and stores the batch then:
every event once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aio_pika

from stackwatch.cluster.analyzer import Analyzer
from stackwatch.cluster.topology import Topology, delete, routing_key
from stackwatch.cluster.wire import BatchBuilder, encode_batch
from stackwatch.config.settings import ClusterSettings, Settings, StoreSettings
from stackwatch.store import open_store
from stackwatch.testing import make_event
from tests.cluster.clustertools import AMQP, unique_cluster


def _batch(seq: int, count: int) -> bytes:
    builder = BatchBuilder()
    for n in range(count):
        builder.add(make_event(host="ctl1", service="keystone", message=f"batch {seq} event {n}",
                               origin="file:/var/log/keystone.log", ref=f"b{seq}:{n}"), ("no-rule",), True)
    return encode_batch(builder.build(collector="c1", seq=seq, epoch="run1", bucket=0, sent=time.time()))


async def _until(check, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _scenario(tmp_path: Path) -> None:
    cluster = unique_cluster()
    settings = Settings(store=StoreSettings(url=str(tmp_path / "data")), state_dir=str(tmp_path / "state"),
                        cluster=ClusterSettings(name=cluster, amqp_url=AMQP, partitions=1, buckets=4,
                                                member="a"))
    analyzer = Analyzer(settings)
    stop = asyncio.Event()
    running = asyncio.create_task(analyzer.run(stop))
    connection = await aio_pika.connect(AMQP)
    try:
        await _until(lambda: 0 in analyzer.partitions)  # the probe batches opened it
        assert analyzer.partitions[0].epoch == 1
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(Topology(cluster, 1).exchange, ensure=False)

        async def publish(body: bytes) -> None:
            await exchange.publish(aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                                   routing_key=routing_key(0))

        await publish(_batch(1, 5))
        await _until(lambda: analyzer.partitions[0].stored_events == 5 and not analyzer.partitions[0].unacked)
        # a standby elsewhere became the partition's owner: its claim
        other = open_store(tmp_path / "data" / "p000")
        assert other.claim_partition("p000") == 2
        other.close()
        await publish(_batch(2, 7))
        await _until(lambda: analyzer.fenced == 1)
        # given back to the broker, the batch comes to this analyzer again (its only subscriber)
        await _until(lambda: 0 in analyzer.partitions and analyzer.partitions[0].stored_events == 7)
        assert analyzer.partitions[0].epoch == 3
        assert analyzer.partitions[0].resumed  # from the checkpoint the first owner left
        assert analyzer.healthy()
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)
        await delete(connection, Topology(cluster, 1))
        await connection.close()
    with open_store(tmp_path / "data" / "p000", read_only=True) as store:
        assert store.counts().events == 12  # batch 1 once, batch 2 once (by the third epoch)


def test_a_fenced_analyzer_gives_the_partition_up_and_its_batch_is_stored_once(tmp_path: Path) -> None:
    asyncio.run(_scenario(tmp_path))
