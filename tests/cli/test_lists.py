"""``stackwatch alerts`` and ``stackwatch sources`` over the store seeded through the pipeline."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner

from stackwatch.cli.main import cli


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_alerts_lists_the_stored_alerts_newest_first(seeded_dir: Path) -> None:
    alerts = json.loads(run("alerts", "--data", str(seeded_dir), "-f", "json"))
    assert alerts and {"ID", "Severity", "Status", "Summary", "Last seen"} <= set(alerts[0])
    assert [a["Last seen"] for a in alerts] == sorted((a["Last seen"] for a in alerts), reverse=True)
    assert any("203.0.113.45" in a["Summary"] for a in alerts)


def test_alerts_filter_by_severity(seeded_dir: Path) -> None:
    values = run("alerts", "--data", str(seeded_dir), "--severity", "critical",
                 "-f", "value", "-c", "Severity")
    assert values and set(values.split()) == {"critical"}


def test_sources_lists_hosts_and_services_with_counts(seeded_dir: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(run("sources", "--data", str(seeded_dir), "-f", "csv"))))
    assert ("ctl1", "keystone") in {(r["Host"], r["Service"]) for r in rows}
    assert all(int(r["Events"]) > 0 for r in rows)


def test_an_unknown_column_is_one_clear_error(seeded_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["sources", "--data", str(seeded_dir), "-c", "Nope"])
    assert result.exit_code == 2
    assert "Error: unknown column 'Nope' (columns: Host, Service, Events" in result.output


def test_a_missing_store_is_one_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["alerts", "--data", str(tmp_path / "none")])
    assert result.exit_code == 1 and result.output.strip() == f"Error: no store at {tmp_path / 'none'}"
