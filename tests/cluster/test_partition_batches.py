"""A collector's batches are per partition, not per routing bucket (real process, real RabbitMQ):
a burst over many buckets travels as a few messages per partition, each to the queue of the
partition its buckets belong to (``topology.partition_map``), an event at most once per
partition and stored once; and every partition hears the collector's watermark, in empty
batches, while the collector idles, for about ``reorder.QUIET`` after its last record only."""

from __future__ import annotations

import itertools
import socket
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stackwatch.cluster.reorder import QUIET
from stackwatch.cluster.topology import Topology
from tests.cluster.clustertools import (
    CollectorProcess,
    Consumer,
    collector_config,
    markers,
    unique_cluster,
    wait_until,
)
from tests.servetools import free_port

pytestmark = pytest.mark.integration

LINES = 400
HOSTS = 50


def _lines() -> bytes:
    # RFC 5424, stamped to the microsecond: a collector of whole-second stamps sends no idle
    # ticks (its watermark cannot pass a second its sources may still deliver records of;
    # tests/cluster/test_idle_watermark.py)
    stamp = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    out = []
    for n in range(LINES):
        host = f"node{n % HOSTS}"
        if n % 4 == 0:  # failed logins: routed by address and by user as well
            out.append(f"<38>1 {stamp} {host} sshd {100 + n} - - Failed password for user{n % 7} from "
                       f"198.51.100.{n % 50} port 22 ssh2 marker-{n}")
        else:
            out.append(f"<30>1 {stamp} {host} cron {100 + n} - - job done marker-{n}")
    return ("\n".join(out) + "\n").encode()


def test_one_batch_per_partition_per_cut_and_watermarks_for_idle_partitions(tmp_path: Path) -> None:
    cluster = unique_cluster()
    port = free_port()
    topology = Topology(cluster, 4)
    source = f"  - {{type: syslog_tcp, name: tcp, listen: '127.0.0.1:{port}'}}\n"
    config = collector_config(tmp_path / "c", cluster, source, hostname="colla", batch_delay="200ms")
    with Consumer(cluster) as consumer:
        collector = CollectorProcess(config).start()
        try:
            sent_at = time.time()
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(_lines())
            received = consumer.received
            wait_until(lambda: len(markers(received.homes(), "marker")) >= LINES, 30, "every home copy")
            time.sleep(QUIET + 1.5)  # the idle ticks, and their end
            assert collector.stop() == 0, collector.log()
        finally:
            collector.kill()
    assert not consumer.errors
    shapes = list(received.shapes)
    data = [s for s in shapes if s[4]]
    idle = [s for s in shapes if not s[4]]
    for queue, _, partition, _, _, _ in shapes:  # each batch in the queue of the partition it names
        assert partition == topology.partition_of(queue)
    # stored once; copies of one event in one partition merged into one
    counts = Counter(markers(received.homes(), "marker"))
    assert len(counts) == LINES and set(counts.values()) == {1}
    per_partition = Counter((queue, event.ref) for queue, _, event, _, _ in received.copies())
    assert set(per_partition.values()) == {1}
    # one message per partition per cut (cuts are 200 ms apart), not one per bucket: the burst
    # spans a cut or two, so a few messages per partition
    for partition in range(4):
        sent = sorted(s[5] for s in data if s[2] == partition)
        assert all(later - earlier >= 0.15 for earlier, later in itertools.pairwise(sent)), sent
    assert len(data) <= 4 * 6, [(s[0], s[4]) for s in data]
    assert sum(s[4] for s in data) >= LINES
    # every partition heard the collector's watermark at or past the records' time
    newest = max(event.time.timestamp() for event in received.homes())
    assert {s[2] for s in idle} == {0, 1, 2, 3}
    for partition in range(4):
        marks = [s[3] for s in shapes if s[2] == partition]
        assert max(marks) >= newest
        assert marks == sorted(marks)  # a collector's watermark never goes back
    # idle ticks stop about QUIET after the last record
    last_data = max(s[5] for s in data)
    assert all(s[5] <= last_data + QUIET + 0.5 for s in idle), [round(s[5] - last_data, 2) for s in idle]
    assert last_data >= sent_at


def test_a_batch_sent_early_because_it_filled_claims_no_time_its_collector_has_not_sent(
        tmp_path: Path) -> None:
    """A batch that fills while a read's records are being routed goes out at once; its
    watermark must not be the newest time of the whole read (records of that read still to come,
    older than it, would reach the partition after it and be taken as late: other collectors'
    copies released ahead of them). Checked per partition: no later batch holds a record older
    than an earlier batch's watermark."""
    cluster = unique_cluster()
    port = free_port()
    start = datetime.now().timestamp() - 120
    lines = []
    for n in range(LINES):  # a second every 8 lines: a read spans many seconds
        stamp = datetime.fromtimestamp(start + n // 8).strftime("%b %d %H:%M:%S").replace(" 0", "  ", 1)
        lines.append(f"<30>{stamp} node{n % HOSTS} cron[{100 + n}]: job done marker-{n}")
    source = f"  - {{type: syslog_tcp, name: tcp, listen: '127.0.0.1:{port}'}}\n"
    config = collector_config(tmp_path / "c", cluster, source, hostname="colla", batch_delay="500ms",
                              extra=", batch_events: 5")
    with Consumer(cluster) as consumer:
        collector = CollectorProcess(config).start()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(("\n".join(lines) + "\n").encode())
            received = consumer.received
            wait_until(lambda: len(markers(received.homes(), "marker")) >= LINES, 30, "every home copy")
            assert collector.stop() == 0, collector.log()
        finally:
            collector.kill()
    assert not consumer.errors
    with received.lock:
        batches = list(received.times)
    early = 0
    for queue in {q for q, _, _ in batches}:
        mine = [(mark, times) for q, mark, times in batches if q == queue and times]
        for k, (mark, _) in enumerate(mine):
            later = [t for _, times in mine[k + 1:] for t in times]
            if later:
                early += 1
                assert mark <= min(later), (queue, k, mark, min(later))
    assert early > 4 * 3  # batches did fill and go out ahead of the rest of their read
