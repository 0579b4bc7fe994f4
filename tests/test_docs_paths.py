"""README, docs and the systemd unit name the same configuration file."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG_PATH = re.compile(r"/etc/stackwatch/[\w.-]+\.(?:yaml|yml|env)")


def test_readme_docs_and_unit_agree_on_the_config_path():
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "deploy").iterdir())]
    found = {(path.name, match) for path in files for match in CONFIG_PATH.findall(path.read_text())}
    yaml_paths = {match for _, match in found if not match.endswith(".env")}
    assert yaml_paths == {"/etc/stackwatch/stackwatch.yaml"}, sorted(found)
    assert {name for name, match in found if match.endswith(".yaml")} >= {"README.md", "stackwatch.service"}
