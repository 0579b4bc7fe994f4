"""The evidence of how many epochs were sealed (store/sealed_epochs.py): the sealing key file must hold
the key its epoch claims (checked from k0), a restored store's epoch proof must be genuine, and an
initialised store without either has lost its evidence."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from stackwatch.store.record_ledger import key_paths
from stackwatch.store.seal import epoch_proof, key_for_epoch, write_sealing_key
from stackwatch.store.sealed_epochs import (
    MAX_EPOCH,
    epoch_evidence,
    epoch_proof_doc,
    epoch_proof_path,
)

K0 = bytes(range(32))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "keys").mkdir(mode=0o700)
    return tmp_path


def _key_file(data: Path, epoch: int, key: bytes) -> None:
    write_sealing_key(key_paths(data)[2], epoch, key)


def _kinds(evidence) -> list[str]:  # type: ignore[no-untyped-def]
    return [kind for _, kind, _ in evidence.problems]


def test_a_genuine_key_file_gives_the_sealer_epoch(data: Path) -> None:
    _key_file(data, 7, key_for_epoch(K0, 7))
    evidence = epoch_evidence(data, [0], [K0], standby=False, initialised=True)
    assert (evidence.exact, evidence.problems) == (7, [])


def test_a_key_file_rolled_back_is_caught_and_its_true_epoch_found(data: Path) -> None:
    _key_file(data, 3, key_for_epoch(K0, 7))  # epoch field rewritten, the later key kept
    evidence = epoch_evidence(data, [0], [K0], standby=False, initialised=True)
    assert _kinds(evidence) == ["key-file"] and evidence.exact == 7
    assert "holds the key of epoch 7" in evidence.problems[0][2]


def test_a_key_file_that_no_epoch_of_k0_made_is_caught(data: Path) -> None:
    _key_file(data, 0, os.urandom(32))
    evidence = epoch_evidence(data, [0], [K0], standby=False, initialised=True)
    assert _kinds(evidence) == ["key-file"] and evidence.exact is None


def test_an_absurd_epoch_is_refused_without_deriving_it(data: Path) -> None:
    _key_file(data, MAX_EPOCH + 1, os.urandom(32))
    assert _kinds(epoch_evidence(data, [0], [K0], standby=False, initialised=True)) == ["key-file"]


def test_without_k0_the_key_file_epoch_is_taken_unchecked(data: Path) -> None:
    _key_file(data, 3, key_for_epoch(K0, 7))
    evidence = epoch_evidence(data, [0], [], standby=False, initialised=True)
    assert (evidence.exact, evidence.problems) == (3, [])


@pytest.mark.parametrize("initialised", [True, False])
def test_a_missing_key_file_fails_only_on_an_initialised_store(data: Path, initialised: bool) -> None:
    evidence = epoch_evidence(data, [0], [], standby=False, initialised=initialised)
    assert _kinds(evidence) == (["missing-key-file"] if initialised else [])


def test_a_standby_key_file_belongs_to_the_next_segment(data: Path) -> None:
    standby_k0 = os.urandom(32)
    _key_file(data, 0, standby_k0)
    assert epoch_evidence(data, [0], [K0], standby=True, initialised=True).problems == []
    checked = epoch_evidence(data, [0], [K0, standby_k0], standby=True, initialised=True)
    assert (checked.exact, checked.problems) == (0, [])


def _proof(data: Path, epoch: int, claimed: int | None = None, from_epoch: int = 0) -> None:
    doc = epoch_proof_doc(epoch if claimed is None else claimed, epoch_proof(epoch, key_for_epoch(K0, epoch)),
                          from_epoch)
    epoch_proof_path(data).write_text(json.dumps(doc))


def test_a_genuine_epoch_proof_is_a_lower_bound(data: Path) -> None:
    _proof(data, 6)
    evidence = epoch_evidence(data, [0], [K0], standby=False, initialised=True)
    assert (evidence.at_least, evidence.exact, evidence.problems) == (6, None, [])


@pytest.mark.parametrize(("claimed", "from_epoch"), [(4, 0), (6, 2)], ids=["rolled-back", "wrong-segment"])
def test_a_rewritten_epoch_proof_is_caught(data: Path, claimed: int, from_epoch: int) -> None:
    _proof(data, 6, claimed, from_epoch)
    evidence = epoch_evidence(data, [0], [K0], standby=False, initialised=True)
    assert _kinds(evidence) == ["key-file"] and evidence.at_least is None


def test_junk_in_the_epoch_proof_is_caught(data: Path) -> None:
    epoch_proof_path(data).write_text("{not json")
    assert _kinds(epoch_evidence(data, [0], [K0], standby=False, initialised=True)) == ["key-file"]


def test_a_primary_relabelled_standby_is_caught_by_its_own_key(data: Path) -> None:
    _key_file(data, 4, key_for_epoch(K0, 4))
    evidence = epoch_evidence(data, [0], [K0], standby=True, initialised=True)
    assert _kinds(evidence) == ["role"] and evidence.exact == 4


def test_a_standby_without_its_key_file_has_lost_evidence(data: Path) -> None:
    assert _kinds(epoch_evidence(data, [0], [K0], standby=True, initialised=True)) == ["missing-key-file"]


def test_a_restored_store_keeps_its_epoch_proof_and_verifies_after_new_keys(tmp_path: Path) -> None:
    from stackwatch.store.backup import backup, restore
    from stackwatch.store.keys import init_store
    from stackwatch.store.seal import parse_initial_key
    from stackwatch.store.sqlite import SQLiteStore
    from stackwatch.store.verify import verify_store
    from tests.store.conftest import build_ledger_store, ledger_events

    store = build_ledger_store(tmp_path / "d", 100)
    backup(store.data, tmp_path / "b.tar")
    restore(tmp_path / "b.tar", tmp_path / "r", initial_keys=[store.k0])
    assert epoch_proof_path(tmp_path / "r").exists() and not key_paths(tmp_path / "r")[2].exists()
    assert verify_store(tmp_path / "r", initial_keys=[store.k0]).ok()
    k1 = parse_initial_key(init_store(tmp_path / "r", background_index=False).initial_key)
    with SQLiteStore(tmp_path / "r", checkpoint_every=20, background_index=False) as restored:
        restored.append_events(ledger_events(30))
    report = verify_store(tmp_path / "r", initial_keys=[store.k0, k1])
    assert report.ok(), report.problems
    assert [e for e, _ in report.signing_keys] == [0, 3]  # the restored history, then the new keys
