"""The cluster's objects on RabbitMQ, named from the cluster name so clusters (and tests) never mix.

* ``sw.<cluster>.partitions``: a ``direct`` exchange, each partition queue bound under its own
  name. Collectors publish one batch per partition per cut here, with the partition's queue name
  as routing key: which partition a routing bucket belongs to is ``partition_map`` (the same on
  every member: equal shares, and a new partition takes only its share from the others), so the
  copies of a cut that go to one partition travel as one message whatever the number of buckets,
  and adding a partition moves only about 1/N of the buckets.
* ``sw.<cluster>.events``: the ``x-consistent-hash`` exchange (the ``rabbitmq_consistent_hash_exchange``
  plugin) that collectors before the per-partition batches published each bucket's batch to
  (routing key ``b<number>``, hashed onto a ring of the partition queues). Still declared and
  bound, so a batch an older member publishes during an upgrade reaches a partition rather than
  coming back unroutable; no current member publishes to it.
* ``sw.<cluster>.p<NNN>``: N durable partition queues, quorum queues (replicated, fsync'd before
  the publisher confirm) where the broker has them, each with ``x-single-active-consumer`` so one
  analyzer at a time consumes a partition and a standby takes over when it dies. A batch an
  analyzer rejects (undecodable, or redelivered more than ``DELIVERY_LIMIT`` times) goes to the
  dead-letter queue, kept, never dropped.
* ``sw.<cluster>.dead``: the dead-letter exchange (fanout) and its queue.
* ``sw.<cluster>.control``: a topic exchange for heartbeats and membership (``collector.<name>``,
  ``analyzer.<name>``); each listener binds its own exclusive queue.

Declaring is idempotent: every role declares the topology at start with the same arguments.
"""

from __future__ import annotations

import functools
import heapq
import logging
from dataclasses import dataclass
from typing import Any, Final

log = logging.getLogger(__name__)

EXCHANGE_TYPE: Final = "x-consistent-hash"
PLUGIN: Final = "rabbitmq_consistent_hash_exchange"
BINDING_WEIGHT: Final = 20
"""Points each partition gets on the exchange's hash ring: equal for all; more points spread the
buckets more evenly over the partitions (with 1 point a partition may get twice its share)."""
DELIVERY_LIMIT: Final = 20
"""A batch redelivered this often (an analyzer crashing on it every time) is dead-lettered."""
MAX_PARTITIONS: Final = 1024
_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_MEMBER_CHARS: Final = _NAME_CHARS | {"."}
MAX_MEMBER: Final = 100
"""A member name is a batch's collector name, a heartbeat's member, part of a PostgreSQL writer
name (``<member>-pNNN``) and of message ids: short, and plain enough for all of them."""


def check_member(name: str) -> None:
    """``ValueError`` unless ``name`` can name a cluster member: 1..MAX_MEMBER letters, digits,
    '-', '_' or '.', starting with a letter or digit. Names starting otherwise are reserved: an
    analyzer's partition probe is the collector ``~bucket-probe`` (cluster/analyzer.py), whose
    batches it skips, so a collector named so would have all its records skipped in silence."""
    if (not name or len(name) > MAX_MEMBER or not set(name) <= _MEMBER_CHARS
            or not name[0].isascii() or not name[0].isalnum()):
        raise ValueError(f"member name must be 1..{MAX_MEMBER} letters, digits, '-', '_' or '.', "
                         f"starting with a letter or digit, got {name!r}")


class TopologyError(RuntimeError):
    """The broker refused the topology (the plugin missing, a queue declared differently)."""


@dataclass(frozen=True)
class Topology:
    """The names of a cluster's exchanges and queues."""

    cluster: str
    partitions: int

    def __post_init__(self) -> None:
        if not self.cluster or len(self.cluster) > 100 or not set(self.cluster) <= _NAME_CHARS:
            raise ValueError(f"cluster name must be 1..100 letters, digits, '-' or '_', got {self.cluster!r}")
        if not 1 <= self.partitions <= MAX_PARTITIONS:
            raise ValueError(f"partitions must be 1..{MAX_PARTITIONS}, got {self.partitions}")

    @property
    def prefix(self) -> str:
        return f"sw.{self.cluster}"

    @property
    def exchange(self) -> str:
        return f"{self.prefix}.events"

    @property
    def direct(self) -> str:
        """The exchange batches are published to, one routing key per partition (its queue name)."""
        return f"{self.prefix}.partitions"

    @property
    def control(self) -> str:
        return f"{self.prefix}.control"

    @property
    def dead(self) -> str:
        return f"{self.prefix}.dead"

    def queue(self, partition: int) -> str:
        if not 0 <= partition < self.partitions:
            raise ValueError(f"partition {partition} out of 0..{self.partitions - 1}")
        return f"{self.prefix}.p{partition:03d}"

    @property
    def queues(self) -> list[str]:
        return [self.queue(p) for p in range(self.partitions)]

    def partition_of(self, queue: str) -> int:
        """The partition number of one of this cluster's queue names."""
        head, _, number = queue.rpartition(".p")
        if head != self.prefix or not number.isdigit() or int(number) >= self.partitions:
            raise ValueError(f"{queue!r} is not a partition queue of cluster {self.cluster!r}")
        return int(number)


def routing_key(bucket: int) -> str:
    """The routing key of a bucket on the consistent-hash exchange (older members, see above)."""
    return f"b{bucket}"


