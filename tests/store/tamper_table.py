"""Print the tamper table of docs/store.md from a real run of the suite's attacks:
``python -m tests.store.tamper_table``. Each row says what verify --key K0 (store) and
restore --key K0 (backup) reported first; the tests (test_tamper_suite.py) assert every one fails."""

from __future__ import annotations

import re
import tarfile
import tempfile
from pathlib import Path

from stackwatch.core.errors import IntegrityError
from stackwatch.store.backup import MEMBERS, backup, restore
from stackwatch.store.verify import verify_store
from tests.store.conftest import build_ledger_store, copy_store
from tests.store.tamper import BACKUP_TAMPERS, TAMPERS, Attacker, Tamper


def _store_result(template, tamper: Tamper, tmp: Path) -> str:  # type: ignore[no-untyped-def]
    store = copy_store(template, tmp / "s")
    Attacker(store.data).run(tamper.steps)
    report = verify_store(store.data, initial_keys=[store.k0])
    first = report.first_bad
    if report.ok():
        return "**NOT CAUGHT**"
    if first is None:
        warning = next(p for p in report.problems if p.level == "WARN")
        return f"WARNING `{warning.kind}` (exit 1)"
    return f"`{first.kind}`" + (f" seq {first.seq}" if first.seq is not None else "")


def _backup_result(template, archive: Path, tamper: Tamper, tmp: Path) -> str:  # type: ignore[no-untyped-def]
    work = tmp / "b"
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    Attacker(work, backup=True).run(tamper.steps)
    with tarfile.open(tmp / "evil.bak", "w") as tar:
        for name in MEMBERS:
            if (work / name).exists():
                tar.add(work / name, name)
    try:
        restore(tmp / "evil.bak", tmp / "r", initial_keys=[template.k0])
    except IntegrityError as exc:
        m = re.search(r"FAIL ([a-z-]+)(?: at seq (\d+))?", str(exc))
        if m is None:
            missing_proof = "seal.epoch" in str(exc)
            return "refused: " + ("no epoch proof" if missing_proof else "lists differ from database")
        return f"`{m.group(1)}`" + (f" seq {m.group(2)}" if m.group(2) else "")
    return "**NOT CAUGHT**"


def main() -> None:
    with tempfile.TemporaryDirectory() as base:
        template = build_ledger_store(Path(base) / "template", 300)
        archive = Path(base) / "template.bak"
        backup(template.data, archive)
        store_names = {t.name for t in TAMPERS}
        print("| tamper (then the cover-up) | `verify --key K0` reports first "
              "| `restore --key K0` refuses with |")
        print("|---|---|---|")
        for tamper in BACKUP_TAMPERS:
            with tempfile.TemporaryDirectory(dir=base) as a, tempfile.TemporaryDirectory(dir=base) as b:
                store = _store_result(template, tamper, Path(a)) if tamper.name in store_names else "n/a"
                print(f"| {tamper.name} | {store} | {_backup_result(template, archive, tamper, Path(b))} |")


if __name__ == "__main__":
    main()
