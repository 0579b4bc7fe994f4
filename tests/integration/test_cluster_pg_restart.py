"""PostgreSQL restarted under load beneath two analyzers (real processes, real RabbitMQ, a
private PostgreSQL server stopped for a few seconds and started again): the analyzers keep the
batches unacknowledged and retry their commits until the server is back; every line the
collector read from the file is stored, once. The analyzers get their store from `serve --data`."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from stackwatch.cluster.topology import Topology
from tests.cluster.clustertools import (
    AnalyzerProcess,
    CollectorProcess,
    analyzer_config,
    collector_config,
    set_topology,
    unique_cluster,
)
from tests.integration.cluster_pg import (
    file_events,
    same_records,
    sshd_writer,
    stored,
    stored_count,
    tail_source,
)
from tests.pgserver import private_server

pytestmark = pytest.mark.integration

PARTITIONS = 2


def test_analyzers_wait_out_a_postgresql_restart_and_lose_nothing(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "auth.log"
    log.parent.mkdir()
    log.touch()
    cluster = unique_cluster()
    processes: list[AnalyzerProcess | CollectorProcess] = []
    stop = threading.Event()
    with private_server() as server:
        url = server.url
        try:
            # the configuration names an embedded store; `serve --data` points the analyzers at PostgreSQL
            unused = tmp_path / "embedded"
            analyzers = [AnalyzerProcess(analyzer_config(tmp_path / "analyzers", cluster, m, str(unused),
                                                         partitions=PARTITIONS), prefer, m, data=url)
                         for m, prefer in (("a", "0"), ("b", "1"))]
            processes += analyzers
            source = tail_source(log)
            collector = CollectorProcess(collector_config(tmp_path / "c", cluster, source,
                                                          partitions=PARTITIONS, hostname="coll")).start()
            processes.append(collector)
            writer = threading.Thread(target=sshd_writer, args=(log, stop), daemon=True)
            writer.start()
            deadline = time.monotonic() + 30
            while stored_count(url) < 500 and time.monotonic() < deadline:
                time.sleep(0.2)
            before = stored_count(url)
            assert before >= 500, "".join(p.log() for p in processes)
            server.stop()  # under load: the writer keeps appending, the collector keeps publishing
            time.sleep(4)
            server.start()
            writer.join(60)
            lines = sum(1 for _ in log.open("rb"))
            deadline = time.monotonic() + 120
            while stored_count(url) < lines and time.monotonic() < deadline:
                time.sleep(0.5)
            assert stored_count(url) >= lines, f"{stored_count(url)} of {lines}\n" + \
                "".join(p.log() for p in processes)
            time.sleep(3)
            for process in processes:
                assert process.stop() == 0, process.log()
        finally:
            stop.set()
            for process in processes:
                process.kill()
            set_topology(Topology(cluster, PARTITIONS), create=False)
        kept, _ = stored(url)
    retried = sum(a.log().count("commit failed, will retry") for a in analyzers)
    print(f"{before} stored before the restart, {len(kept)} after; {retried} commits retried")
    assert retried, "the analyzers met the stopped server"
    assert not any("given up" in a.log() for a in analyzers), "a restart is transient: retried, not given up"
    assert not unused.exists(), "--data replaced the configured store"
    same_records(file_events(log.parent), kept)
