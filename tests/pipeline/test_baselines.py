"""The spike rules' baselines across restarts (pipeline/baselines.py): a second engine built on
the first one's snapshot judges a key by its learned rate at once, and a snapshot that is not
ours, of another version, corrupt or taken under other rule parameters is refused with a log
line and learning starts again (nothing crashes, nothing half-restored)."""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stackwatch.core.alert import Alert
from stackwatch.core.event import Event
from stackwatch.detect.engine import Engine
from stackwatch.detect.loader import builtin_rules
from stackwatch.detect.model import Rule
from stackwatch.pipeline import baselines
from stackwatch.testing import make_event

BURST_PROJECT = "1fe2ffac-49eb-424c-b097-2a7dab91d46a"  # rules/usage/resource_burst_project.yaml
RULE = next(r for r in builtin_rules() if r.id == BURST_PROJECT)
T0 = datetime(2026, 3, 2, tzinfo=UTC)


def _creates(project: str, start: datetime, count: int, span: timedelta = timedelta(hours=1)) -> list[Event]:
    return [make_event(time=start + span * (i + 0.5) / count, service="nova-compute", kind="notification",
                       action="compute.instance.create.end", host="cmp1",
                       initiator={"project": project, "id": f"u-{project}"},
                       target={"type": "instance", "id": f"{project}-{start.timestamp()}-{i}"})
            for i in range(count)]


def _learned(per_hour: int, days: int = 2, project: str = "p-1") -> list[Event]:
    return [e for h in range(24 * days) for e in _creates(project, T0 + timedelta(hours=h), per_hour)]


def _run(engine: Engine, events: list[Event]) -> list[Alert]:
    for event in events:
        engine.process(event)
    return [a for a in engine.alerts() if a.rule == BURST_PROJECT]


BURST = _creates("p-1", T0 + timedelta(days=2, hours=1), 20)  # 10x a baseline of 2, below the 30 of learning


def test_a_restarted_engine_judges_a_burst_by_the_learned_baseline(tmp_path: Path) -> None:
    first = Engine([RULE])
    assert _run(first, _learned(2)) == []
    assert baselines.save(first, tmp_path) == 1
    second = Engine([RULE])
    assert baselines.load(second, tmp_path) == 1
    alerts = _run(second, BURST)
    assert len(alerts) == 1
    assert alerts[0].details["ratio"] >= 8 and "learning" not in alerts[0].details
    # without the snapshot the same burst is a new project's learning hour: quiet
    assert _run(Engine([RULE]), BURST) == []


def test_a_steady_project_stays_quiet_after_a_restart(tmp_path: Path) -> None:
    first = Engine([RULE])
    _run(first, _learned(8))
    baselines.save(first, tmp_path)
    second = Engine([RULE])
    baselines.load(second, tmp_path)
    assert _run(second, [e for h in range(24) for e in
                         _creates("p-1", T0 + timedelta(days=2, hours=h), 9)]) == []


def test_two_field_keys_and_the_down_direction_survive(tmp_path: Path) -> None:
    rule = dataclasses.replace(RULE, params=dataclasses.replace(RULE.params, direction="both"))
    first = Engine([rule])
    _run(first, _learned(12) + _learned(12, project="p-2"))
    baselines.save(first, tmp_path)
    doc = json.loads(baselines.baselines_path(tmp_path).read_text())
    assert doc["format"] == baselines.FORMAT and doc["version"] == baselines.VERSION
    assert sorted(row[1] for row in doc["rules"][BURST_PROJECT]["keys"]) == [["p-1", "instance"],
                                                                             ["p-2", "instance"]]
    second = Engine([rule])
    restart = T0 + timedelta(days=2, minutes=30)
    assert baselines.load(second, tmp_path, now=restart.timestamp()) == 2
    # p-1 goes quiet after the restart: the wall-clock check of the restored key notices, one
    # window after the restart (the records queued while serve was down come first)
    early = second.tick(T0 + timedelta(days=2, hours=1, minutes=1))
    assert [a for a in early if a.rule == BURST_PROJECT] == []
    _run(second, _creates("p-2", T0 + timedelta(days=2), 12, timedelta(minutes=90)))
    quiet = second.tick(T0 + timedelta(days=2, hours=1, minutes=31))
    # p-1 (silent since the restart) is reported, p-2 (busy again) is not
    assert [(a.details["direction"], a.summary) for a in quiet if a.rule == BURST_PROJECT] == [
        ("down", "project p-1 created 0 instances in 1h (its baseline: 12.0 an hour)")]


