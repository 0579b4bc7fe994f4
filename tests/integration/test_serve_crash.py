"""kill -9 of `stackwatch serve` under load, then restart: nothing acknowledged is lost and
nothing is stored twice (file tailing through a rotation, and RabbitMQ notifications)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from stackwatch.store import EventQuery, open_store
from tests.servetools import ServeProcess, amqp_cleanup, amqp_queue_depth, publish, serve_config, wait_for

pytestmark = pytest.mark.integration


def _stored(data: Path, **query: str) -> list:
    if not (data / "stackwatch.db").exists():
        return []
    with open_store(data, read_only=True) as store:
        return [s.event for s in store.search_events(EventQuery(limit=10_000, **query))]


def test_file_tail_survives_kill_9_and_rotation(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "app.log"
    log.parent.mkdir()
    total = 6000
    config = serve_config(
        tmp_path,
        f"  - {{type: file, name: logs, paths: ['{log}'], start_at: beginning, poll_interval: 50ms}}\n",
    )

    def write() -> None:
        handle = log.open("a")
        for i in range(total):
            handle.write(f"Nov 27 10:{i // 60 % 60:02d}:{i % 60:02d} ctl1 app[7]: record {i}\n")
            if i % 50 == 0:
                handle.flush()
                time.sleep(0.02)
            if i == total // 2:  # logrotate "create": rename, then a new file
                handle.close()
                os.rename(log, log.with_suffix(".log.1"))
                handle = log.open("a")
        handle.close()

    serve = ServeProcess(config).start()
    writer = threading.Thread(target=write)
    writer.start()
    try:
        for threshold in (1000, 3500):  # kill once before the rotation, once after
            wait_for(
                lambda threshold=threshold: len(_stored(tmp_path / "data", service="app")) >= threshold, 30
            )
            serve.kill()
            time.sleep(0.3)
            serve = ServeProcess(config).start()
        writer.join(60)
        wait_for(lambda: len(_stored(tmp_path / "data", service="app")) >= total, 30, 0.1)
    finally:
        writer.join(60)
        assert serve.stop() == 0, serve.log()
    counts = Counter(int(e.message.rsplit(" ", 1)[1]) for e in _stored(tmp_path / "data", service="app"))
    assert sorted(counts) == list(range(total)), "lost records"
    assert max(counts.values()) == 1, f"stored twice: {[n for n, c in counts.items() if c > 1][:10]}"


def test_amqp_survives_kill_9(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    exchange, topic, queue = f"swk-{tag}-keystone", f"swk-{tag}-notifications", f"swk-{tag}-stackwatch"
    config = serve_config(
        tmp_path,
        f"  - {{type: amqp, name: bus, url: 'amqp://guest@127.0.0.1:5672/',"
        f" password: $env:SW_AMQP_PW, exchanges: [{exchange}], topics: [{topic}],"
        f" queue: {queue}, prefetch: 200}}\n",
    )
    env = {"SW_AMQP_PW": "guest"}

    def items(first: int, last: int) -> list:
        return [
            ("info", "identity.project.created", {"resource_info": f"project-{i}"})
            for i in range(first, last)
        ]

    serve = ServeProcess(config, env).start()  # declares the private queue and its bindings
    try:
        publisher = threading.Thread(target=publish, args=(exchange, topic, items(0, 1500)))
        publisher.start()
        wait_for(lambda: len(_stored(tmp_path / "data", service="keystone")) >= 200, 60)
        serve.kill()  # under load: deliveries in flight, some committed but not acknowledged
        publisher.join(120)
        publish(exchange, topic, items(1500, 2000))  # while it is down: they wait in the durable queue
        serve = ServeProcess(config, env).start()
        wait_for(lambda: len(_stored(tmp_path / "data", service="keystone")) >= 2000, 60, 0.1)
        time.sleep(0.5)
    finally:
        assert serve.stop() == 0, serve.log()
    try:
        depth = asyncio.run(amqp_queue_depth(queue))
    finally:
        asyncio.run(amqp_cleanup([exchange], [queue, f"{topic}.info"]))
    counts = Counter(e.target.id for e in _stored(tmp_path / "data", service="keystone"))
    assert sorted(counts) == sorted(f"project-{i}" for i in range(2000)), "lost notifications"
    assert max(counts.values()) == 1, "a notification was stored twice"
    assert depth == 0  # everything stored was acknowledged
