"""What ``stackwatch cluster status`` and the dashboard's Cluster page show, read from the broker.

Two sources, both on RabbitMQ, nothing else to run:

* each partition queue declared passively: messages waiting (depth) and its consumer count (for
  a single-active-consumer queue RabbitMQ counts the active consumer only, so 0 means nobody
  consumes it); a queue that does not exist is reported as missing;
* the members' heartbeats on the control exchange (cluster/membership.py), heard for one beat
  interval: the collectors and analyzers alive, their counters, and which analyzer is the active
  consumer of each partition, with its lag.

An analyzer learns that it is a partition's active consumer from the partition's first batch, so
a partition that has had no batch since its consumer started shows no owner yet (its consumers
are still counted).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from stackwatch.cluster.membership import BEAT_INTERVAL, listen
from stackwatch.cluster.topology import DELIVERY_LIMIT, Topology


@dataclass
class PartitionStatus:
    number: int
    queue: str
    exists: bool = True
    depth: int = 0  # messages (batches) ready in the queue
    consumers: int = 0  # as the broker counts them (a single-active-consumer queue: the active one)
    owner: str | None = None  # the analyzer that says it is the active consumer
    standbys: list[str] = field(default_factory=list)  # analyzers subscribed, not active
    commit_lag: float | None = None  # publish of the oldest batch of the owner's last commit -> commit
    event_lag: float | None = None  # newest event time in that commit -> commit
    last_commit_age: float | None = None  # seconds since the owner's last commit


@dataclass
class ClusterStatus:
    cluster: str
    partitions: list[PartitionStatus]
    collectors: list[dict[str, Any]]
    analyzers: list[dict[str, Any]]
    listened: float
    taken: float = field(default_factory=time.time)
    dead_letters: int | None = None  # batches in sw.<name>.dead (None: not read)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def problems(self) -> list[str]:
        """What an operator must look at (also the exit status of ``cluster status``)."""
        out = []
        if not self.analyzers:
            out.append("no analyzer is alive")
        for p in self.partitions:
            if not p.exists:
                out.append(f"partition {p.number}: queue {p.queue} missing")
            elif p.consumers == 0:
                out.append(f"partition {p.number}: no consumer ({p.depth} batches waiting)")
        if self.dead_letters:
            out.append(f"{self.dead_letters} batches dead-lettered in sw.{self.cluster}.dead (refused by an "
                       f"analyzer, or delivered more than {DELIVERY_LIMIT} times): inspect them")
        return out


async def queue_states(connection: Any, topology: Topology) -> list[PartitionStatus]:
    """Depth and consumer count of every partition queue (passive declares: nothing created)."""
    import aiormq

    out = []
    channel = await connection.channel()
    try:
        for number, name in enumerate(topology.queues):
            state = PartitionStatus(number, name)
            try:
                queue = await channel.declare_queue(name, passive=True)
            except aiormq.exceptions.ChannelNotFoundEntity:
                state.exists = False
                channel = await connection.channel()  # the broker closed the channel
            else:
                result = queue.declaration_result
                state.depth = int(result.message_count or 0)
                state.consumers = int(result.consumer_count or 0)
            out.append(state)
    finally:
        if not channel.is_closed:
            await channel.close()
    return out


async def dead_letter_depth(connection: Any, topology: Topology) -> int | None:
    """Batches waiting in the dead-letter queue (a passive declare), None when it does not exist."""
    import aiormq

    channel = await connection.channel()
    try:
        queue = await channel.declare_queue(topology.dead, passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return None
    try:
        return int(queue.declaration_result.message_count or 0)
    finally:
        if not channel.is_closed:
            await channel.close()


def combine(
    topology: Topology,
    partitions: list[PartitionStatus],
    beats: dict[tuple[str, str], dict[str, Any]],
    listened: float,
    now: float | None = None,
) -> ClusterStatus:
    """Put the queues and the beats together: owners, standbys and lags per partition."""
    now = time.time() if now is None else now
    collectors = sorted(
        (b for (role, _), b in beats.items() if role == "collector"), key=lambda b: b["member"]
    )
    analyzers = sorted((b for (role, _), b in beats.items() if role == "analyzer"), key=lambda b: b["member"])
    by_number = {p.number: p for p in partitions}
    claims: dict[int, dict[str, Any]] = {}
    for beat in analyzers:
        beat["age"] = round(now - beat["sent"], 3)
        for key in beat.get("active", []):
            number = int(key)
            # two claims: the newer beat wins (the older member lost the partition and its beat is stale)
            if number in by_number and (number not in claims or beat["sent"] > claims[number]["sent"]):
                claims[number] = beat
        for key in beat.get("standby", []):
            if int(key) in by_number:
                by_number[int(key)].standbys.append(beat["member"])
    for beat in collectors:
        beat["age"] = round(now - beat["sent"], 3)
    for number, beat in claims.items():
        state = by_number[number]
        state.owner = beat["member"]
        lag = beat.get("lag", {}).get(str(number), {})
        state.commit_lag = lag.get("commit")
        state.event_lag = lag.get("event")
        committed = lag.get("committed")
        state.last_commit_age = round(now - committed, 3) if committed else None
        if state.owner in state.standbys:
            state.standbys.remove(state.owner)
    return ClusterStatus(topology.cluster, partitions, collectors, analyzers, listened, now)


async def read_status(url: str, topology: Topology, seconds: float = BEAT_INTERVAL + 0.5) -> ClusterStatus:
    """Connect, read the queues and listen for beats for ``seconds``."""
    import aio_pika

    connection = await aio_pika.connect(url, timeout=10)
    try:
        beats = await listen(connection, topology, seconds)
        partitions = await queue_states(connection, topology)
        dead = await dead_letter_depth(connection, topology)
    finally:
        await connection.close()
    status = combine(topology, partitions, beats, seconds)
    status.dead_letters = dead
    return status


def format_seconds(value: float | None, unknown: str = "-") -> str:
    """A lag as people read it: 240ms, 3.5s."""
    if value is None:
        return unknown
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.1f}s"


def render_text(status: ClusterStatus) -> str:
    """The human form of ``cluster status``."""
    lines = [
        f"cluster {status.cluster}: {len(status.collectors)} collectors, {len(status.analyzers)} analyzers, "
        f"{len(status.partitions)} partitions (heard for {status.listened:.1f}s)",
        "",
        "collectors:",
    ]
    for c in status.collectors:
        lines.append(
            f"  {c['member']:<28} host {c.get('host', '?')} pid {c.get('pid', '?')}  events "
            f"{c.get('events', 0)}  unconfirmed {c.get('unconfirmed', 0)}  source queue "
            f"{c.get('queue_depth', 0)}  beat {format_seconds(c.get('age'))} ago"
        )
    if not status.collectors:
        lines.append("  (none heard)")
    lines += ["", "analyzers:"]
    for a in status.analyzers:
        active = ",".join(str(p) for p in a.get("active", [])) or "-"
        standby = ",".join(str(p) for p in a.get("standby", [])) or "-"
        lines.append(
            f"  {a['member']:<28} host {a.get('host', '?')} pid {a.get('pid', '?')}  active {active}  "
            f"standby {standby}  events {a.get('events', 0)}  takeovers {a.get('takeovers', 0)}"
        )
    if not status.analyzers:
        lines.append("  (none heard)")
    lines += [
        "",
        "partitions:",
        f"  {'#':>3} {'queue':<24} {'depth':>7} {'consumers':>9}  {'owner':<28} "
        f"{'lag':>8} {'event lag':>9}  standbys",
    ]
    for p in status.partitions:
        if not p.exists:
            lines.append(f"  {p.number:>3} {p.queue:<24} missing")
            continue
        lines.append(
            f"  {p.number:>3} {p.queue:<24} {p.depth:>7} {p.consumers:>9}  {p.owner or '-':<28} "
            f"{format_seconds(p.commit_lag):>8} {format_seconds(p.event_lag):>9}  "
            f"{','.join(p.standbys) or '-'}"
        )
    if status.dead_letters is not None:
        lines += ["", f"dead letters: {status.dead_letters} batches in sw.{status.cluster}.dead"]
    problems = status.problems
    if problems:
        lines += ["", "problems:", *(f"  {p}" for p in problems)]
    return "\n".join(lines) + "\n"
