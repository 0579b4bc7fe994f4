"""Spike baselines across real restarts of `stackwatch serve`: a first serve learns two
projects' hourly rates from two days of nova notifications and is stopped; a second serve,
started on the same state_dir, sees one project burst (10x its baseline, below the absolute
learning threshold: without the restored baseline it would be a new project's quiet learning
hour) and alerts on the ratio, while the steady CI project stays quiet."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from stackwatch.scenario.bg_openstack import instance_payload, notification
from stackwatch.store import AlertQuery, EventQuery, open_store
from tests.servetools import ServeProcess, serve_config, wait_for

pytestmark = pytest.mark.integration

RULES = Path(__file__).parents[2] / "src" / "stackwatch" / "rules" / "usage"
BURST_PROJECT = "1fe2ffac-49eb-424c-b097-2a7dab91d46a"
HOUR_MS = 3_600_000


def _hour(rng: random.Random, start_ms: int, project: str, count: int) -> list[str]:
    lines = []
    for i in range(count):
        t = start_ms + (i * HOUR_MS) // count + 1000
        inst = f"{project}-{t}"
        payload = instance_payload(t, inst, inst, "cmp1", f"u-{project}", project, ("m1.small", 2048, 20, 1),
                                   "active", t)
        lines.append(notification(t, rng, "compute.cmp1", "compute.instance.create.end", payload,
                                  f"req-{inst}", f"u-{project}", project))
    return lines


def _stored(data: Path) -> int:
    if not (data / "stackwatch.db").exists():
        return 0
    with open_store(data, read_only=True) as store:
        return len(store.search_events(EventQuery(limit=10_000, service="nova-compute")))


def _alerts(data: Path) -> list:
    with open_store(data, read_only=True) as store:
        return [s.alert for s in store.alerts(AlertQuery(rule=BURST_PROJECT))]


@pytest.mark.parametrize("ending", ["stop", "kill -9"])
def test_a_burst_right_after_a_restart_alerts_on_the_learned_ratio(tmp_path: Path, ending: str) -> None:
    rng = random.Random(18)
    log = tmp_path / "logs" / "notifications.jsonl"
    log.parent.mkdir()
    source = f"  - {{type: file, name: bus, paths: ['{log}'], start_at: beginning, poll_interval: 50ms}}\n"
    # kill -9: what the periodic snapshot (every second here) wrote is all there is
    config = serve_config(tmp_path, source, extra="limits: {baselines_interval: 1}\n")
    snapshot_path = tmp_path / "state" / "detect" / "baselines.json"
    (tmp_path / "rules" / "burst.yaml").write_text((RULES / "resource_burst_project.yaml").read_text())
    start = (int(time.time()) // 3600 - 3 * 24) * HOUR_MS  # three days ago, on the hour
    learned = []
    for hour in range(48):  # two days: p-burst 2 an hour, p-ci 8 an hour
        at = start + hour * HOUR_MS
        learned += _hour(rng, at, "p-burst", 2) + _hour(rng, at, "p-ci", 8)
    learned.sort(key=lambda line: json.loads(json.loads(line)["oslo.message"])["timestamp"])
    log.write_text("\n".join(learned) + "\n")
    serve = ServeProcess(config).start()
    try:
        wait_for(lambda: _stored(tmp_path / "data") >= len(learned), 60, 0.2)
        if ending == "kill -9":
            learned_at = time.time()
            wait_for(lambda: snapshot_path.exists() and snapshot_path.stat().st_mtime > learned_at + 0.1, 10)
            serve.kill()
    finally:
        if ending == "stop":
            assert serve.stop() == 0, serve.log()
    snapshot = json.loads(snapshot_path.read_text())
    assert sorted(row[1][0] for row in snapshot["rules"][BURST_PROJECT]["keys"]) == ["p-burst", "p-ci"]
    assert _alerts(tmp_path / "data") == []

    after = start + 48 * HOUR_MS
    burst = _hour(rng, after, "p-burst", 20)  # 10x its baseline; the learning threshold is 30
    steady = [line for h in range(3) for line in _hour(rng, after + h * HOUR_MS, "p-ci", 9)]
    with log.open("a") as handle:
        handle.write("\n".join(burst + steady) + "\n")
    serve = ServeProcess(config).start()
    try:
        wait_for(lambda: "spike baselines: 2 keys restored" in serve.log(), 5)
        wait_for(lambda: _stored(tmp_path / "data") >= len(learned) + len(burst) + len(steady), 60, 0.2)
        wait_for(lambda: _alerts(tmp_path / "data"), 20, 0.2)
        time.sleep(1.0)  # anything else it would raise is committed by now
    finally:
        assert serve.stop() == 0, serve.log()
    alerts = _alerts(tmp_path / "data")
    assert len(alerts) == 1, [a.summary for a in alerts]
    alert = alerts[0]
    assert "p-burst" in alert.summary and "p-ci" not in alert.summary
    assert alert.details["ratio"] >= 8 and "learning" not in alert.details, alert.details
