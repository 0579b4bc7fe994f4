"""One ingestion core: the same records give the same alerts through `stackwatch analyze`
and through `stackwatch serve` (a file-tail source), both real processes with one
configuration file, a rule switched off in the web UI (rule-state.json by each store) and an
expected source. Before pipeline/engine.engine_for, analyze ignored all three."""

from __future__ import annotations

import json
import shutil
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

