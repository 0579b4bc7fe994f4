"""A collector's idle watermark must not pass a record still on its way (real process, real
RabbitMQ). While a collector reads nothing it tells the partitions its event clock advanced;
advanced by the whole wall time it had been idle, a record a sender delivered a little late
(buffered, polled) or stamped in whole seconds arrived below a watermark already sent, and the
partitions took it as late (other collectors' copies released ahead of it)."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stackwatch.cluster.collector import COARSE, IDLE_MARGIN, idle_watermark
from stackwatch.cluster.reorder import QUIET
from tests.cluster.clustertools import (
    CollectorProcess,
    Consumer,
    collector_config,
    unique_cluster,
    wait_until,
)
from tests.servetools import free_port

pytestmark = pytest.mark.integration


def test_the_idle_watermark_stays_behind_what_may_still_arrive() -> None:
    # read at wall 100.0 a record stamped 50.0 (the writer's clock is 50 s behind ours): 0.6 s later
    # a record on its way for up to 0.35 s was stamped at 50.25 or after
    assert idle_watermark(50.0, 100.0, 100.6, 0.35) == pytest.approx(50.25)
    assert idle_watermark(50.0, 100.0, 100.2, 0.35) == 50.0  # never below the clock


def _rfc5424(stamp: float, n: int) -> bytes:
    text = datetime.fromtimestamp(stamp, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return f"<30>1 {text} node1 cron {100 + n} - - job done marker-{n}\n".encode()


def _rfc3164(stamp: float, n: int) -> bytes:
    text = datetime.fromtimestamp(stamp).strftime("%b %d %H:%M:%S").replace(" 0", "  ", 1)
    return f"<30>{text} node1 cron[{100 + n}]: job done marker-{n}\n".encode()


def _late(received, queues) -> list[tuple[str, float, float]]:
    """Per partition: a record that arrived after a batch whose watermark was past it."""
    with received.lock:
        batches = list(received.times)
    out = []
    for queue in queues:
        mine = [(mark, times) for q, mark, times in batches if q == queue]
        for k, (mark, _) in enumerate(mine):
            later = [t for _, times in mine[k + 1:] for t in times]
            if later and mark > min(later):
                out.append((queue, mark, min(later)))
    return out


def _run(tmp_path: Path, send_round) -> None:
    cluster = unique_cluster()
    port = free_port()
    source = f"  - {{type: syslog_tcp, name: tcp, listen: '127.0.0.1:{port}'}}\n"
    config = collector_config(tmp_path / "c", cluster, source, hostname="colla", batch_delay="200ms")
    with Consumer(cluster) as consumer:
        collector = CollectorProcess(config).start()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                for n in range(3):
                    send_round(sock, n)
                    time.sleep(QUIET + 0.3)  # the idle ticks end: the next round starts afresh
            received = consumer.received
            wait_until(lambda: len(received.homes(lambda e: "marker-" in e.message)) >= 6, 30, "the records")
            assert collector.stop() == 0, collector.log()
        finally:
            collector.kill()
    assert not consumer.errors
    idle = sum(1 for shape in received.shapes if not shape[4])
    assert not _late(received, consumer.topology.queues), (idle, _late(received, consumer.topology.queues))


def test_a_record_a_sender_buffered_briefly_is_not_below_an_idle_watermark(tmp_path: Path) -> None:
    """Precise stamps; the second record of each round was buffered 0.2 s by its sender (less
    than IDLE_MARGIN) and arrives 0.9 s after the first, while the collector idled."""
    assert IDLE_MARGIN > 0.2

    def send_round(sock: socket.socket, n: int) -> None:
        sock.sendall(_rfc5424(time.time(), 2 * n))
        time.sleep(0.9)
        sock.sendall(_rfc5424(time.time() - 0.2, 2 * n + 1))

    _run(tmp_path, send_round)


def test_a_record_stamped_in_whole_seconds_is_not_below_an_idle_watermark(tmp_path: Path) -> None:
    """RFC 3164 stamps: the second record of each round is written 0.8 s after the first, in
    the same second, so its stamp is the first one's: an idle tick of the whole idle time in
    between had told the partitions that second was over."""
    assert COARSE == 1.0

    def send_round(sock: socket.socket, n: int) -> None:
        while not 0.02 <= time.time() % 1 <= 0.1:  # early in a second
            time.sleep(0.01)
        first = time.time()
        sock.sendall(_rfc3164(first, 2 * n))
        time.sleep(0.8)
        sock.sendall(_rfc3164(first, 2 * n + 1))

    _run(tmp_path, send_round)
