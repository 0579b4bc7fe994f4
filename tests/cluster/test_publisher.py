"""The publisher across a lost connection (a real TCP forwarder cut between it and RabbitMQ):
every batch is confirmed in the end, and each partition receives a collector's batches so that
an analyzer skipping every batch at or before the last it took (a redelivery) misses none."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from stackwatch.cluster.publisher import Publisher
from stackwatch.cluster.topology import Topology
from stackwatch.cluster.wire import Batch, encode_batch
from tests.cluster.clustertools import Consumer, TcpProxy, unique_cluster

pytestmark = pytest.mark.integration


def test_batches_survive_a_cut_connection_in_order(tmp_path: object) -> None:
    cluster = unique_cluster()
    proxy = TcpProxy()
    total = 3000
    with Consumer(cluster) as consumer:
        async def run() -> Publisher:
            publisher = Publisher(f"amqp://guest:guest@127.0.0.1:{proxy.port}/", Topology(cluster, 4),
                                  reconnect_interval=0.3)
            await publisher.connect()
            tasks = []
            for seq in range(1, total + 1):
                body = encode_batch(Batch(collector="c1", seq=seq, epoch="e1", partition=seq % 4))
                sent = publisher.publish(body, seq % 4, message_id=f"c1:e1:{seq}")
                tasks.append(asyncio.create_task(sent))
                if seq % 100 == 0:
                    await asyncio.sleep(0.01)
                if seq == total // 3:
                    threading.Timer(0.0, proxy.cut).start()
                    threading.Timer(1.0, proxy.restore).start()
            await asyncio.wait_for(asyncio.gather(*tasks), 120)
            await publisher.close()
            return publisher

        publisher = asyncio.run(run())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len({s for *_, s in consumer.received.batches}) < total:
            time.sleep(0.1)
        batches = list(consumer.received.batches)
    proxy.close()
    assert publisher.failures >= 1  # the cut was noticed: batches were sent again
    assert {s for *_, s in batches} == set(range(1, total + 1))
    taken: set[int] = set()
    last: dict[str, int] = {}
    for queue, _, _, seq in batches:  # an analyzer's rule: a batch at or before the last is a redelivery
        if seq > last.get(queue, 0):
            last[queue] = seq
            taken.add(seq)
    assert taken == set(range(1, total + 1)), f"skipped: {sorted(set(range(1, total + 1)) - taken)[:10]}"
    assert not consumer.errors