@functools.lru_cache(maxsize=16)
def partition_map(buckets: int, partitions: int) -> tuple[int, ...]:
    """The partition of every routing bucket, the same on every member. Built as if the
    partitions were added one at a time: partition ``n`` takes ``buckets // (n + 1)`` buckets, one
    at a time from the partition holding the most (the lowest number among equals), its highest
    bucket first. So partitions hold equal shares (within one bucket), and going from N to N+1
    partitions moves only the buckets the new one takes, about 1/(N+1) of them."""
    if not 1 <= partitions <= MAX_PARTITIONS or buckets < 1:
        raise ValueError(f"no partition map for {buckets} buckets over {partitions} partitions")
    held: list[list[int]] = [list(range(buckets))]
    sizes = [(-buckets, 0)]  # a heap: the partition holding the most (lowest number first) on top
    for n in range(1, partitions):
        taken: list[int] = []
        for _ in range(buckets // (n + 1)):
            _, largest = heapq.heappop(sizes)
            taken.append(held[largest].pop())
            heapq.heappush(sizes, (-len(held[largest]), largest))
        held.append(taken)
        heapq.heappush(sizes, (-len(taken), n))
    out = [0] * buckets
    for partition, owned in enumerate(held):
        for bucket in owned:
            out[bucket] = partition
    return tuple(out)


def partition_of_bucket(bucket: int, partitions: int, buckets: int) -> int:
    """The partition routing bucket ``bucket`` belongs to (``partition_map``)."""
    return partition_map(buckets, partitions)[bucket]


def queue_arguments(quorum: bool) -> dict[str, Any]:
    arguments: dict[str, Any] = {"x-single-active-consumer": True}
    if quorum:
        arguments["x-queue-type"] = "quorum"
        arguments["x-delivery-limit"] = DELIVERY_LIMIT
    return arguments


async def declare(connection: Any, topology: Topology, *, quorum: bool | None = None) -> bool:
    """Declare ``topology`` on an aio-pika connection (idempotent). Quorum queues are used when the
    broker has them (``quorum=None``: try, fall back to classic durable queues); returns whether
    the partition queues are quorum queues. Raises ``TopologyError`` with what to do."""
    import aio_pika
    import aiormq

    channel = await connection.channel()
    try:
        try:
            events = await channel.declare_exchange(topology.exchange, EXCHANGE_TYPE, durable=True)
        except (aiormq.exceptions.ConnectionClosed, aiormq.exceptions.ChannelClosed,
                aiormq.exceptions.AMQPError) as exc:
            raise TopologyError(
                f"RabbitMQ refused the {EXCHANGE_TYPE} exchange {topology.exchange!r} ({exc}): enable the "
                f"plugin with `rabbitmq-plugins enable {PLUGIN}`") from exc
        direct = await channel.declare_exchange(topology.direct, aio_pika.ExchangeType.DIRECT, durable=True)
        dead = await channel.declare_exchange(topology.dead, aio_pika.ExchangeType.FANOUT, durable=True)
        dead_queue = await channel.declare_queue(topology.dead, durable=True)
        await dead_queue.bind(dead, routing_key="")
        await channel.declare_exchange(topology.control, aio_pika.ExchangeType.TOPIC, durable=True)
        use_quorum = quorum if quorum is not None else True
        for name in topology.queues:
            arguments = {**queue_arguments(use_quorum), "x-dead-letter-exchange": topology.dead}
            try:
                queue = await channel.declare_queue(name, durable=True, arguments=arguments)
            except aiormq.exceptions.ChannelPreconditionFailed as exc:
                raise TopologyError(
                    f"queue {name!r} exists with other arguments ({exc}); delete it or keep the cluster's "
                    f"settings") from exc
            except aiormq.exceptions.AMQPError as exc:
                if quorum is not None or not use_quorum:
                    raise TopologyError(f"RabbitMQ refused queue {name!r}: {exc}") from exc
                log.warning("RabbitMQ has no quorum queues (%s): classic durable queues instead", exc)
                use_quorum = False
                channel = await connection.channel()
                events = await channel.get_exchange(topology.exchange)
                direct = await channel.get_exchange(topology.direct)
                classic = {**queue_arguments(False), "x-dead-letter-exchange": topology.dead}
                queue = await channel.declare_queue(name, durable=True, arguments=classic)
            # the weight of a consistent-hash binding is its routing key
            await queue.bind(events, routing_key=str(BINDING_WEIGHT))
            await queue.bind(direct, routing_key=name)
        return use_quorum
    finally:
        if not channel.is_closed:
            await channel.close()


async def delete(connection: Any, topology: Topology) -> None:
    """Remove the cluster's exchanges and queues (tests; decommissioning a cluster)."""
    channel = await connection.channel()
    try:
        for name in [*topology.queues, topology.dead]:
            await channel.queue_delete(name)
        for name in (topology.exchange, topology.direct, topology.dead, topology.control):
            await channel.exchange_delete(name)
    finally:
        if not channel.is_closed:
            await channel.close()


async def depths(connection: Any, topology: Topology) -> dict[str, int]:
    """Messages ready in each partition queue (passive declares: nothing is created)."""
    out: dict[str, int] = {}
    channel = await connection.channel()
    try:
        for name in topology.queues:
            queue = await channel.declare_queue(name, passive=True)
            out[name] = int(queue.declaration_result.message_count or 0)
    finally:
        if not channel.is_closed:
            await channel.close()
    return out
