"""``cluster status`` reads beats from the control exchange, where anything allowed to publish
there can put a message: a beat of the wrong shape is ignored, the status is still read (real
RabbitMQ)."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from stackwatch.cluster.membership import Beacon, beat_key
from stackwatch.cluster.status import read_status
from stackwatch.cluster.topology import Topology, declare, delete
from tests.cluster.clustertools import unique_cluster

pytestmark = pytest.mark.integration

AMQP = "amqp://guest:guest@127.0.0.1:5672/"

BAD_BEATS = [
    {"active": ["zero"]},  # int() of it raised in combine
    {"active": [0], "lag": ["not", "a", "mapping"]},  # .get on a list raised
    {"active": [0], "lag": {"0": 5}},  # .get on a number raised
    {"standby": "0"},  # a string iterated character by character
    {"member": "evil\x1b[2Jname"},  # terminal control characters in `cluster status`'s output
]


async def _status_with_bad_beats(topology: Topology) -> object:
    import aio_pika

    connection = await aio_pika.connect(AMQP)
    try:
        await declare(connection, topology)
        good = Beacon(AMQP, topology, "analyzer", "good", lambda: {"active": [0], "standby": [1],
                                                                    "lag": {"0": {"commit": 0.5}}},
                      interval=0.2)
        stop = asyncio.Event()
        beating = asyncio.create_task(good.run(stop))
        channel = await connection.channel()
        exchange = await channel.get_exchange(topology.control, ensure=False)

        async def publish_bad() -> None:
            for _ in range(3):
                await asyncio.sleep(0.2)
                for n, extra in enumerate(BAD_BEATS):
                    body = {"role": "analyzer", "member": f"bad{n}", "sent": 1e10, **extra}
                    await exchange.publish(aio_pika.Message(orjson.dumps(body)),
                                           routing_key=beat_key("analyzer", f"bad{n}"))

        status, _ = await asyncio.gather(read_status(AMQP, topology, 1.0), publish_bad())
        stop.set()
        await beating
        return status
    finally:
        await delete(connection, topology)
        await connection.close()


def test_a_malformed_beat_is_ignored_and_the_status_still_read() -> None:
    topology = Topology(unique_cluster(), 2)
    status = asyncio.run(_status_with_bad_beats(topology))
    assert [a["member"] for a in status.analyzers] == ["good"]  # type: ignore[attr-defined]
    owner = status.partitions[0]  # type: ignore[attr-defined]
    assert owner.owner == "good" and owner.commit_lag == 0.5
    assert status.partitions[1].standbys == ["good"]  # type: ignore[attr-defined]
