"""One ingestion core: the same records give the same alerts through `stackwatch analyze`,
through `stackwatch serve` (a file-tail source) and through the cluster roles (`serve --role
collector` tailing the file, two `serve --role analyzer` on RabbitMQ), all real processes with
one configuration file, a rule switched off in the web UI (rule-state.json by each store) and
an expected source. Before pipeline/engine.engine_for, analyze ignored all three."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from stackwatch.detect.loader import builtin_rules
from stackwatch.detect.overrides import RuleState
from stackwatch.scenario import demo_dataset
from stackwatch.store import open_store
from tests.servetools import ServeProcess, wait_for

pytestmark = pytest.mark.integration

TARGETED_ACCOUNT = "826401d4"  # prefix of a built-in rule the demo's notifications raise
WALL_CLOCK = {"logging.silence", "monitor.heartbeat"}  # judged on serve's clock, not the records'


def _key(alert: dict) -> tuple:
    details = alert.get("details") or {}
    return (alert["rule"], alert["key"], alert["category"], alert["severity"], details.get("events"),
            alert["time"], tuple(e["raw"] for e in alert["evidence"]))  # refs: lines vs byte offsets


def test_the_same_records_give_the_same_alerts_through_analyze_and_serve(tmp_path: Path) -> None:
    logs = demo_dataset(tmp_path / "demo", seed=7)
    log = tmp_path / "notifications.json"
    shutil.copy(logs / "ctl1" / "notifications.json", log)
    lines = sum(1 for _ in log.open("rb"))
    served, analyzed = tmp_path / "served", tmp_path / "analyzed"
    for folder in (served, analyzed):
        folder.mkdir()
    rule_ids = [r.id for r in builtin_rules().rules if r.id.startswith(TARGETED_ACCOUNT)]
    assert len(rule_ids) == 1
    for folder in (served, analyzed):  # switched off in each store's web UI
        RuleState.in_data_dir(folder).set_enabled(rule_ids[0], False, "test")
    config = tmp_path / "stackwatch.yaml"
    config.write_text(
        f"hostname: mon\nstate_dir: '{tmp_path / 'state'}'\nstore: {{url: '{served}'}}\n"
        "expected_sources:\n  - {host: ctl9, service: keystone}\n"
        f"sources:\n  - {{type: file, name: logs, paths: ['{log}'], start_at: beginning,"
        " poll_interval: 50ms}\n")

    done = subprocess.run([sys.executable, "-m", "stackwatch", "analyze", str(log), "--config", str(config),
                           "--data", str(analyzed), "--jobs", "2", "--format", "json"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    from_analyze = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    serve = ServeProcess(config).start()
    try:
        def stored() -> int:
            with open_store(served, read_only=True) as store:
                return store.counts().events
        wait_for(lambda: stored() >= lines, 60, 0.2)
    finally:
        assert serve.stop() == 0, serve.log()
    with open_store(served, read_only=True) as store:
        from_serve = [json.loads(msgspec.json.encode(stored.alert)) for stored in store.alerts()]

    assert from_analyze, "the demo's notifications raise alerts"
    assert not any(a["rule"] == rule_ids[0] for a in from_analyze + from_serve), "the web UI's switch"
    # the expected source that never spoke is missed by both (on the records' time in analyze)
    assert any(a["category"] == "logging.silence" and "ctl9" in a["key"] for a in from_analyze)
    assert sorted(_key(a) for a in from_analyze if a["category"] not in WALL_CLOCK) == \
        sorted(_key(a) for a in from_serve if a["category"] not in WALL_CLOCK)


def test_the_same_records_give_the_same_alerts_through_analyze_and_the_cluster_roles(tmp_path: Path) -> None:
    import asyncio
    import os
    import uuid

    import aio_pika

    from stackwatch.cluster.topology import Topology, delete
    from tests.cluster.clustertools import CollectorProcess

    logs = demo_dataset(tmp_path / "demo", seed=7)
    log = tmp_path / "notifications.json"
    shutil.copy(logs / "ctl1" / "notifications.json", log)
    lines = sum(1 for _ in log.open("rb"))
    data, analyzed = tmp_path / "cluster-data", tmp_path / "analyzed"
    rule_ids = [r.id for r in builtin_rules().rules if r.id.startswith(TARGETED_ACCOUNT)]
    for folder in (data, analyzed):
        folder.mkdir()
        RuleState.in_data_dir(folder).set_enabled(rule_ids[0], False, "test")
    cluster = "t" + uuid.uuid4().hex[:12]
    config = tmp_path / "stackwatch.yaml"
    config.write_text(
        f"hostname: mon\nstate_dir: '{tmp_path / 'state'}'\nstore: {{url: '{data}'}}\n"
        "expected_sources:\n  - {host: ctl9, service: keystone}\n"
        "limits: {tick_interval: 1h, heartbeat_interval: 0}\n"  # the records' own time, as analyze
        f"cluster: {{name: {cluster}, amqp_url: 'amqp://guest@127.0.0.1:5672/', partitions: 2, buckets: 64,"
        " batch_delay: 100ms}\n"
        f"sources:\n  - {{type: file, name: logs, paths: ['{log}'], start_at: beginning,"
        " poll_interval: 50ms}\n")
    done = subprocess.run([sys.executable, "-m", "stackwatch", "analyze", str(log), "--config", str(config),
                           "--data", str(analyzed), "--format", "json"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    from_analyze = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    def role(*args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "stackwatch", "serve", "--config", str(config), *args],
                                env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stored() -> int:
        total = 0
        for folder in data.glob("p*"):
            try:
                with open_store(folder, read_only=True) as store:
                    total += store.counts().events
            except Exception:  # being created: asked again
                return 0
        return total

    analyzers = [role("--role", "analyzer", "--prefer", "0"), role("--role", "analyzer", "--prefer", "1")]
    collector = CollectorProcess(config)
    try:
        import time

        time.sleep(3)  # both analyzers subscribed (and standby for the other's partition)
        collector.start()
        wait_for(lambda: stored() >= lines, 90, 0.3)
        time.sleep(3)  # idle partitions finish (held correlation groups, the last tick) and commit
        assert collector.stop() == 0, collector.log()
        for proc in analyzers:
            proc.send_signal(signal.SIGTERM)
        for proc in analyzers:
            assert proc.wait(30) == 0, proc.stderr.read().decode() if proc.stderr else ""
    finally:
        collector.kill()
        for proc in analyzers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

        async def cleanup() -> None:
            connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
            async with connection:
                await delete(connection, Topology(cluster, 2))
        asyncio.run(cleanup())

    from_cluster = []
    for folder in sorted(data.glob("p*")):
        with open_store(folder, read_only=True) as store:
            from_cluster += [json.loads(msgspec.json.encode(stored.alert)) for stored in store.alerts()]
    assert stored() == lines, "every record stored once"
    assert not any(a["rule"] == rule_ids[0] for a in from_cluster), "the web UI's switch"
    idents = [(a["rule"], a["key"]) for a in from_cluster]
    assert len(idents) == len(set(idents)), "each alert raised once, in one partition"
    # the store keeps every evidence record an upsert carried: compare the rest, evidence included
    assert sorted(_key(a)[:-1] for a in from_analyze if a["category"] not in WALL_CLOCK) == \
        sorted(_key(a)[:-1] for a in from_cluster if a["category"] not in WALL_CLOCK)
