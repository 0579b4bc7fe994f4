"""The cluster topology on the real RabbitMQ: idempotent declaration, quorum queues with single
active consumer, a batch published to a partition reaching that partition's queue only, every
bucket mapped to exactly one partition (equal shares, few moved when a partition is added), and
the consistent-hash exchange of older collectors still routing each bucket to one partition."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import pytest

from stackwatch.cluster.topology import Topology, declare, delete, depths, partition_map, routing_key

AMQP = "amqp://guest:guest@127.0.0.1:5672/"


def test_names_are_checked() -> None:
    topology = Topology("demo", 3)
    assert topology.queues == ["sw.demo.p000", "sw.demo.p001", "sw.demo.p002"]
    assert topology.partition_of("sw.demo.p002") == 2
    with pytest.raises(ValueError):
        topology.partition_of("sw.other.p001")
    with pytest.raises(ValueError):
        Topology("bad name", 3)
    with pytest.raises(ValueError):
        Topology("demo", 0)


@pytest.mark.parametrize("buckets", [1, 7, 64, 256, 4096])
def test_partition_map_gives_equal_shares_and_moves_only_the_new_partitions_share(buckets: int) -> None:
    previous = None
    for partitions in range(1, 41):
        mapping = partition_map(buckets, partitions)
        assert len(mapping) == buckets and set(mapping) <= set(range(partitions))
        shares = [mapping.count(p) for p in range(partitions)]
        assert max(shares) - min(shares) <= 1, (partitions, shares)
        if previous is not None:  # a bucket either keeps its partition or moves to the new one
            moved = [b for b in range(buckets) if mapping[b] != previous[b]]
            assert all(mapping[b] == partitions - 1 for b in moved)
            assert len(moved) == buckets // partitions
        previous = mapping
    assert partition_map(256, 8) == partition_map(256, 8)  # the same on every member: no randomness
    with pytest.raises(ValueError):
        partition_map(256, 0)


async def _run_direct() -> None:
    connection = await aio_pika.connect(AMQP)
    topology = Topology("t" + uuid.uuid4().hex[:10], 3)
    try:
        await declare(connection, topology)
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(topology.direct)
        for number, name in enumerate(topology.queues):
            for _ in range(number + 1):
                await exchange.publish(aio_pika.Message(name.encode()), routing_key=name, mandatory=True)
        with pytest.raises(aio_pika.exceptions.DeliveryError):  # no such partition: returned, not lost
            await exchange.publish(aio_pika.Message(b"x"), routing_key=f"{topology.prefix}.p999",
                                   mandatory=True)
        counts = await depths(connection, topology)
        assert [counts[name] for name in topology.queues] == [1, 2, 3]
    finally:
        await delete(connection, topology)
        await connection.close()


def test_batches_published_to_a_partition_reach_its_queue_only() -> None:
    asyncio.run(_run_direct())


async def _run() -> None:
    connection = await aio_pika.connect(AMQP)
    topology = Topology("t" + uuid.uuid4().hex[:10], 4)
    try:
        assert await declare(connection, topology) is True  # RabbitMQ 3.10 has quorum queues
        assert await declare(connection, topology) is True  # idempotent
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(topology.exchange)
        for _ in range(3):
            for bucket in range(32):
                await exchange.publish(aio_pika.Message(f"{bucket}".encode()),
                                       routing_key=routing_key(bucket), mandatory=True)
        counts = await depths(connection, topology)
        assert sum(counts.values()) == 96
        seen: dict[int, set[str]] = {}
        reader = await connection.channel()
        for name in topology.queues:  # basic.get is refused on single-active-consumer quorum queues
            queue = await reader.get_queue(name)
            async with queue.iterator() as messages:
                for _ in range(counts[name]):
                    message = await anext(messages)
                    await message.ack()
                    seen.setdefault(int(message.body), set()).add(name)
        await reader.close()
        assert sorted(seen) == list(range(32))
        assert all(len(queues) == 1 for queues in seen.values())  # a bucket lands in one partition
        assert len({q for queues in seen.values() for q in queues}) >= 2  # and buckets are spread
        await asyncio.sleep(0.2)
        assert set((await depths(connection, topology)).values()) == {0}
        # single active consumer: the second consumer of a partition gets nothing while the first lives
        await exchange.publish(aio_pika.Message(b"x"), routing_key=routing_key(0))
        got: list[str] = []
        ch1, ch2 = await connection.channel(), await connection.channel()
        target = next(iter(seen[0]))
        q1, q2 = await ch1.get_queue(target), await ch2.get_queue(target)

        async def first(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            got.append("first")
            await message.ack()

        async def second(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            got.append("second")
            await message.ack()

        await q1.consume(first)
        await q2.consume(second)
        for _ in range(50):
            if got:
                break
            await asyncio.sleep(0.05)
        assert got == ["first"]
    finally:
        await delete(connection, topology)
        await connection.close()


def test_topology_on_rabbitmq() -> None:
    asyncio.run(_run())
