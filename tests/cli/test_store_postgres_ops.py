"""``stackwatch store retention / consistency / verify --public-key`` on a postgresql:// store,
and the commands that are the database's job there (migrate, replicate, standby, promote)
refused with what to run instead. A real PostgreSQL, a database of this module's own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackwatch.cli.main import cli
from stackwatch.store import auditor
from stackwatch.store.postgres import open_store
from stackwatch.store.postgres.keys import init_writer
from stackwatch.testing import make_event
from tests.pgdb import fresh_database


def event(n: int) -> object:
    return make_event(service="sshd", message=f"Failed password for user{n % 7}", ref=f"secure:{n}")


@dataclass
class Shared:
    url: str
    k0: dict[str, str]
    public: dict[str, str]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    root = tmp_path_factory.mktemp("pgops-cli")
    with fresh_database() as database:
        url = f"{database}?schema=cli_ops"
        k0: dict[str, str] = {}
        public: dict[str, str] = {}
        for name in ("alpha", "beta"):
            result = init_writer(url, writer=name, keys=root / name)
            k0[name], public[name] = result.initial_key, result.public_key
            with open_store(url, writer=name, keys=root / name) as store:
                for batch in range(3):
                    store.append_events([event(batch * 30 + i) for i in range(30)])
                    store.checkpoint()
        yield Shared(url, k0, public)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def verify_args(shared: Shared) -> list[str]:
    return ["store", "verify", "--data", shared.url, *(f"--key={n}={k}" for n, k in shared.k0.items())]


def test_public_key_pinned_per_writer(shared: Shared) -> None:
    code, out = run(*verify_args(shared), f"--public-key=alpha={shared.public['alpha']}",
                    f"--public-key=beta={shared.public['beta']}")
    assert code == 0, out
    code, out = run(*verify_args(shared), f"--public-key=beta={shared.public['alpha']}")
    assert code == 1 and "wrong-key" in out and "FIRST BAD" not in out.split("writer beta")[0], out
    code, out = run(*verify_args(shared), f"--public-key=gamma={shared.public['alpha']}")
    assert code == 2 and "--public-key names writers this store does not have: gamma" in out


def test_consistency_needs_the_writer_and_proves_its_log(shared: Shared, tmp_path: Path) -> None:
    code, out = run("store", "consistency", "--data", shared.url, "31", "61")
    assert code == 1 and "give --writer" in out
    proof = tmp_path / "c.json"
    code, out = run("store", "consistency", "--data", shared.url, "--writer", "beta", "31", "91",
                    "-o", str(proof))
    assert code == 0, out
    doc = json.loads(proof.read_text())
    assert doc["type"] == "block-consistency"
    auditor.audit(doc, trusted_key=bytes.fromhex(shared.public["beta"]))
    with pytest.raises(auditor.AuditFailure):
        auditor.audit(doc, trusted_key=bytes.fromhex(shared.public["alpha"]))


@pytest.mark.parametrize(("command", "says"), [
    (["migrate"], "nothing to migrate"),
    (["replicate", "--listen", "127.0.0.1:9999", "--secret-file", "SECRET"], "pg_basebackup -R"),
    (["standby", "--primary", "db1:5432", "--secret-file", "SECRET"], "pg_basebackup -h PRIMARY"),
    (["promote"], "pg_ctl promote"),
])
def test_the_databases_own_jobs_are_refused_with_what_to_run(shared: Shared, tmp_path: Path,
                                                             command: list[str], says: str) -> None:
    secret = tmp_path / "secret"
    secret.write_text("x" * 32)
    args = [str(secret) if a == "SECRET" else a for a in command]
    code, out = run("store", args[0], "--data", shared.url, *args[1:])
    assert code == 2 and says in out, out


def test_retention_expires_each_writers_oldest_blocks_and_verify_passes(shared: Shared) -> None:
    """Last: it expires records of the module's store. The size asked for is below anything: each
    log expires up to its newest checkpoint."""
    code, out = run("store", "retention", "--data", shared.url, "--max-size", "1KB", "--writer", "beta")
    assert code == 0, out
    assert "writer beta: expired records 1..91" in out and "alpha" not in out
    code, out = run("store", "retention", "--data", shared.url, "--max-size", "1KB")
    assert code == 0, out
    assert "writer alpha: expired records 1..91" in out and "writer beta: nothing to expire" in out
    code, out = run(*verify_args(shared))
    assert code == 0 and "RESULT: OK" in out, out
    code, out = run("store", "retention", "--data", shared.url, "--max-age", "90d", "--writer", "gamma")
    assert code == 1 and "no writer gamma" in out
