"""``store migrate --to postgresql://``'s edge cases: an appender during the move, a retried
move (the shared parts are not copied twice), a final verify that fails (k0 still given)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from stackwatch.core.errors import StoreError
from stackwatch.scenario import demo_dataset
from stackwatch.store import AlertQuery, open_store
from stackwatch.store.postgres import move
from stackwatch.store.seal import parse_initial_key
from tests.pgdb import fresh_database
from tests.store.test_postgres_cli import cli, k0_of


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, str]:
    """An analyzed folder with triage history and a silence; (folder, its k0). One per test:
    a folder's witness (beside it) follows its checkpoints, a copy would not match it."""
    root = tmp_path
    data = root / "folder"
    k0 = k0_of(cli("store", "init", "--data", str(data)).stdout)
    cli("analyze", str(demo_dataset(root / "logs", seed=5)), "--data", str(data))
    with open_store(data) as store:
        first = store.alerts(AlertQuery(limit=1))[0]
        store.set_alert_status(first.id, "acknowledged", actor="ops", comment="mine")
        store.create_silence(first.alert.rule, "", ends=datetime.now(UTC) + timedelta(days=3), actor="ops",
                             reason="maintenance")
    return data, k0


@pytest.fixture
def copy(folder: tuple[Path, str]) -> Path:
    return folder[0]


@pytest.fixture
def url() -> Iterator[str]:
    with fresh_database() as made:
        yield made


def _counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url.split("?")[0]) as conn:
        silences = conn.execute("SELECT count(*) FROM stackwatch.silences").fetchone()
        history = conn.execute("SELECT count(*) FROM stackwatch.alert_history").fetchone()
    assert silences and history
    return int(silences[0]), int(history[0])


def test_the_folder_stays_locked_from_seal_to_copy(copy: Path, url: str, folder: tuple[Path, str],
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An analyzer starting on the folder during the move is refused: no record can be
    appended between the sealed, verified checkpoint and the copy."""
    refused: list[str] = []
    copy_records = move._copy_records

    def appender_first(data: Path, target: Any) -> int:
        try:
            with open_store(data, background_index=False) as other:
                other.checkpoint()  # takes the append lock, as an appending analyzer does
        except StoreError as exc:
            refused.append(str(exc))
        return copy_records(data, target)

    monkeypatch.setattr(move, "_copy_records", appender_first)
    move.move_to_postgres(copy, url, keys=tmp_path / "k", writer="w",
                          initial_keys=[parse_initial_key(folder[1])])
    assert refused and "another process is appending" in refused[0]


def test_a_second_move_does_not_copy_silences_or_history_twice(copy: Path, url: str, tmp_path: Path) -> None:
    """The documented retry (another --writer, another keys folder) copies the shared parts
    again: by identity, nothing is added twice."""
    move.move_to_postgres(copy, url, keys=tmp_path / "k1", writer="w1")
    once = _counts(url)
    assert once[0] == 1 and once[1] >= 1
    move.move_to_postgres(copy, url, keys=tmp_path / "k2", writer="w2")
    assert _counts(url) == once


def test_a_failed_final_verify_still_gives_k0(copy: Path, url: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The new log is tampered with before the final verify: the error says so and carries the
    new writer's k0 (shown once), with which the operator verifies the log."""
    from stackwatch.store.postgres import verify

    real = verify.verify_postgres

    def tampered_first(*args: Any, **kwargs: Any) -> Any:
        with psycopg.connect(url) as conn:
            conn.execute("UPDATE stackwatch.blocks SET data = overlay(data placing '\\x00'::bytea from 20) "
                         "WHERE first_seq = (SELECT max(first_seq) FROM stackwatch.blocks)")
        return real(*args, **kwargs)

    monkeypatch.setattr(verify, "verify_postgres", tampered_first)
    with pytest.raises(StoreError) as failed:
        move.move_to_postgres(copy, url, keys=tmp_path / "k", writer="w")
    assert "does not verify" in str(failed.value)
    assert (tmp_path / "k" / "keys").exists()  # the log's keys stay with it
    k0 = str(failed.value).rsplit(": ", 1)[1]
    assert len(parse_initial_key(k0)) == 32
