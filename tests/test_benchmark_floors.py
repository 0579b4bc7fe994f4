"""The floor stages do the work they claim: every line read, stored, chained."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest
from benchmarks import floors

from stackwatch.scenario import generate


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes]]:
    root = tmp_path_factory.mktemp("floors") / "corpus"
    generate(root, seed=3, lines=3000)
    lines = [line for path in sorted(root.rglob("*")) if path.is_file() and path.name != "manifest.json"
             for line in path.read_bytes().splitlines()]
    return root, lines


def test_floor_events_are_every_line_in_time_order(corpus):
    root, lines = corpus
    events = list(floors.floor_events(root))
    assert len(events) == len(lines)
    assert sorted(e.raw_bytes() for e in events) == sorted(lines)
    assert all(a.time <= b.time for a, b in itertools.pairwise(events))


def test_wide_row_floor_stores_every_line_with_the_stores_chain(corpus, tmp_path):
    root, lines = corpus
    assert floors.stage_floor_wide_row(root, tmp_path) == (len(lines), len(lines))
    conn = sqlite3.connect(tmp_path / "floor-wide.db")
    raws = [bytes(raw) for (raw,) in conn.execute("SELECT raw FROM events ORDER BY seq")]
    assert sorted(raws) == sorted(lines)
    chains = [bytes(c) for (c,) in conn.execute("SELECT chain FROM events ORDER BY seq")]
    assert len(set(chains)) == len(chains) and all(len(c) == 32 for c in chains)


def test_meta_row_floor_keeps_every_line_in_its_segment(corpus, tmp_path):
    root, lines = corpus
    assert floors.stage_floor_meta_row(root, tmp_path) == (len(lines), len(lines))
    segment = (tmp_path / "floor-meta.segment").read_bytes()
    conn = sqlite3.connect(tmp_path / "floor-meta.db")
    offsets = [o for (o,) in conn.execute("SELECT offset FROM events ORDER BY seq")]
    stored = [segment[a:b - 1] for a, b in zip(offsets, [*offsets[1:], len(segment)], strict=True)]
    assert sorted(stored) == sorted(lines)