def _refused(tmp_path: Path, caplog: pytest.LogCaptureFixture, text: bytes, why: str) -> None:
    path = baselines.baselines_path(tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text)
    engine = Engine([RULE])
    with caplog.at_level(logging.ERROR, logger="stackwatch.pipeline.baselines"):
        assert baselines.load(engine, tmp_path) == 0
    assert why in caplog.text and "learns again" in caplog.text
    assert not path.exists() and path.with_name(path.name + ".refused").read_bytes() == text
    assert _run(engine, BURST) == []  # learning again: no baseline, no ratio
    caplog.clear()


def test_a_corrupt_or_foreign_file_is_refused_and_learning_restarts(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = Engine([RULE])
    _run(first, _learned(2))
    baselines.save(first, tmp_path)
    good = baselines.baselines_path(tmp_path).read_bytes()
    _refused(tmp_path, caplog, good[: len(good) // 2], "refused")
    _refused(tmp_path, caplog, b'{"resources": []}', "not a stackwatch spike baselines snapshot")
    newer = json.loads(good)
    newer["version"] = baselines.VERSION + 1
    _refused(tmp_path, caplog, json.dumps(newer).encode(), "snapshot version 2")


def test_a_rule_whose_window_changed_learns_again_alone(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = Engine([RULE])
    _run(first, _learned(2))
    baselines.save(first, tmp_path)
    changed: Rule = dataclasses.replace(RULE, window=1800.0)
    second = Engine([changed])
    with caplog.at_level(logging.WARNING, logger="stackwatch.pipeline.baselines"):
        assert baselines.load(second, tmp_path) == 0
    assert "another window" in caplog.text
    assert second.state_stats()[BURST_PROJECT]["keys"] == 0


def test_a_malformed_row_restores_nothing_of_its_rule(tmp_path: Path) -> None:
    first = Engine([RULE])
    _run(first, _learned(2) + _learned(2, project="p-2"))
    baselines.save(first, tmp_path)
    path = baselines.baselines_path(tmp_path)
    doc = json.loads(path.read_text())
    doc["rules"][BURST_PROJECT]["keys"][1][4] = "NaN"
    path.write_text(json.dumps(doc))
    second = Engine([RULE])
    assert baselines.load(second, tmp_path) == 0
    assert second.state_stats()[BURST_PROJECT]["keys"] == 0


def test_a_snapshot_written_later_holds_the_engine_as_it_was_when_taken(tmp_path: Path) -> None:
    # the live service snapshots on its loop and writes from a thread while the engine goes on
    engine = Engine([RULE])
    _run(engine, _learned(2))
    doc = baselines.snapshot(engine)
    assert doc is not None
    _run(engine, _learned(2, days=1, project="p-2") + BURST)  # changes after the snapshot
    assert baselines.write(doc, tmp_path) == 1
    rows = json.loads(baselines.baselines_path(tmp_path).read_bytes())["rules"][BURST_PROJECT]["keys"]
    assert [row[1][0] for row in rows] == ["p-1"]
    restored = Engine([RULE])
    assert baselines.load(restored, tmp_path) == 1


def test_an_engine_without_spike_rules_has_no_snapshot(tmp_path: Path) -> None:
    assert baselines.snapshot(Engine([])) is None
    assert baselines.save(Engine([]), tmp_path) == 0
    assert not baselines.baselines_path(tmp_path).exists()


@pytest.mark.parametrize("rows", [0, 1, baselines.ROWS_PER_CHUNK, 2 * baselines.ROWS_PER_CHUNK + 3])
def test_a_snapshot_written_in_pieces_is_the_json_of_the_whole(tmp_path: Path, rows: int) -> None:
    keys = [[float(i), ["p", "u"], i] for i in range(rows)]
    doc = {"format": baselines.FORMAT, "version": baselines.VERSION, "saved": 1.5,
           "rules": {"r-1": {"window": 3600, "evicted": 0, "keys": keys},
                     "r-2": {"keys": [[1.0, 'k"\u00e9', 2]]}}}
    baselines.write(doc, tmp_path)
    assert json.loads(baselines.baselines_path(tmp_path).read_bytes()) == doc
