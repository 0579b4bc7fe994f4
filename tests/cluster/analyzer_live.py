"""An analyzer run in this process on the real RabbitMQ, under a cluster name of its own."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stackwatch.cluster.analyzer import Analyzer
from stackwatch.cluster.topology import Topology, declare, delete
from stackwatch.cluster.wire import BatchBuilder, encode_batch
from stackwatch.config.settings import ClusterSettings, Settings, StoreSettings
from stackwatch.core.event import Event

AMQP = "amqp://guest:guest@127.0.0.1:5672/"
NOW = datetime.now(UTC)
# a trigger making a PostgreSQL store refuse the events whose request id is refuse-me
REFUSE = """
CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.request_id = 'refuse-me' THEN RAISE EXCEPTION 'refused by the test'; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_marked BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_marked();
"""


def settings(folder: Path, *, partitions: int = 1, buckets: int = 4, store: str | None = None) -> Settings:
    cluster = ClusterSettings(name=f"t{uuid.uuid4().hex[:10]}", amqp_url=AMQP, partitions=partitions,
                              buckets=buckets, member="an1")
    return Settings(store=StoreSettings(url=store or str(folder / "data")), state_dir=str(folder / "state"),
                    cluster=cluster, hostname="testhost")


@asynccontextmanager
async def running(config: Settings, *, keep_topology: bool = False, **kwargs: Any) -> AsyncIterator[Analyzer]:
    """The analyzer running (its topology declared first), stopped and the topology deleted after
    (``keep_topology``: neither, another analyzer of the cluster runs around this one)."""
    import aio_pika

    topology = Topology(config.cluster.name, config.cluster.partitions)
    connection = await aio_pika.connect(AMQP)
    if not keep_topology:
        await declare(connection, topology)
    config = replace(config, listen=replace(config.listen, metrics=None))
    analyzer = Analyzer(config, **kwargs)
    stop = asyncio.Event()
    task = asyncio.create_task(analyzer.run(stop))
    try:
        yield analyzer
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 30)
        finally:
            if not keep_topology:
                await delete(connection, topology)
            await connection.close()


async def publish(topology: Topology, partition: int, bodies: list[bytes]) -> None:
    import aio_pika

    connection = await aio_pika.connect(AMQP)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        for body in bodies:
            await channel.default_exchange.publish(
                aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=topology.queue(partition))


async def depth(queue: str) -> int:
    import aio_pika

    connection = await aio_pika.connect(AMQP)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)


async def until(check: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def nova_batch(seq: int, request_id: str | None = None, records: int = 3) -> bytes:
    """A wire batch of ``records`` nova records from collector c1 for partition 0, each carrying
    ``request_id`` (what a store trigger can refuse, and what ``stored_request_ids`` reads)."""
    builder = BatchBuilder()
    for n in range(records):
        builder.add(Event(time=NOW, received=NOW, host="h1", service="nova", message=f"b{seq} r{n}",
                          raw=f"b{seq} r{n}", ref=f"test:{seq}:{n}", request_id=request_id), (), True)
    return encode_batch(builder.build(collector="c1", seq=seq, epoch="e1", partition=0, sent=time.time()))


def stored_request_ids(url: str) -> list[str]:
    """The request ids of every event in the PostgreSQL store at ``url``, sorted."""
    import psycopg

    with psycopg.connect(url) as conn:
        return sorted(str(r[0]) for r in conn.execute("SELECT request_id FROM stackwatch.events").fetchall())
