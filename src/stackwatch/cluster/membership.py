"""Heartbeats on the control exchange: which members are alive and which partitions each owns.

Every collector and analyzer publishes a small JSON beat to ``sw.<cluster>.control`` (a topic
exchange, cluster/topology.py) every ``BEAT_INTERVAL`` seconds, routing key ``<role>.<member>``:
who it is, where its ``/metrics`` listens, its counters, and for an analyzer the partitions it
is the active consumer of, the ones it waits on as a standby, and their lag. Nothing is stored:
a beat expires in the broker after ``BEAT_TTL`` and ``cluster status`` (cluster/status.py) listens
for one interval to see who is there. A member that stops cleanly sends a last beat with
``state: stopped`` so it disappears at once; one that dies simply stops beating.

Why beats and not the broker's own view: over AMQP a passive queue declare gives a partition's
depth and how many consumers it has, but not which of them single active consumer made active
(that needs the management plugin). The analyzer knows: its first batch from a partition is
the broker's word that it is the active one.

The beacon has its own connection: a collector's publishing connection may be busy reconnecting,
and a beat that cannot be sent is skipped (logged at debug), never in the way of the data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any, Final

import orjson

from stackwatch.cluster.topology import MAX_PARTITIONS, Topology

log = logging.getLogger(__name__)

BEAT_INTERVAL: Final = 2.0
"""Seconds between beats; ``cluster status`` listens a little longer than this."""
BEAT_TTL: Final = 10.0
"""A beat nobody read within this many seconds expires in the broker."""
MAX_BEAT_BYTES: Final = 64 * 1024
"""A beat larger than this is not a beat (status ignores it)."""
ROLES: Final = ("collector", "analyzer")
MAX_MEMBER: Final = 255
"""The longest member name (the wire format's limit on a collector's name)."""


def beat_key(role: str, member: str) -> str:
    return f"{role}.{member}"


class Beacon:
    """Publishes ``describe()`` every ``interval`` seconds until ``stop``."""

    def __init__(
        self,
        url: str,
        topology: Topology,
        role: str,
        member: str,
        describe: Callable[[], dict[str, Any]],
        *,
        interval: float = BEAT_INTERVAL,
        refresh: Callable[[Any], Any] | None = None,
    ) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        self.url = url
        self.topology = topology
        self.role = role
        self.member = member
        self.describe = describe
        self.interval = interval
        self.refresh = refresh  # async callable(connection): before each beat (the analyzer's depths)
        self.started = time.time()
        self.sent = 0
        self._connection: Any = None
        self._exchange: Any = None

    def _beat(self, state: str) -> bytes:
        body = {
            "role": self.role,
            "member": self.member,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": round(self.started, 3),
            "sent": round(time.time(), 3),
            "interval": self.interval,
            "state": state,
        }
        body.update(self.describe())
        return orjson.dumps(body)

    async def _ensure(self) -> Any:
        import aio_pika

        if self._connection is None or self._connection.is_closed:
            self._connection = await aio_pika.connect(self.url, timeout=10)
            channel = await self._connection.channel()
            self._exchange = await channel.get_exchange(self.topology.control, ensure=False)
        return self._exchange

    async def send(self, state: str = "up") -> bool:
        """One beat; whether the broker took it."""
        import aio_pika

        try:
            exchange = await self._ensure()
            if self.refresh is not None and state == "up":
                await self.refresh(self._connection)
            message = aio_pika.Message(
                self._beat(state),
                content_type="application/json",
                expiration=BEAT_TTL,
                delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
            )
            await exchange.publish(message, routing_key=beat_key(self.role, self.member))
            self.sent += 1
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the broker away: the data path says so; the beat just waits
            log.debug("heartbeat not sent: %s", exc)
            await self._drop()
            return False

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                await self.send()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval)
            await self.send("stopped")
        finally:
            await self._drop()

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()


async def listen(
    connection: Any, topology: Topology, seconds: float
) -> dict[tuple[str, str], dict[str, Any]]:
    """The newest beat of every member heard within ``seconds`` (a member whose last beat says
    ``stopped`` is left out). Listens on an exclusive queue of its own: nothing is left behind."""
    beats: dict[tuple[str, str], dict[str, Any]] = {}
    channel = await connection.channel()
    try:
        exchange = await channel.get_exchange(topology.control, ensure=False)
        queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
        for role in ROLES:
            await queue.bind(exchange, routing_key=f"{role}.#")
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            message = await queue.get(no_ack=True, fail=False)
            if message is None:
                await asyncio.sleep(min(0.05, left))
                continue
            beat = _parse(message.body)
            if beat is None:
                continue
            key = (beat["role"], beat["member"])
            if beat.get("state") == "stopped":
                beats.pop(key, None)
            elif key not in beats or beat["sent"] >= beats[key]["sent"]:
                beats[key] = beat
    finally:
        if not channel.is_closed:
            await channel.close()
    return beats


def _parse(body: bytes) -> dict[str, Any] | None:
    """A beat, or None for anything else on the exchange (too large, not JSON, fields missing)."""
    if len(body) > MAX_BEAT_BYTES:
        return None
    try:
        beat = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(beat, dict) or beat.get("role") not in ROLES or not isinstance(beat.get("member"), str):
        return None
    if not isinstance(beat.get("sent"), (int, float)) or not _printable_name(beat["member"]):
        return None
    # what ``status.combine`` reads of an analyzer's beat: anything on the control exchange can
    # publish, and one beat of the wrong shape must not make the whole status unreadable
    if not all(_partition_list(beat.get(key, [])) for key in ("active", "standby")):
        return None
    lag = beat.get("lag", {})
    if not isinstance(lag, dict) or not all(_lag_entry(v) for v in lag.values()):
        return None
    return beat


def _printable_name(member: str) -> bool:
    """A member name as status prints it on a terminal and a page: no control characters."""
    return 0 < len(member) <= MAX_MEMBER and member.isprintable()


def _partition_list(value: Any) -> bool:
    return isinstance(value, list) and all(type(n) is int and 0 <= n < MAX_PARTITIONS for n in value)


def _lag_entry(value: Any) -> bool:
    return isinstance(value, dict) and all(
        v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in value.values())
