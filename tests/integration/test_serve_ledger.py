"""The orphan ledger across a kill -9 of `stackwatch serve`: it is saved periodically
(limits.baselines_interval), not only at a clean stop, so the instances a project still had
when the service died are known after it restarts."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from stackwatch.scenario.bg_openstack import instance_payload, notification
from tests.servetools import ServeProcess, serve_config, wait_for

pytestmark = pytest.mark.integration

PROJECT = "7c1d0c55-4a43-4f8e-9a0e-2d6f10b1c0aa"


def _created(rng: random.Random, start_ms: int, count: int) -> list[str]:
    lines = []
    for i in range(count):
        t = start_ms + i * 1000
        inst = f"vm-{i:03d}"
        payload = instance_payload(t, inst, inst, "cmp1", "u-owner", PROJECT, ("m1.small", 2048, 20, 1),
                                   "active", t)
        lines.append(notification(t, rng, "compute.cmp1", "compute.instance.create.end", payload,
                                  f"req-{inst}", "u-owner", PROJECT))
    return lines


def _ledger_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return sorted(r["id"] for r in json.loads(path.read_bytes())["resources"] if r["type"] == "instance")


def test_the_orphan_ledger_written_while_serving_survives_a_kill(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "notifications.jsonl"
    log.parent.mkdir()
    source = f"  - {{type: file, name: bus, paths: ['{log}'], start_at: beginning, poll_interval: 50ms}}\n"
    config = serve_config(tmp_path, source, extra="limits: {baselines_interval: 1}\n")
    ledger = tmp_path / "state" / "respond" / "ledger.json"
    log.write_text("\n".join(_created(random.Random(5), int(time.time() - 3600) * 1000, 12)) + "\n")
    serve = ServeProcess(config).start()
    try:
        expected = [f"vm-{i:03d}" for i in range(12)]
        wait_for(lambda: _ledger_ids(ledger) == expected, 30, 0.2)
    finally:
        serve.kill()  # no clean stop: only the periodic save wrote it
    assert _ledger_ids(ledger) == expected
    assert not [p for p in ledger.parent.iterdir() if p.name != "ledger.json"]  # no temporary left
