"""Analyzing the same files again stores nothing twice; what a file gained since is stored."""

from __future__ import annotations

import gzip
import sqlite3
from pathlib import Path

import pytest

from stackwatch.cli.analyze import run_analyze

SSH = ("Dec 10 06:55:{sec:02d} LabSZ sshd[24200]: Failed password for invalid user u{n} "
       "from 173.234.31.186 port 38926 ssh2\n")


def lines(start: int, stop: int) -> str:
    return "".join(SSH.format(sec=n % 60, n=n) for n in range(start, stop))


def stored_events(data: Path) -> int:
    with sqlite3.connect(data / "stackwatch.db") as conn:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])


@pytest.fixture()
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "logs"
    (root / "ctl1").mkdir(parents=True)
    (root / "ctl1" / "auth.log").write_text(lines(0, 40))
    (root / "ctl2").mkdir()
    (root / "ctl2" / "auth.log.1.gz").write_bytes(gzip.compress(lines(100, 130).encode()))
    return root


def test_analyzing_the_same_archive_twice_stores_each_event_once(archive: Path, tmp_path: Path, capsys):
    data = tmp_path / "data"
    first = run_analyze([str(archive)], data=str(data))
    assert (first.stored, first.already_stored) == (70, 0)
    second = run_analyze([str(archive)], data=str(data))
    assert (second.stored, second.already_stored) == (0, 70)
    assert stored_events(data) == 70
    assert [(a.rule, a.key, a.count) for a in second.alerts] == [
        (a.rule, a.key, a.count) for a in first.alerts]
    assert "already stored: 70 events" in capsys.readouterr().err


def test_a_file_that_grew_stores_only_its_new_records(archive: Path, tmp_path: Path):
    data = tmp_path / "data"
    run_analyze([str(archive)], data=str(data))
    with (archive / "ctl1" / "auth.log").open("a") as handle:
        handle.write(lines(40, 45))
    again = run_analyze([str(archive)], data=str(data))
    assert (again.stored, again.already_stored) == (5, 70)
    assert stored_events(data) == 75


def test_a_file_rewritten_under_the_same_name_is_stored_as_new(archive: Path, tmp_path: Path):
    data = tmp_path / "data"
    run_analyze([str(archive)], data=str(data))
    (archive / "ctl1" / "auth.log").write_text(lines(200, 240))
    again = run_analyze([str(archive)], data=str(data))
    assert (again.stored, again.already_stored) == (40, 30)
    assert stored_events(data) == 110


def test_a_lone_file_named_again_is_recognised(archive: Path, tmp_path: Path):
    data = tmp_path / "data"
    path = archive / "ctl2" / "auth.log.1.gz"
    run_analyze([str(path)], data=str(data))
    again = run_analyze([str(path)], data=str(data))
    assert (again.stored, again.already_stored) == (0, 30)
