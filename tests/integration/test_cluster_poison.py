"""A poison batch: one every analyzer's commit refuses (real PostgreSQL refusing it, real
RabbitMQ). Each analyzer gave the partition up in turn and the partition was left with no
consumer, for good. Now an analyzer that gave a partition up subscribes again as a standby after
a back-off, batches delivered often are taken one at a time (so the good batches that shared
their turns are stored and acknowledged), and the broker dead-letters the poison batch after
``topology.DELIVERY_LIMIT`` deliveries (the quorum queue's ``x-delivery-limit``): kept in
``sw.<name>.dead``, said by ``cluster status``; the partition goes on."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from stackwatch.cluster.status import read_status, render_text
from stackwatch.cluster.topology import Topology
from stackwatch.cluster.wire import BatchBuilder, encode_batch
from stackwatch.core.event import Event
from stackwatch.store import open_store
from tests.cluster.analyzer_live import AMQP, depth, publish, running, settings, until
from tests.integration.test_cluster_commit_failure import REFUSE
from tests.pgdb import fresh_database

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def _batch(seq: int, request_id: str) -> bytes:
    builder = BatchBuilder()
    for n in range(2):
        builder.add(Event(time=NOW, received=NOW, host="h1", service="nova", message=f"b{seq} r{n}",
                          raw=f"b{seq} r{n}", ref=f"test:{seq}:{n}", request_id=request_id), (), True)
    return encode_batch(builder.build(collector="c1", seq=seq, epoch="e1", partition=0, sent=time.time()))


def _stored(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return sorted(str(r[0]) for r in conn.execute("SELECT request_id FROM stackwatch.events").fetchall())


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
                await publish(topology, 0, [_batch(1, "ok-1"), _batch(2, "refuse-me"), _batch(3, "ok-3")])
                await until(lambda: _stored(url).count("ok-3") == 2, 120, "the batch after the poison stored")
                for _ in range(600):
                    if await depth(topology.dead) == 1:
                        break
                    await asyncio.sleep(0.1)
                assert await depth(topology.dead) == 1, (  # the poison batch, kept
                    one.give_ups, two.give_ups, one.subscribed, two.subscribed, sorted(one.partitions),
                    sorted(two.partitions), await depth(topology.queue(0)), _stored(url))
                assert one.give_ups.get(0, 0) + two.give_ups.get(0, 0) >= 2
                # the partition still has a consumer: a new batch is stored
                await publish(topology, 0, [_batch(4, "ok-4")])
                await until(lambda: _stored(url).count("ok-4") == 2, 30, "a batch after the poison stored")
                status = await read_status(AMQP, topology, 0.5)
                assert status.dead_letters == 1
                assert any("dead-lettered" in problem for problem in status.problems), status.problems
                assert "dead letters: 1 batches" in render_text(status)

        asyncio.run(main())
        assert _stored(url) == ["ok-1", "ok-1", "ok-3", "ok-3", "ok-4", "ok-4"]
