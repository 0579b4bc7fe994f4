"""Publishing batches to the cluster's exchange with publisher confirms, across broker outages.

``publish`` returns only once the broker confirmed the batch (for a quorum queue: written on a
majority of its replicas), so a collector acknowledges its sources only for what the broker
holds. A batch the exchange cannot route (no partition bound: the topology was deleted) comes
back and counts as not confirmed. While the broker is down every publish waits for the one
reconnection loop and is sent again; nothing is given up.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from stackwatch.cluster.topology import Topology, declare, routing_key
from stackwatch.cluster.wire import CONTENT_TYPE

log = logging.getLogger(__name__)


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
        self.reconnects = 0  # connections made after the first
        self.failures = 0  # publishes that were not confirmed and were sent again
        self.published = 0  # batches confirmed
        self.quorum: bool | None = None

    async def connect(self) -> None:
        """Connect, declare the topology, open the confirming channel; retried until it works
        (or ``close``)."""
        import aio_pika

        async with self._lock:
            if self.connected.is_set() or self._closed:
                return
            first = True
            while not self._closed:
                try:
                    if self.connection is not None and not self.connection.is_closed:
                        await self.connection.close()
                    self.connection = await aio_pika.connect(self.url, timeout=10)
                    self.quorum = await declare(self.connection, self.topology)
                    channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
                    self._exchange = await channel.get_exchange(self.topology.exchange, ensure=False)
                    self.connected.set()
                    if self.reconnects or not first:
                        log.info("connected to the broker again (%s)", self.topology.exchange)
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the broker down or refusing: say so, try again
                    if first:
                        log.error("cannot reach the broker for %s: %s (retrying every %.0fs)",
                                  self.topology.exchange, exc, self.reconnect_interval)
                    first = False
                    self.reconnects += 1
                    await asyncio.sleep(self.reconnect_interval)

    async def publish(self, body: bytes, bucket: int, *, message_id: str) -> None:
        """Send one encoded batch; returns when the broker confirmed it (retrying meanwhile)."""
        import aio_pika

        message = aio_pika.Message(body, content_type=CONTENT_TYPE, message_id=message_id,
                                   delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        while True:
            if self._closed:
                raise RuntimeError("publisher closed with a batch not confirmed")
            if not self.connected.is_set():
                await self.connect()
                continue
            exchange = self._exchange
            try:
                await exchange.publish(message, routing_key=routing_key(bucket), mandatory=True, timeout=30)
                self.published += 1
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # nack, return, timeout or a lost connection: send it again
                self.failures += 1
                if self.connected.is_set() and exchange is self._exchange:
                    log.warning("batch %s not confirmed (%s): reconnecting and sending it again",
                                message_id, exc or type(exc).__name__)
                    self.connected.clear()
                await asyncio.sleep(0.1)

    async def close(self) -> None:
        self._closed = True
        self.connected.clear()
        if self.connection is not None and not self.connection.is_closed:
            try:
                await self.connection.close()
            except Exception as exc:  # closing a dead connection: nothing left to do
                log.debug("closing the broker connection: %s", exc)
