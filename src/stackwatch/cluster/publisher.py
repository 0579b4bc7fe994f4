"""Publishing batches to the cluster's partitions with publisher confirms, across broker outages.

Each batch goes to one partition queue through the direct exchange (``Topology.direct``, the
queue's name as routing key; cluster/topology.py).

``publish`` returns only once the broker confirmed the batch (for a quorum queue: written on a
majority of its replicas), so a collector acknowledges its sources only for what the broker
holds. A batch the exchange cannot route (no partition bound: the topology was deleted) comes
back and counts as not confirmed.

Order: a collector's batches reach each partition in the order of their sequence numbers, also
across a lost connection (an analyzer skips a batch at or before the last it committed from that
collector run: a redelivery). So when a publish is not confirmed, the connection is replaced once
and every batch not yet confirmed is sent again on the new one, in sequence order, before any
newer one; a batch the broker had already taken arrives twice, the second time as a redelivery.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

from stackwatch.cluster.topology import Topology, declare
from stackwatch.cluster.wire import CONTENT_TYPE

log = logging.getLogger(__name__)
# aiormq logs every refused connection attempt at ERROR; the publisher says it once, then retries
logging.getLogger("aiormq.connection").setLevel(logging.CRITICAL)


class _Pending:
    __slots__ = ("done", "message", "queue")

    def __init__(self, message: Any, queue: str, done: asyncio.Future[None]) -> None:
        self.message = message
        self.queue = queue  # the partition queue's name: its routing key on the direct exchange
        self.done = done


class Publisher:
    def __init__(self, url: str, topology: Topology, *, reconnect_interval: float = 2.0) -> None:
        self.url = url
        self.topology = topology
        self.reconnect_interval = reconnect_interval
        self.connection: Any = None
        self._exchange: Any = None
        self._lock = asyncio.Lock()
        self._closed = False
        self.connected = asyncio.Event()
        self._generation = 0  # one per connection: a failure on an older one is already handled
        self._pending: OrderedDict[str, _Pending] = OrderedDict()  # message id -> not yet confirmed
        self._reconnecting: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self.reconnects = 0  # failed attempts to reach the broker
        self.failures = 0  # publishes not confirmed (sent again)
        self.published = 0  # batches confirmed
        self.quorum: bool | None = None

    async def connect(self) -> None:
        """Connect, declare the topology, open the confirming channel; retried until it works
        (or ``close``)."""
        import aio_pika

        async with self._lock:
            first = True
            while not self._closed and not self.connected.is_set():
                try:
                    if self.connection is not None and not self.connection.is_closed:
                        await self.connection.close()
                    self.connection = await aio_pika.connect(self.url, timeout=10)
                    self.quorum = await declare(self.connection, self.topology)
                    channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
                    self._exchange = await channel.get_exchange(self.topology.direct, ensure=False)
                    self._generation += 1
                    self.connected.set()
                    if not first:
                        log.info("connected to the broker again (%s)", self.topology.exchange)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the broker down or refusing: say so, try again
                    if first:
                        log.error("cannot reach the broker for %s: %s (retrying every %gs)",
                                  self.topology.exchange, exc, self.reconnect_interval)
                    first = False
                    self.reconnects += 1
                    await asyncio.sleep(self.reconnect_interval)

    async def publish(self, body: bytes, partition: int, *, message_id: str) -> None:
        """Send one encoded batch to ``partition``; returns when the broker confirmed it (sending it
        again across reconnections meanwhile). Batches are sent in the order ``publish`` is called."""
        import aio_pika

        if self._closed:
            raise RuntimeError("publisher closed")
        message = aio_pika.Message(body, content_type=CONTENT_TYPE, message_id=message_id,
                                   delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        entry = _Pending(message, self.topology.queue(partition), asyncio.get_running_loop().create_future())
        self._pending[message_id] = entry
        if self.connected.is_set() and self._reconnecting is None:
            self._send(message_id, entry)
        else:  # sent, in order, once the connection is back
            self._reconnect()
        await entry.done

    def _send(self, message_id: str, entry: _Pending) -> None:
        task = asyncio.get_running_loop().create_task(self._publish_once(message_id, entry, self._generation))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _publish_once(self, message_id: str, entry: _Pending, generation: int) -> None:
        try:
            await self._exchange.publish(entry.message, routing_key=entry.queue, mandatory=True,
                                         timeout=30)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # nack, return, timeout or a lost connection: all sent again, in order
            if generation == self._generation and not self._closed:
                self.failures += 1
                log.warning("batch %s not confirmed (%s): reconnecting, sending every unconfirmed batch "
                            "again", message_id, exc or type(exc).__name__)
                self.connected.clear()
                self._reconnect()
            return
        if self._pending.pop(message_id, None) is not None:
            self.published += 1
            if not entry.done.done():
                entry.done.set_result(None)

    def _reconnect(self) -> None:
        if self._reconnecting is None and not self._closed:
            self._reconnecting = asyncio.get_running_loop().create_task(self._resend())

    async def _resend(self) -> None:
        try:
            await asyncio.sleep(0.1)
            self.connected.clear()
            await self.connect()
            for message_id, entry in list(self._pending.items()):  # in the order they were published
                self._send(message_id, entry)
        finally:
            self._reconnecting = None

    async def close(self) -> None:
        self._closed = True
        self.connected.clear()
        for task in [*self._sends, *([self._reconnecting] if self._reconnecting else [])]:
            task.cancel()
        for entry in self._pending.values():
            if not entry.done.done():
                entry.done.set_exception(RuntimeError("publisher closed with a batch not confirmed"))
        if self.connection is not None and not self.connection.is_closed:
            try:
                await self.connection.close()
            except Exception as exc:  # closing a dead connection: nothing left to do
                log.debug("closing the broker connection: %s", exc)
