"""Issue #13's data-driven tamper suite (tests/store/tamper.py: every attack and cover-up) run
on a record format 2 store by ``BlockAttacker``: ``verify --key K0`` fails every time and names
the first bad record (and its block) or the missing evidence (issue #16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackwatch.store.verify import verify_store
from tests.store.blocks_attack import BlockAttacker, build_block_store
from tests.store.conftest import LedgerStore, copy_store
from tests.store.tamper import TAMPERS, Tamper
from tests.store.test_tamper_suite import BOUNDARIES, _assert_report


@pytest.fixture(scope="module")
def block_template(tmp_path_factory: pytest.TempPathFactory) -> LedgerStore:
    return build_block_store(tmp_path_factory.mktemp("blocks") / "data", 300)


def test_the_block_template_verifies_and_has_the_suites_checkpoints(block_template: LedgerStore) -> None:
    import sqlite3

    report = verify_store(block_template.data, initial_keys=[block_template.k0])
    assert report.ok(), report.problems
    with sqlite3.connect(block_template.data / "stackwatch.db") as conn:
        sizes = [s for (s,) in conn.execute("SELECT size FROM checkpoints ORDER BY epoch")]
        assert conn.execute("SELECT count(*) FROM blocks").fetchone()[0] > len(sizes)
    assert (0, *sizes) == BOUNDARIES


@pytest.mark.parametrize("pin", [False, True], ids=["k0", "k0+public-key"])
@pytest.mark.parametrize("tamper", TAMPERS, ids=lambda t: t.id)
def test_verify_with_k0_catches_on_blocks(
    block_template: LedgerStore, tmp_path: Path, tamper: Tamper, pin: bool
) -> None:
    store = copy_store(block_template, tmp_path / "d")
    BlockAttacker(store.data).run(tamper.steps)
    report = verify_store(
        store.data, initial_keys=[store.k0], public_key=bytes.fromhex(store.public_key) if pin else None
    )
    _assert_report(tamper, report)
    first = report.first_bad
    if first is not None and first.seq is not None and not tamper.store_warns:
        assert first.block is not None  # format 2 names the block too
