"""OpenStack notifications from RabbitMQ, as oslo.messaging's ``messagingv2`` driver sends them.

Services publish to their control exchange (``keystone``, ``nova``, ``cinder``, ``neutron``,
``glance``; type topic) with routing key ``<topic>.<priority>`` (``notifications.info``...).
The notifier also declares and fills its own ``notifications.info`` queue, which ceilometer
and others drain: consuming from it would steal their messages. So stackwatch declares a
**private durable queue** (default ``stackwatch``) bound to every exchange with
``notifications.*``. The exchanges are declared with oslo's durability (``durable: false``
unless the cloud sets ``amqp_durable_queues``): a mismatch is an AMQP 406 error.

A message is acknowledged only after its events are committed to the store. A message
delivered again (after a crash or a reconnect, between commit and ack) is recognised by its
``message_id`` (the event's ref is ``<exchange>:<message_id>``) and not stored twice.
"""


from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import orjson

from stackwatch.config.schema import Seconds, setting
from stackwatch.config.secrets import Secret
from stackwatch.core.event import Event
from stackwatch.parsers.base import ParseContext, unparsed_event
from stackwatch.parsers.notification import decode_envelope, normalize_notification
from stackwatch.sources.base import RecentRefs, Record, Source, SourceContext, SourceSettings, mark_truncated

SEEN_LIMIT = 200_000
"""message ids remembered to recognise redeliveries."""


@dataclass(frozen=True, kw_only=True)
class AmqpSettings(SourceSettings):
    url: str = setting(
        "amqp://stackwatch@127.0.0.1:5672/",
        "broker URL without the password (amqps:// for TLS); vhost as the path",
    )
    password: Secret | None = setting(None, "broker password, by reference")
    exchanges: list[str] = setting(
        ["keystone", "nova", "cinder", "neutron", "glance"], "control exchanges the services publish to"
    )
    topics: list[str] = setting(["notifications"], "oslo [oslo_messaging_notifications] topics")
    exchange_durable: bool = setting(
        False,
        "durability the exchanges are declared with; must match "
        "the services' [oslo_messaging_rabbit] amqp_durable_queues",
    )
    queue: str = setting("stackwatch", "this monitor's private queue")
    queue_durable: bool = setting(True, "keep the queue (and its messages) across broker restarts")
    prefetch: int = setting(500, "unacknowledged messages in flight")
    reconnect_interval: Seconds = setting(Seconds(5), "wait between reconnection attempts")

    def validate(self) -> None:
        super().validate()
        if urlsplit(self.url).password:
            raise ValueError("the broker URL must not contain a password: use `password: $env:NAME`")
        if self.prefetch < 1:
            raise ValueError("prefetch must be at least 1")

    def connect_url(self) -> str:
        if self.password is None:
            return self.url
        parts = urlsplit(self.url)
        user, _, host = parts.netloc.rpartition("@")
        netloc = f"{user or 'guest'}:{quote(self.password.value, safe='')}@{host}"
        return parts._replace(netloc=netloc).geturl()


class AmqpNotificationSource(Source):
    Settings = AmqpSettings

    def __init__(self, settings: AmqpSettings, context: SourceContext) -> None:
        super().__init__(settings, context)
        self.connection: Any = None
        self.channel: Any = None
        self._pending: list[Any] = []  # decoded, not yet acknowledged messages (delivery order)
        self._seen = RecentRefs(SEEN_LIMIT)
        self.ack_errors = 0

    async def start(self) -> None:
        import aio_pika

        self._seen.seed(self.context, "amqp:")
        settings = self.settings
        self.connection = await aio_pika.connect_robust(
            settings.connect_url(),
            reconnect_interval=float(settings.reconnect_interval),
            client_properties={"connection_name": f"stackwatch:{self.name}"},
        )
        self.channel = await self.connection.channel()
        await self.channel.set_qos(prefetch_count=settings.prefetch)
        queue = await self.channel.declare_queue(settings.queue, durable=settings.queue_durable)
        for name in settings.exchanges:
            exchange = await self.channel.declare_exchange(
                name, aio_pika.ExchangeType.TOPIC, durable=settings.exchange_durable
            )
            for topic in settings.topics:
                await queue.bind(exchange, routing_key=f"{topic}.*")
        await queue.consume(self._on_message)

    async def stop(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close()
            self.connection = None

    async def _on_message(self, message: Any) -> None:
        await self.bucket.wait()
        body: bytes = message.body
        text, original = self.truncate(body)
        record = Record(text, time.time(), message.exchange or "", message, original)
        await self.queue.put(record)
        self.counters.received += 1
        self.counters.bytes += len(body)

    def decode(self, records: list[Record]) -> list[Event]:
        out: list[Event] = []
        for record in records:
            self._pending.append(record.meta)
            exchange = record.peer or "default"
            ctx = ParseContext(
                host=self.settings.host,
                origin=f"amqp:{exchange}",
                service=self.settings.service,
                received=datetime.fromtimestamp(record.received, UTC),
            )
            try:
                message = decode_envelope(orjson.loads(record.text)) if not record.original_size else None
            except (orjson.JSONDecodeError, ValueError):
                message = None
            if not isinstance(message, dict):
                ctx.ref = f"{exchange}:{_digest(record.text)}"
                reason = (
                    "oversize notification" if record.original_size else "not an oslo.messaging notification"
                )
                events = [unparsed_event([record.text], ctx, reason)]
                self.counters.unparsed += 1
            else:
                message_id = str(message.get("message_id") or _digest(record.text))
                ctx.ref = f"{exchange}:{message_id}"
                try:
                    events = normalize_notification(message, record.text, ctx)
                except Exception as exc:  # a bad payload never stops the stream
                    events = [
                        unparsed_event([record.text], ctx, f"notification: {type(exc).__name__}: {exc}"[:300])
                    ]
                    self.counters.unparsed += 1
            if not self._seen.remember(ctx.ref):
                self.counters.duplicates += 1  # delivered again after a crash/reconnect: stored already
                continue
            if record.original_size:
                events = [mark_truncated(event, record.original_size) for event in events]
            out.extend(events)
        return out

    def taken_undecoded(self, records: list[Record]) -> None:
        """Those ``decode`` did not reach before it raised become pending too (acknowledged with
        the raw records' cut), in order: a record is never acknowledged twice nor left unacknowledged."""
        recent = self._pending[-len(records):] if records else []
        known = {id(meta) for meta in recent}
        self._pending.extend(r.meta for r in records if id(r.meta) not in known)

    def checkpoint(self) -> list[Any]:
        pending, self._pending = self._pending, []
        return pending

    async def commit(self, token: Any) -> None:
        if not token:
            return
        try:  # one ack for every delivery up to the last one (our queue keeps delivery order)
            await token[-1].ack(multiple=True)
        except Exception:
            # The channel was replaced by a reconnect: the broker redelivers these messages,
            # and decode recognises them by message_id.
            self.ack_errors += 1
            for message in token:
                with contextlib.suppress(Exception):
                    await message.ack()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:32]
