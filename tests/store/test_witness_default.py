"""Witnesses by default (issue #13): ``store init`` gives a store with no witness a local
append-only witness file outside its data folder, and ``store verify`` reads it by itself."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackwatch.cli.store_cmd import store_group
from stackwatch.store.keys import init_store
from stackwatch.store.sqlite import SQLiteStore
from stackwatch.store.verify import verify_store
from stackwatch.store.witness import CONFIG_FILE, WITNESS_ENV, read_entries
from tests.store.conftest import ledger_events


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(store_group, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def _store(data: Path, n: int = 60, **init: object) -> None:
    init_store(data, background_index=False, **init)  # type: ignore[arg-type]
    with SQLiteStore(data, checkpoint_every=20, background_index=False) as store:
        store.append_events(ledger_events(n))


def test_init_creates_a_witness_beside_the_data_folder(tmp_path: Path) -> None:
    code, out = _cli("init", "--data", str(tmp_path / "d"))
    assert code == 0 and f"file:{tmp_path / 'd.witness.jsonl'}" in out
    assert (tmp_path / "d" / CONFIG_FILE).read_text() == f"file:{tmp_path / 'd.witness.jsonl'}\n"
    assert [e["epoch"] for e in read_entries(tmp_path / "d.witness.jsonl")] == [0]


def test_verify_reads_the_local_witness_and_prints_it_with_the_key_fingerprint(tmp_path: Path) -> None:
    _store(tmp_path / "d")
    code, out = _cli("verify", "--data", str(tmp_path / "d"))
    assert code == 0, out
    assert f"witnesses read: {tmp_path / 'd.witness.jsonl'}" in out
    report = verify_store(tmp_path / "d")
    assert report.witnesses == [str(tmp_path / "d.witness.jsonl")]
    assert f"signing key: {report.signing_keys[0][1]} (from epoch 0)" in out


@pytest.mark.parametrize("drop_config", [False, True], ids=["config-kept", "config-line-deleted"])
def test_the_local_witness_catches_a_store_rebuilt_in_place(tmp_path: Path, drop_config: bool) -> None:
    _store(tmp_path / "d")
    shutil.rmtree(tmp_path / "d")  # wiped and rebuilt with fresh keys and a doctored history
    init_store(tmp_path / "d", background_index=False, local_witness=False)
    with SQLiteStore(tmp_path / "d", checkpoint_every=20, background_index=False) as store:
        store.append_events(ledger_events(40))
    if not drop_config:
        (tmp_path / "d" / CONFIG_FILE).write_text(f"file:{tmp_path / 'd.witness.jsonl'}\n")
    report = verify_store(tmp_path / "d")
    assert report.failed and {p.kind for p in report.problems if p.level == "FAIL"} == {"witness"}


def test_a_deleted_configured_witness_is_a_failure(tmp_path: Path) -> None:
    _store(tmp_path / "d")
    (tmp_path / "d.witness.jsonl").unlink()
    report = verify_store(tmp_path / "d")
    assert report.failed and report.first_bad.kind == "witness"  # type: ignore[union-attr]


def test_witness_file_option_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mnt").mkdir()
    code, _ = _cli("init", "--data", str(tmp_path / "a"), "--witness-file", str(tmp_path / "mnt" / "a.jsonl"))
    assert code == 0
    assert read_entries(tmp_path / "mnt" / "a.jsonl") and not (tmp_path / "a.witness.jsonl").exists()
    monkeypatch.setenv(WITNESS_ENV, str(tmp_path / "mnt" / "b.jsonl"))
    assert _cli("init", "--data", str(tmp_path / "b"))[0] == 0
    assert read_entries(tmp_path / "mnt" / "b.jsonl")


def test_no_local_witness_and_an_off_host_witness_skip_the_default(tmp_path: Path) -> None:
    assert _cli("init", "--data", str(tmp_path / "a"), "--no-local-witness")[0] == 0
    assert _cli("init", "--data", str(tmp_path / "b"), "--witness", "syslog+udp://127.0.0.1:21514")[0] == 0
    assert not (tmp_path / "a.witness.jsonl").exists() and not (tmp_path / "b.witness.jsonl").exists()
    assert not (tmp_path / "a" / CONFIG_FILE).exists()


def test_a_witness_inside_the_data_folder_is_refused(tmp_path: Path) -> None:
    code, out = _cli("init", "--data", str(tmp_path / "d"), "--witness-file", str(tmp_path / "d" / "w.jsonl"))
    assert code == 1 and "inside the data folder" in out
    assert not (tmp_path / "d" / "keys").exists()
