"""core/atomic: snapshot files written whole or not at all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackwatch.core.atomic import atomic_json_write, atomic_write


def test_a_json_snapshot_is_written_into_a_folder_it_creates(tmp_path: Path) -> None:
    target = tmp_path / "state" / "respond" / "snapshot.json"
    written = atomic_json_write(target, {"keys": [["a", 1], ["b", 2]]})
    assert json.loads(target.read_bytes()) == {"keys": [["a", 1], ["b", 2]]}
    assert written == target.stat().st_size


def test_chunks_are_written_in_order(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    assert atomic_write(target, [b"[1,", b"2,", b"3]"]) == 7
    assert json.loads(target.read_bytes()) == [1, 2, 3]


def test_a_write_that_fails_midway_leaves_the_old_snapshot_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "snapshot.json"
    atomic_json_write(target, {"version": 1})

    def failing() -> Iterator[bytes]:
        yield b'{"version": 2, "keys": ['
        raise OSError("no space left on device")

    with pytest.raises(OSError, match="no space"):
        atomic_write(target, failing())
    assert json.loads(target.read_bytes()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["snapshot.json"]
