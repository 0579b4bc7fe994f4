"""Issue #13's data-driven tamper suite (tests/store/tamper.py: every attack and cover-up) on a
writer's log in the shared PostgreSQL store (``pg_attack.PGAttacker``): verify, given the
writer's k0 and its keys folder, fails every time and names the first bad record and its block,
or the missing evidence. The standby attacks (no such role here) and the backup ones (a
pg_dump) do not apply."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.pgdb import SERVER
from tests.store.pg_attack import PGAttacker, PGLog, build_pg_template, copy_template
from tests.store.tamper import TAMPERS, Tamper
from tests.store.test_tamper_suite import BOUNDARIES, _assert_report

APPLICABLE = tuple(t for t in TAMPERS if not any(step[0] == "set_role" for step in t.steps))


def _drop(database: str) -> None:
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


@pytest.fixture(scope="module")
def pg_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PGLog]:
    name = f"sw_tamper_tpl_{secrets.token_hex(4)}"
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield build_pg_template(name, tmp_path_factory.mktemp("pg-tamper") / "keys", 300)
    finally:
        _drop(name)


@pytest.fixture
def log(pg_template: PGLog, tmp_path: Path) -> Iterator[PGLog]:
    name = f"sw_tamper_{secrets.token_hex(5)}"
    try:
        yield copy_template(pg_template, name, tmp_path / "keys")
    finally:
        _drop(name)


def test_the_template_verifies_and_has_the_suites_checkpoints(log: PGLog) -> None:
    report = log.verify()
    assert report.ok(), report.problems
    with psycopg.connect(log.url) as conn:
        sizes = [s for (s,) in conn.execute("SELECT size FROM stackwatch.checkpoints ORDER BY epoch")]
        assert conn.execute("SELECT count(*) FROM stackwatch.blocks").fetchone()[0] > len(sizes)
    assert (0, *sizes) == BOUNDARIES


@pytest.mark.parametrize("tamper", APPLICABLE, ids=lambda t: t.id)
def test_verify_with_k0_and_the_keys_folder_catches(log: PGLog, tamper: Tamper) -> None:
    PGAttacker(log).run(tamper.steps)
    report = log.verify()
    _assert_report(tamper, report)
    first = report.first_bad
    if first is not None and first.seq is not None:
        assert first.block is not None  # named at its block too
