"""The store is private (issue #13): its data folder is 0700 and its database, key, witness and
backup files 0600 whatever the umask, because every event is readable from them."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackwatch.cli.store_cmd import store_group
from stackwatch.store.sqlite import SQLiteStore
from tests.store.conftest import ledger_events


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual default: without care files come out world-readable
    yield
    os.umask(old)


def _init(data: Path) -> str:
    result = CliRunner().invoke(store_group, ["init", "--data", str(data)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return next(line.strip() for line in result.output.splitlines() if line.startswith("    "))


def _ingest(data: Path) -> None:
    with SQLiteStore(data, background_index=False, checkpoint_every=20) as store:
        store.append_events(ledger_events(50))
        store.index_pending()


def test_store_init_makes_the_data_folder_and_its_files_private(tmp_path: Path) -> None:
    data = tmp_path / "d"
    _init(data)
    _ingest(data)
    assert _mode(data) == 0o700 and _mode(data / "keys") == 0o700
    files = {p.name: _mode(p) for p in data.iterdir() if p.is_file()}
    assert {"stackwatch.db", "stackwatch-index.db", "witnesses.conf"} <= set(files)
    assert files == dict.fromkeys(files, 0o600)
    assert _mode(data / "keys" / "sign.key") == 0o600 and _mode(data / "keys" / "seal.key") == 0o600


def test_store_init_tightens_an_existing_store(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir(mode=0o755)
    _ingest(data)
    os.chmod(data, 0o755)
    os.chmod(data / "stackwatch.db", 0o644)
    _init(data)
    assert _mode(data) == 0o700 and _mode(data / "stackwatch.db") == 0o600


def test_a_store_made_without_init_is_private_too(tmp_path: Path) -> None:
    _ingest(tmp_path / "d")
    assert _mode(tmp_path / "d") == 0o700
    assert _mode(tmp_path / "d" / "stackwatch.db") == 0o600
    assert _mode(tmp_path / "d" / "stackwatch-index.db") == 0o600


def test_the_local_witness_backups_and_restored_stores_are_private(tmp_path: Path) -> None:
    data = tmp_path / "d"
    k0 = _init(data)
    _ingest(data)
    assert _mode(tmp_path / "d.witness.jsonl") == 0o600
    runner = CliRunner()
    assert runner.invoke(store_group, ["backup", "--data", str(data), str(tmp_path / "b.tar")]).exit_code == 0
    assert _mode(tmp_path / "b.tar") == 0o600
    args = ["restore", str(tmp_path / "b.tar"), str(tmp_path / "r"), "--key", k0]
    result = runner.invoke(store_group, args)
    assert result.exit_code == 0, result.output
    assert _mode(tmp_path / "r") == 0o700 and _mode(tmp_path / "r" / "stackwatch.db") == 0o600
