"""The broker going away under a collector (a real TCP forwarder cut between them): the collector
stops acknowledging, its buffer stays bounded and the file tail stops advancing its saved offsets;
when the broker is back everything read arrives, nothing acknowledged is lost."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from tests.cluster.clustertools import (
    CollectorProcess,
    Consumer,
    TcpProxy,
    collector_config,
    markers,
    unique_cluster,
    wait_until,
)

pytestmark = pytest.mark.integration


def _offsets(state: Path) -> int:
    path = state / "file-offsets-app.json"
    if not path.exists():
        return 0
    data = json.loads(path.read_text())
    return sum(int(v.get("offset", 0)) for v in data.values() if isinstance(v, dict))


def test_broker_outage_pauses_the_sources_and_loses_nothing(tmp_path: Path) -> None:
    cluster = unique_cluster()
    log = tmp_path / "app.log"
    log.touch()
    proxy = TcpProxy()
    folder = tmp_path / "c"
    source = (f"  - {{type: file, name: app, paths: ['{log}'], start_at: beginning, host: node1, "
              f"service: app, poll_interval: 100ms, queue_size: 500}}\n")
    config = collector_config(folder, cluster, source,
                              extra=", max_unconfirmed: 2000, batch_events: 500, reconnect_interval: 500ms")
    text = config.read_text().replace("127.0.0.1:5672", f"127.0.0.1:{proxy.port}")
    config.write_text(text)

    def write(first: int, count: int) -> None:
        with log.open("a") as handle:
            for n in range(first, first + count):
                handle.write(f"job line-{n} done {'x' * 200}\n")

    total = 30_000
    with Consumer(cluster) as consumer:
        collector = CollectorProcess(config).start()
        try:
            write(0, 1000)
            wait_until(lambda: len(set(markers(consumer.received.homes(), "line"))) >= 1000, 30, "1000 lines")
            wait_until(lambda: _offsets(folder / "state") >= log.stat().st_size, 10, "offsets saved")
            proxy.cut()
            saved = _offsets(folder / "state")
            writer = threading.Thread(target=write, args=(1000, total - 1000))
            writer.start()
            writer.join(60)
            time.sleep(3)  # the collector reads, routes up to its bound, publishes nothing
            during = len(set(markers(consumer.received.homes(), "line")))
            assert _offsets(folder / "state") == saved  # nothing acknowledged while nothing is confirmed
            assert collector.proc is not None and collector.proc.poll() is None  # waiting, not dead
            proxy.restore()
            wait_until(lambda: len(set(markers(consumer.received.homes(), "line"))) >= total, 90,
                       f"all {total} lines after the outage")
            wait_until(lambda: _offsets(folder / "state") >= log.stat().st_size, 10, "offsets saved")
            assert collector.stop() == 0, collector.log()
        finally:
            collector.kill()
            proxy.close()
    assert during <= 1000 + 200  # at most a batch that was confirmed just as the link was cut
    assert "not confirmed" in collector.log() or "cannot reach the broker" in collector.log()
    assert not consumer.errors
