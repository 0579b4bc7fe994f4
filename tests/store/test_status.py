"""The integrity status the dashboard shows comes from the real store: checkpoints, the last
`store verify` outcome, and inclusion proofs the standalone auditor accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from stackwatch.cli.store_cmd import store_group
from stackwatch.store import open_store
from stackwatch.testing import make_event


def test_status_shows_checkpoints_and_the_last_verification(tmp_path: Path):
    data = tmp_path / "data"
    runner = CliRunner()
    assert runner.invoke(store_group, ["init", "--data", str(data)]).exit_code == 0
    with open_store(data) as store:
        store.append_events([make_event(message=f"m{i}", host="h", service="s") for i in range(50)])
        store.flush()
        assert store.checkpoint() is not None
        status = store.integrity_status()
        proof = store.inclusion_proof(7)
    assert status["configured"] is True
    assert status["last_checkpoint"]["size"] == 51  # the store.init admin event, then 50
    assert status["last_verification"] is None
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(json.dumps(proof))
    audited = subprocess.run([sys.executable, "-m", "stackwatch.store.auditor", str(proof_file)],
                             capture_output=True, text=True, check=False)
    assert audited.returncode == 0, audited.stdout + audited.stderr

    result = runner.invoke(store_group, ["verify", "--data", str(data), "--allow-unsealed-tail"])
    assert result.exit_code == 0, result.output
    with open_store(data) as store:
        verification = store.integrity_status()["last_verification"]
    assert verification["ok"] is True and verification["checked"] >= 50


def test_a_store_without_keys_is_not_configured(tmp_path: Path):
    with open_store(tmp_path / "data") as store:
        store.append_events([make_event(message="m")])
        store.flush()
        assert store.integrity_status()["configured"] is False
        assert store.inclusion_proof(1) is None
