"""OpenStack notifications from the real RabbitMQ, published by oslo.messaging's own Notifier:
parsing (keystone CADF included), a private queue, ack only after commit, no double storage."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from stackwatch.config import parse_config
from stackwatch.core.event import Event
from stackwatch.sources.amqp_notifications import AmqpNotificationSource
from stackwatch.sources.base import SourceContext
from tests.servetools import amqp_cleanup, amqp_queue_depth, keystone_auth_payload, publish, run

pytestmark = pytest.mark.integration


class Names:
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.keystone, self.nova = f"swt-{tag}-keystone", f"swt-{tag}-nova"
        self.topic, self.queue = f"swt-{tag}-notifications", f"swt-{tag}-stackwatch"

    def yaml(self, extra: str = "") -> str:
        return (
            "sources:\n  - {type: amqp, name: bus, url: 'amqp://guest@127.0.0.1:5672/',"
            " password: $env:SW_AMQP_PW,"
            f" exchanges: [{self.keystone}, {self.nova}], topics: [{self.topic}],"
            f" queue: {self.queue}{extra}}}\n"
        )

    async def cleanup(self) -> None:
        await amqp_cleanup(
            [self.keystone, self.nova], [self.queue, f"{self.topic}.info", f"{self.topic}.error"]
        )


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> Names:
    monkeypatch.setenv("SW_AMQP_PW", "guest")
    return Names()


@asynccontextmanager
async def consuming(
    tmp_path: Path, names: Names, refs: set[str] | None = None, extra: str = ""
) -> AsyncIterator[AmqpNotificationSource]:
    settings = parse_config(names.yaml(extra)).sources[0]
    context = SourceContext(
        queue_size=10_000,
        wake=asyncio.Event(),
        state_dir=str(tmp_path),
        hostname="t",
        recent_refs=(lambda prefix: set(refs or ())),
    )
    source = AmqpNotificationSource(settings, context)
    await source.start()
    try:
        yield source
    finally:
        await source.stop()


async def drain(source: AmqpNotificationSource, want: int, timeout: float = 10.0) -> list[Event]:
    events: list[Event] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(events) < want and loop.time() < deadline:
        events += source.decode(source.queue.take(1000))
        await asyncio.sleep(0.02)
    return events


def test_keystone_cadf_and_nova_notifications_are_normalized(tmp_path: Path, names: Names) -> None:
    async def scenario() -> tuple[list[Event], int]:
        try:
            async with consuming(tmp_path, names) as source:
                await asyncio.to_thread(
                    publish,
                    names.keystone,
                    names.topic,
                    [("info", "identity.authenticate", keystone_auth_payload())],
                )
                await asyncio.to_thread(
                    publish,
                    names.nova,
                    names.topic,
                    [
                        (
                            "error",
                            "compute.instance.delete.end",
                            {
                                "instance_id": "9f6a3c1e-0000-4000-8000-000000000001",
                                "tenant_id": "p1",
                                "user_id": "u1",
                                "display_name": "vm1",
                            },
                        )
                    ],
                    "compute.cmp7",
                )
                events = await drain(source, 2)
                await source.commit(source.checkpoint())
                await asyncio.sleep(0.2)
                return events, await amqp_queue_depth(names.queue)
        finally:
            await names.cleanup()

    events, depth = run(scenario())
    keystone = next(e for e in events if e.service == "keystone")
    nova = next(e for e in events if e.service != "keystone")
    assert keystone.action == "authenticate" and keystone.outcome == "failure"
    assert keystone.initiator.name == "admin" and keystone.initiator.source_ip == "203.0.113.50"
    assert keystone.host == "ctl1" and keystone.origin == f"amqp:{names.keystone}"
    assert keystone.ref == f"{names.keystone}:{keystone.attrs['message_id']}"
    assert '"oslo.version"' in keystone.raw  # the envelope as received
    assert nova.host == "cmp7" and nova.target.id == "9f6a3c1e-0000-4000-8000-000000000001"
    assert nova.severity == "error"
    assert depth == 0  # acknowledged after the commit


def test_a_json_body_that_is_no_object_is_kept_raw_as_no_notification(tmp_path: Path, names: Names) -> None:
    import aio_pika

    bodies = ["[1, 2]", '"text"', "3", "null", '{"oslo.message": "[1]"}', "not json"]

    async def scenario() -> list[Event]:
        try:
            async with consuming(tmp_path, names) as source:
                connection = await aio_pika.connect_robust("amqp://guest:guest@127.0.0.1:5672/")
                async with connection:
                    channel = await connection.channel()
                    for body in bodies:  # straight into our queue, as a misbehaving publisher would
                        await channel.default_exchange.publish(aio_pika.Message(body.encode()), names.queue)
                events = await drain(source, len(bodies))
                await source.commit(source.checkpoint())
                return events
        finally:
            await names.cleanup()

    events = run(scenario())
    assert sorted(e.raw for e in events) == sorted(bodies)  # none lost, each kept as received
    assert all(e.kind == "unparsed" for e in events)
    reasons = {e.raw: e.attrs.get("reason") for e in events}
    assert reasons["[1, 2]"] == "not an oslo.messaging notification"  # was a TypeError: "malformed"
    assert reasons['"text"'] == reasons["3"] == reasons["null"] == "not an oslo.messaging notification"


def test_unacknowledged_messages_come_back_and_are_not_stored_twice(tmp_path: Path, names: Names) -> None:
    items = [("info", "identity.authenticate", keystone_auth_payload(username=f"user{i}")) for i in range(20)]

    async def scenario() -> tuple[list[Event], list[Event], int, int]:
        try:
            async with consuming(tmp_path, names) as source:
                await asyncio.to_thread(publish, names.keystone, names.topic, items)
                first = await drain(source, 20)  # "committed" ... and the process dies before the ack
            stored = {e.ref for e in first}
            async with consuming(tmp_path, names, refs=stored) as again:
                await asyncio.sleep(1.0)
                second = again.decode(again.queue.take(1000))
                redelivered = again.counters.duplicates
                await again.commit(again.checkpoint())
                await asyncio.sleep(0.2)
                return first, second, redelivered, await amqp_queue_depth(names.queue)
        finally:
            await names.cleanup()

    first, second, redelivered, depth = run(scenario())
    assert len(first) == 20 and {e.initiator.name for e in first} == {f"user{i}" for i in range(20)}
    assert second == [] and redelivered == 20
    assert depth == 0


def test_exchange_durability_must_match_the_services(tmp_path: Path, names: Names) -> None:
    import aio_pika

    async def scenario() -> str:
        connection = await aio_pika.connect_robust("amqp://guest:guest@127.0.0.1:5672/")
        async with connection:
            channel = await connection.channel()
            await channel.declare_exchange(names.keystone, aio_pika.ExchangeType.TOPIC, durable=True)
        try:
            try:
                async with consuming(tmp_path, names):
                    return "started"
            except Exception as exc:  # AMQP 406 PRECONDITION_FAILED
                return f"{type(exc).__name__}: {exc}"
            finally:
                pass
        finally:
            await names.cleanup()

    async def matching() -> str:
        connection = await aio_pika.connect_robust("amqp://guest:guest@127.0.0.1:5672/")
        async with connection:
            channel = await connection.channel()
            await channel.declare_exchange(names.keystone, aio_pika.ExchangeType.TOPIC, durable=True)
        try:
            async with consuming(tmp_path, names, extra=", exchange_durable: true"):
                return "started"
        finally:
            await names.cleanup()

    assert "PRECONDITION_FAILED" in run(scenario())
    assert run(matching()) == "started"
