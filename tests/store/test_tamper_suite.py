"""Issue #13's tamper suite: an intruder who knows the format rewrites the store (and its backups)
and covers up as well as it can (tests/store/tamper.py); ``verify --key K0`` must fail every time
and name the first bad record or the missing evidence. The table in docs/store.md lists them."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from stackwatch.core.errors import IntegrityError
from stackwatch.store.backup import MEMBERS, backup, restore
from stackwatch.store.verify import VerifyReport, verify_store
from tests.store.conftest import LedgerStore, copy_store
from tests.store.tamper import BACKUP_TAMPERS, TAMPERS, Attacker, Tamper

BOUNDARIES = (0, 1, 61, 121, 181, 241, 301)  # the template's checkpoint sizes (and 0)
EVIDENCE_KINDS = {"key-file", "missing-key-file", "no-checkpoints", "gap", "bad-seal", "resealed"}
_FROM_THE_START = {"delete_all_checkpoints", "swap_signing_key", "fresh_key"}


def _blame_range(tamper: Tamper) -> range:
    """Where the first bad record may be named: after the last checkpoint left intact before the
    target (from record 1 when every checkpoint is gone or re-signed), at most the target."""
    assert tamper.target is not None
    if {s[0] for s in tamper.steps} & _FROM_THE_START:
        return range(1, tamper.target + 1)
    intact = max(b for b in BOUNDARIES if b < tamper.target)
    return range(intact + 1, tamper.target + 1)


def _assert_caught(tamper: Tamper, first_seq: int | None, first_kind: str) -> None:
    if tamper.target is not None:
        assert first_seq in _blame_range(tamper), (first_seq, first_kind)
    else:
        assert first_seq is not None or first_kind in EVIDENCE_KINDS, first_kind


def _assert_report(tamper: Tamper, report: VerifyReport) -> None:
    if tamper.store_warns:  # exit 1, and it says why the check cannot be complete here
        assert not report.ok() and "standby" in {p.kind for p in report.problems if p.level == "WARN"}
        return
    assert report.failed and not report.ok(), report.problems
    first = report.first_bad
    assert first is not None
    _assert_caught(tamper, first.seq, first.kind)


def _tampered(template: LedgerStore, tamper: Tamper, dest: Path) -> LedgerStore:
    store = copy_store(template, dest)
    Attacker(store.data).run(tamper.steps)
    return store


def test_the_template_verifies_untouched(ledger_template: LedgerStore) -> None:
    report = verify_store(ledger_template.data, initial_keys=[ledger_template.k0])
    assert report.ok(), report.problems
    with sqlite3.connect(ledger_template.data / "stackwatch.db") as conn:
        sizes = [s for (s,) in conn.execute("SELECT size FROM checkpoints ORDER BY epoch")]
    assert (0, *sizes) == BOUNDARIES  # what the table's targets and blame ranges assume


@pytest.mark.parametrize("tamper", TAMPERS, ids=lambda t: t.id)
def test_verify_with_k0_catches(ledger_template: LedgerStore, tmp_path: Path, tamper: Tamper) -> None:
    store = _tampered(ledger_template, tamper, tmp_path / "d")
    _assert_report(tamper, verify_store(store.data, initial_keys=[store.k0]))


@pytest.mark.parametrize("tamper", TAMPERS, ids=lambda t: t.id)
def test_verify_with_k0_and_the_pinned_public_key_catches(
    ledger_template: LedgerStore, tmp_path: Path, tamper: Tamper
) -> None:
    store = _tampered(ledger_template, tamper, tmp_path / "d")
    pinned = bytes.fromhex(store.public_key)
    _assert_report(tamper, verify_store(store.data, initial_keys=[store.k0], public_key=pinned))


CLI_CASES = (
    "flip a byte",
    "edit; rebuilt, checkpoints re-signed and re-sealed",
    "edit; rebuilt, all checkpoints deleted",
    "delete; rebuilt, covering checkpoints deleted, key file rolled back",
    "truncate at a checkpoint boundary; rebuilt, covering checkpoints deleted, key file rolled back",
    "truncate at a checkpoint boundary; rebuilt, covering checkpoints deleted, key file deleted",
    "delete every checkpoint, key file deleted",
    "swap the signing key (all checkpoints re-signed, signers updated)",
)
_BY_NAME = {t.name: t for t in TAMPERS}


@pytest.mark.parametrize("pin", [False, True], ids=["k0", "k0+public-key"])
@pytest.mark.parametrize("name", CLI_CASES)
def test_the_cli_exits_non_zero_and_names_it(
    ledger_template: LedgerStore, tmp_path: Path, name: str, pin: bool
) -> None:
    tamper = _BY_NAME[name]
    store = _tampered(ledger_template, tamper, tmp_path / "d")
    args = ["store", "verify", "--data", str(store.data), "--key", store.k0_text]
    if pin:
        args += ["--public-key", store.public_key]
    result = subprocess.run([sys.executable, "-m", "stackwatch", *args], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "RESULT: FAILED" in result.stdout
    assert re.search(r"^signing key: [0-9a-f]{16} \(from epoch 0\)", result.stdout, re.M), result.stdout
    first = re.search(r"^FIRST BAD RECORD: seq (\d+)", result.stdout, re.M)
    kinds = re.findall(r"^  FAIL: ([a-z-]+)", result.stdout, re.M)
    _assert_caught(tamper, int(first.group(1)) if first else None, kinds[0] if kinds else "")


# --- the same against backups ---


@pytest.fixture(scope="session")
def template_backup(ledger_template: LedgerStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("backup") / "template.bak"
    backup(ledger_template.data, dest)
    return dest


def test_the_untouched_backup_restores(ledger_template: LedgerStore, template_backup: Path,
                                       tmp_path: Path) -> None:
    report = restore(template_backup, tmp_path / "r", initial_keys=[ledger_template.k0])
    assert report.ok(), report.problems
    assert verify_store(tmp_path / "r", initial_keys=[ledger_template.k0]).ok()


def _repack(work: Path, dest: Path) -> None:
    with tarfile.open(dest, "w") as tar:
        for name in MEMBERS:
            if (work / name).exists():
                tar.add(work / name, name)


@pytest.mark.parametrize("tamper", BACKUP_TAMPERS, ids=lambda t: t.id)
def test_restore_with_k0_refuses(
    ledger_template: LedgerStore, template_backup: Path, tmp_path: Path, tamper: Tamper
) -> None:
    work = tmp_path / "unpacked"
    with tarfile.open(template_backup) as tar:
        tar.extractall(work, filter="data")
    Attacker(work, backup=True).run(tamper.steps)
    _repack(work, tmp_path / "evil.bak")
    with pytest.raises(IntegrityError) as refused:
        restore(tmp_path / "evil.bak", tmp_path / "r", initial_keys=[ledger_template.k0])
    assert not (tmp_path / "r").exists()
    message = str(refused.value)
    seq = re.search(r" at seq (\d+):", message)
    if seq is None:  # refused before verification: it names the missing evidence
        assert re.search(r"carries no keys/seal\.epoch|checkpoints\.jsonl lists \d+", message), message
        return
    _assert_caught(tamper, int(seq.group(1)), "")


def test_docs_table_lists_every_tamper() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "store.md").read_text()
    missing = [t.name for t in BACKUP_TAMPERS if f"| {t.name} |" not in doc]
    assert missing == []
