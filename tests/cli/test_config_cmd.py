"""``stackwatch config check`` reports every problem of a file, one line each."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from stackwatch.cli.main import cli


def test_config_check_lists_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "stackwatch.yaml"
    path.write_text("hostnme: x\nsources:\n  - {type: nosuch}\n  - {type: file, paths: [relative.log]}\n")
    result = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[:3] == [line for line in lines[:3] if line.startswith(f"{path}:")]
    assert [line.split(":")[1] for line in lines[:3]] == ["1", "3", "4"]
    assert lines[-1] == f"Error: {path}: 3 problems"
