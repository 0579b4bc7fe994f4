"""A collector killed with SIGKILL while tailing a file, on the cluster with a PostgreSQL store:
restarted, it resumes from its saved offsets and sends again the records it had published but
not yet committed; they carry the same refs (the file's inode and offset), and the analyzer
recognises them: every line is stored once and the brute-force counts are those of `stackwatch
analyze` over the finished file (real processes, real RabbitMQ and PostgreSQL)."""

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
    analyze_alerts,
    compare,
    file_events,
    same_records,
    sshd_writer,
    stored,
    stored_count,
    tail_source,
)
from tests.pgdb import fresh_database
from tests.servetools import wait_for

pytestmark = pytest.mark.integration

PARTITIONS = 2
def test_records_a_killed_collector_sends_again_are_stored_and_counted_once(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "auth.log"
    log.parent.mkdir()
    log.touch()
    cluster = unique_cluster()
    processes: list[AnalyzerProcess | CollectorProcess] = []
    stop = threading.Event()
    with fresh_database("sw_resend") as url:
        config = analyzer_config(tmp_path / "analyzers", cluster, "a", url, partitions=PARTITIONS)
        try:
            analyzer = AnalyzerProcess(config, "0,1", "a")
            processes.append(analyzer)
            source = tail_source(log)
            # full batches (50 copies) are published at once, their offsets committed with the
            # cut (every 2 s): a kill nearly always leaves records published and not committed
            config_c = collector_config(tmp_path / "c", cluster, source, partitions=PARTITIONS,
                                        hostname="coll", batch_delay="2s", extra=", batch_events: 50")
            collector = CollectorProcess(config_c).start()
            processes.append(collector)
            writer = threading.Thread(target=sshd_writer, args=(log, stop), daemon=True)
            writer.start()
            kills = 0
            # killed until a resend was seen (a kill between a cut's publish and its offsets'
            # commit), at most five times
            while kills < 5 and writer.is_alive():
                time.sleep(1.5)
                collector.kill()
                kills += 1
                collector.start()
                if "sent again by a collector recognised" in analyzer.log():
                    break
            writer.join(60)
            assert not writer.is_alive()
            lines = sum(1 for _ in log.open("rb"))
            assert wait_for(lambda: stored_count(url) >= lines, 120, 0.5), \
                f"{stored_count(url)} of {lines}\n{analyzer.log()}\n{collector.log()}"
            time.sleep(4)  # the idle partitions finish and commit
            assert collector.stop() == 0, collector.log()
            assert analyzer.stop() == 0, analyzer.log()
        finally:
            stop.set()
            for process in processes:
                process.kill()
            set_topology(Topology(cluster, PARTITIONS), create=False)
        kept, alerts = stored(url)
        expected = analyze_alerts(log.parent, config, tmp_path / "analyzed")
    print(f"{kills} kills; {analyzer.log().count('sent again')} turns with resent records")
    same_records(file_events(log.parent), kept)
    compare(expected, alerts, file_events(log.parent))
    assert "sent again by a collector recognised" in analyzer.log(), "a kill left records to send again"
