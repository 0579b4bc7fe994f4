"""``stackwatch report auth`` over the store seeded through the real pipeline."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner

from stackwatch.cli.main import cli


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, ["report", "auth", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_text_report_names_attackers_and_targeted_accounts(seeded_dir: Path) -> None:
    out = run("--data", str(seeded_dir))
    assert "Failures by source IP" in out and "Failures by account" in out
    line = next(row for row in out.splitlines() if row.startswith("203.0.113.45"))
    assert " 40 " in line and "brute_force" in line and "anna.web" in line
    assert "* admin" in out and "targeted" in out
    assert "Targeted accounts: " in out


def test_json_report(seeded_dir: Path) -> None:
    data = json.loads(run("--data", str(seeded_dir), "--format", "json"))
    ips = {r["ip"]: r for r in data["source_ips"]}
    assert ips["198.51.100.23"]["classification"] == "spraying"
    assert ips["198.51.100.23"]["first_seen"] < ips["198.51.100.23"]["last_seen"]


def test_csv_report(seeded_dir: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(run("--data", str(seeded_dir), "--format", "csv"))))
    assert {r["entity"] for r in rows} == {"ip", "account"}
    assert next(r for r in rows if r["name"] == "admin")["privileged"] == "yes"


def test_since_is_counted_back_from_the_newest_event(seeded_dir: Path) -> None:
    recent = json.loads(run("--data", str(seeded_dir), "--format", "json", "--since", "30m"))
    everything = json.loads(run("--data", str(seeded_dir), "--format", "json", "--since", "all"))
    assert 0 < recent["totals"]["attempts"] < everything["totals"]["attempts"]
    assert recent["totals"]["failures"] == 0  # the attacks all happen in the first hour


def test_accounts_restrict_the_report(seeded_dir: Path) -> None:
    data = json.loads(run("--data", str(seeded_dir), "--format", "json", "--accounts", "anna.web"))
    assert [r["account"] for r in data["accounts"]] == ["anna.web"]


def test_bad_since_is_a_clear_error(seeded_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "auth", "--data", str(seeded_dir), "--since", "last tuesday"])
    assert result.exit_code != 0 and "--since" in result.output


def test_yaml_lists_a_row_per_ip_and_account(seeded_dir: Path) -> None:
    import yaml

    rows = yaml.safe_load(run("--data", str(seeded_dir), "-f", "yaml"))
    attacker = next(r for r in rows if r["entity"] == "ip" and r["name"] == "203.0.113.45")
    assert attacker["failures"] == 40 and attacker["classification"] == "brute_force"


def test_value_with_columns(seeded_dir: Path) -> None:
    lines = run("--data", str(seeded_dir), "-f", "value", "-c", "name", "-c", "failures").splitlines()
    assert "203.0.113.45 40" in lines


def test_columns_do_not_apply_to_the_text_report(seeded_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "auth", "--data", str(seeded_dir), "-c", "name"])
    assert result.exit_code == 2 and "-f table, csv, json, yaml or value" in result.output
