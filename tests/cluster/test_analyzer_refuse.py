"""Batches an analyzer must not take: out-of-range buckets and partitions, records under the
probe's reserved collector name. Dead-lettered and counted; the partition's state does not grow."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stackwatch.cluster.analyzer import PROBE
from stackwatch.cluster.topology import Topology
from stackwatch.cluster.wire import BatchBuilder, encode_batch
from stackwatch.core.event import Event
from tests.cluster.analyzer_live import depth, publish, running, settings, until

NOW = datetime.now(UTC)


def _event(n: int) -> Event:
    return Event(time=NOW, received=NOW, host="h1", service="nova", message=f"record {n}",
                 raw=f"record {n}", ref=f"test:refuse:{n}")


def _batch(collector: str, seq: int, *, bucket: int = -1, partition: int = 0, records: int = 1) -> bytes:
    builder = BatchBuilder()
    for n in range(records):
        builder.add(_event(seq * 100 + n), (), True)
    return encode_batch(builder.build(collector=collector, seq=seq, epoch="e1", bucket=bucket,
                                      partition=partition, sent=time.time()))


def test_out_of_range_batches_are_dead_lettered_and_counted(tmp_path: Path) -> None:
    config = settings(tmp_path, buckets=4)
    topology = Topology(config.cluster.name, 1)

    async def main() -> None:
        async with running(config) as analyzer:
            bodies = [
                _batch("c1", 1, bucket=999),  # a bucket this cluster does not have
                _batch("c1", 2, bucket=-7),
                _batch("c1", 3, partition=5),  # published for another partition
                _batch(PROBE, 4, records=3),  # records under the probe's name: skipped in silence before
                _batch("c1", 5, records=2),  # a good one
            ]
            await publish(topology, 0, bodies)
            await until(lambda: 0 in analyzer.partitions and analyzer.partitions[0].stored_events >= 2, 20,
                        "the good batch stored")
            partition = analyzer.partitions[0]
            await until(lambda: partition.refused_batches >= 4, 10, "the refusals counted")
            assert partition.refused_batches == 4
            assert partition.stored_events == 2
            assert partition.buckets <= set(range(4))
            await asyncio.sleep(0.3)
            assert await depth(topology.dead) == 4

    asyncio.run(main())


@pytest.mark.parametrize("name", ["~bucket-probe", "~x", "-lead", "", "a b", "é", "x" * 101, "a/b"])
def test_reserved_and_invalid_member_names_are_refused(name: str) -> None:
    from stackwatch.config.loader import ConfigError, parse_config

    text = f"cluster:\n  member: '{name}'\n" if name else "cluster:\n  member: '~'\n"
    with pytest.raises(ConfigError, match="member name"):
        parse_config(text, "serve.yaml")


def test_plain_member_names_are_taken() -> None:
    from stackwatch.config.loader import parse_config

    for name in ("coll1", "ctl-1.example.org", "an_2"):
        assert parse_config(f"cluster:\n  member: '{name}'\n").cluster.member == name
