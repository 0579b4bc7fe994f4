"""A partition whose commit the store refuses (real PostgreSQL refusing a batch, real RabbitMQ):
the analyzer does not retry it forever while saying ok. It gives the partition up, says so in
the log, /healthz and /metrics, acknowledges nothing it did not commit, and a standby takes the
partition over and stores every batch once the store takes them again. Transient errors (the
database away) are told from permanent ones (commit_errors.transient)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path

import orjson
import psycopg
import pytest

from stackwatch.cluster.analyzer_http import AnalyzerHTTP, render_analyzer_metrics
from stackwatch.cluster.commit_errors import transient
from stackwatch.cluster.topology import Topology
from stackwatch.config.schema import Address
from stackwatch.core.errors import StoreError
from stackwatch.store import open_store
from tests.cluster.analyzer_live import (
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


def test_a_refused_commit_gives_the_partition_up_to_a_standby(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="stackwatch.cluster.analyzer")
    with fresh_database() as url:
        open_store(url, writer="setup").close()  # the schema, then a trigger refusing marked rows
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET search_path TO stackwatch")
            conn.execute(REFUSE)
        first = settings(tmp_path / "a", store=url)
        topology = Topology(first.cluster.name, 1)

        async def main() -> None:
            async with running(first) as analyzer:
                await publish(topology, 0, [nova_batch(1)])
                await until(lambda: 0 in analyzer.partitions and analyzer.partitions[0].stored_events == 3,
                            20, "the first batch stored")
                await publish(topology, 0, [nova_batch(2, "refuse-me")])
                await until(lambda: 0 in analyzer.given_up, 20, "the partition given up")
                assert 0 not in analyzer.partitions and "refused by the test" in analyzer.given_up[0]
                assert not analyzer.healthy()
                healthy, body = AnalyzerHTTP(analyzer, Address("127.0.0.1", 0), "t").health()
                assert not healthy and orjson.loads(body)["status"] == "partitions given up"
                assert "refused by the test" in orjson.loads(body)["given_up"]["0"]
                text = render_analyzer_metrics(analyzer)
                assert 'stackwatch_analyzer_partition_given_up{member="an1",partition="0"' in text
                # nothing of the refused batch acknowledged: back in the queue for a standby
                for _ in range(100):
                    if await depth(topology.queue(0)) == 1:
                        break
                    await asyncio.sleep(0.1)
                assert await depth(topology.queue(0)) == 1
                with psycopg.connect(url, autocommit=True) as conn:  # the store takes it again
                    conn.execute("DROP TRIGGER refuse_marked ON stackwatch.events")
                second = replace(first, state_dir=str(tmp_path / "b"),
                                 cluster=replace(first.cluster, member="an2"))
                async with running(second, keep_topology=True) as standby:
                    await until(lambda: 0 in standby.partitions and standby.partitions[0].stored_events == 3,
                                30, "the standby storing the refused batch")
                    assert standby.healthy()

        asyncio.run(main())
        assert stored_request_ids(url) == ["", "", "", "refuse-me", "refuse-me", "refuse-me"]
    assert any("partition p000: given up" in r.getMessage() and "refused by the test" in r.getMessage()
               for r in caplog.records)


def test_a_database_away_past_the_stall_limit_gives_the_partition_up(tmp_path: Path) -> None:
    from tests.pgserver import private_server

    with private_server() as server:
        config = settings(tmp_path / "a", store=server.url)
        topology = Topology(config.cluster.name, 1)

        async def main() -> None:
            async with running(config) as analyzer:
                analyzer.stall_limit = 3.0
                await publish(topology, 0, [nova_batch(1)])
                await until(lambda: 0 in analyzer.partitions and analyzer.partitions[0].stored_events == 3,
                            20, "the first batch stored")
                partition = analyzer.partitions[0]
                await asyncio.to_thread(server.stop)
                await publish(topology, 0, [nova_batch(2)])
                await until(lambda: partition.commit_failures >= 1, 20, "a failed commit")
                assert analyzer.healthy() and 0 in analyzer.partitions  # retried while within the limit
                await until(lambda: 0 in analyzer.given_up, 40, "the partition given up")
                assert "failing for" in analyzer.given_up[0]
                await asyncio.to_thread(server.start)
                assert await depth(topology.queue(0)) == 1  # not acknowledged: the standby's

        asyncio.run(main())


def test_transient_and_permanent_errors_are_told_apart() -> None:
    with pytest.raises(psycopg.OperationalError) as away:  # nothing listens there
        psycopg.connect("postgresql://postgres@127.0.0.1:1/postgres", connect_timeout=2)
    assert transient(away.value)
    with pytest.raises(StoreError) as plain:  # a store error with no database error behind it
        raise StoreError("the store is closed")
    assert not transient(plain.value)
    with pytest.raises(StoreError) as wrapped:  # how the store reports it: the original kept as context
        try:
            psycopg.connect("postgresql://postgres@127.0.0.1:1/postgres", connect_timeout=2)
        except psycopg.Error:
            raise StoreError("cannot connect to the PostgreSQL store") from None
    assert transient(wrapped.value)
    with fresh_database() as url, psycopg.connect(url, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as refused:
            conn.execute("DO $$ BEGIN RAISE EXCEPTION 'no'; END $$")
        assert not transient(refused.value)
        with pytest.raises(psycopg.Error) as bad:
            conn.execute("SELECT 1/0")
        assert not transient(bad.value)
        other = psycopg.connect(url, autocommit=True)
        pid = other.info.backend_pid
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))  # as a server restart ends it
        with pytest.raises(psycopg.Error) as terminated:
            other.execute("SELECT 1")
        other.close()
        assert transient(terminated.value)
