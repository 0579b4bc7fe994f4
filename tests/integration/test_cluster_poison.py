"""A poison batch: one every analyzer's commit refuses (real PostgreSQL refusing it, real
RabbitMQ). Each analyzer gave the partition up in turn and the partition was left with no
consumer, for good. Now an analyzer that gave a partition up subscribes again as a standby after
a back-off, batches delivered often are taken one at a time (so the good batches that shared
their turns are stored and acknowledged), and the broker dead-letters the poison batch after
``topology.DELIVERY_LIMIT`` deliveries (the quorum queue's ``x-delivery-limit``): kept in
``sw.<name>.dead``, said by ``cluster status``; the partition goes on."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from stackwatch.cluster.status import read_status, render_text
from stackwatch.cluster.topology import Topology
from stackwatch.store import open_store
from tests.cluster.analyzer_live import (
    AMQP,
    REFUSE,
    depth,
    nova_batch,
    publish,
    running,
    settings,
    stored_request_ids,
    until,
)
from tests.pgdb import fresh_database

pytestmark = pytest.mark.integration



def test_a_batch_every_analyzer_refuses_is_dead_lettered_and_the_partition_goes_on(tmp_path: Path) -> None:
    with fresh_database() as url:
        open_store(url, writer="setup").close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET search_path TO stackwatch")
            conn.execute(REFUSE)
        first = settings(tmp_path / "a", store=url)
        second = replace(first, state_dir=str(tmp_path / "b"), cluster=replace(first.cluster, member="an2"))
        topology = Topology(first.cluster.name, 1)

        async def main() -> None:
            async with running(first) as one, running(second, keep_topology=True) as two:
                for analyzer in (one, two):
                    analyzer.resubscribe_delay, analyzer.resubscribe_max = 0.2, 0.4
                await until(lambda: 0 in one.subscribed and 0 in two.subscribed, 20, "both subscribed")
                await publish(topology, 0, [nova_batch(n, rid, records=2)
                                            for n, rid in ((1, "ok-1"), (2, "refuse-me"), (3, "ok-3"))])
                await until(lambda: stored_request_ids(url).count("ok-3") == 2, 120,
                            "the batch after the poison stored")
                for _ in range(600):
                    if await depth(topology.dead) == 1:
                        break
                    await asyncio.sleep(0.1)
                assert await depth(topology.dead) == 1, (  # the poison batch, kept
                    one.give_ups, two.give_ups, one.subscribed, two.subscribed, sorted(one.partitions),
                    sorted(two.partitions), await depth(topology.queue(0)), stored_request_ids(url))
                assert one.give_ups.get(0, 0) + two.give_ups.get(0, 0) >= 2
                # the partition still has a consumer: a new batch is stored
                await publish(topology, 0, [nova_batch(4, "ok-4", records=2)])
                await until(lambda: stored_request_ids(url).count("ok-4") == 2, 30,
                            "a batch after the poison stored")
                status = await read_status(AMQP, topology, 0.5)
                assert status.dead_letters == 1
                assert any("dead-lettered" in problem for problem in status.problems), status.problems
                assert "dead letters: 1 batches" in render_text(status)

        asyncio.run(main())
        assert stored_request_ids(url) == ["ok-1", "ok-1", "ok-3", "ok-3", "ok-4", "ok-4"]
