"""Analyzing the same files again stores nothing twice; what a file gained since is stored:
into a data folder (``ingested.db``) and into the shared PostgreSQL store (its
``ingested_files`` table, per writer)."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackwatch.cli.analyze import run_analyze
from stackwatch.store import open_store
from tests.pgdb import fresh_database

SSH = ("Dec 10 06:55:{sec:02d} LabSZ sshd[24200]: Failed password for invalid user u{n} "
       "from 173.234.31.186 port 38926 ssh2\n")


def lines(start: int, stop: int) -> str:
    return "".join(SSH.format(sec=n % 60, n=n) for n in range(start, stop))


def stored_events(data: str) -> int:
    with open_store(data, read_only=True) as store:
        return store.counts().events


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture(params=["folder", "postgresql"])
def data(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where ``analyze --data`` stores: a data folder, or a schema of the shared store (one writer)."""
    if request.param == "folder":
        return str(tmp_path / "data")
    schema = f"i_{request.node.name[-24:].lower().replace('[', '_').replace(']', '')}_{os.getpid()}"
    return f"{request.getfixturevalue('pg_database')}?schema={schema}&writer=ana1"


@pytest.fixture()
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "logs"
    (root / "ctl1").mkdir(parents=True)
    (root / "ctl1" / "auth.log").write_text(lines(0, 40))
    (root / "ctl2").mkdir()
    (root / "ctl2" / "auth.log.1.gz").write_bytes(gzip.compress(lines(100, 130).encode()))
    return root


def test_analyzing_the_same_archive_twice_stores_each_event_once(archive: Path, data: str, capsys):
    first = run_analyze([str(archive)], data=data)
    assert (first.stored, first.already_stored) == (70, 0)
    second = run_analyze([str(archive)], data=data)
    assert (second.stored, second.already_stored) == (0, 70)
    assert stored_events(data) == 70
    assert [(a.rule, a.key, a.count) for a in second.alerts] == [
        (a.rule, a.key, a.count) for a in first.alerts]
    assert "already stored: 70 events" in capsys.readouterr().err


def test_a_file_that_grew_stores_only_its_new_records(archive: Path, data: str):
    run_analyze([str(archive)], data=data)
    with (archive / "ctl1" / "auth.log").open("a") as handle:
        handle.write(lines(40, 45))
    again = run_analyze([str(archive)], data=data)
    assert (again.stored, again.already_stored) == (5, 70)
    assert stored_events(data) == 75


def test_a_file_rewritten_under_the_same_name_is_stored_as_new(archive: Path, data: str):
    run_analyze([str(archive)], data=data)
    (archive / "ctl1" / "auth.log").write_text(lines(200, 240))
    again = run_analyze([str(archive)], data=data)
    assert (again.stored, again.already_stored) == (40, 30)
    assert stored_events(data) == 110


def test_a_lone_file_named_again_is_recognised(archive: Path, data: str):
    path = archive / "ctl2" / "auth.log.1.gz"
    run_analyze([str(path)], data=data)
    again = run_analyze([str(path)], data=data)
    assert (again.stored, again.already_stored) == (0, 30)


def test_on_the_shared_store_the_records_are_the_writers(archive: Path, pg_database: str) -> None:
    """Another writer's path is another host's file: analyzed by a second writer, the archive
    is stored again (in that writer's log); the first writer's runs still recognise it."""
    url = f"{pg_database}?schema=i_two_writers_{os.getpid()}"
    assert run_analyze([str(archive)], data=url + "&writer=ana1").stored == 70
    other = run_analyze([str(archive)], data=url + "&writer=ana2")
    assert (other.stored, other.already_stored) == (70, 0)
    again = run_analyze([str(archive)], data=url + "&writer=ana1")
    assert (again.stored, again.already_stored) == (0, 70)
    assert stored_events(url) == 140
