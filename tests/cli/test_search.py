"""``stackwatch search`` over the store seeded through the real pipeline."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner

from stackwatch.cli.main import cli

IP = "203.0.113.45"


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["search", *args])
    assert result.exit_code == code, result.output
    return result.output


def test_a_table_of_hits_and_the_total(seeded_dir: Path) -> None:
    out = run(f"ip:{IP} AND outcome:failure", "--data", str(seeded_dir), "--limit", "5").splitlines()
    assert [cell.strip() for cell in out[1].split("|")[1:4]] == ["Time", "Host", "Service"]
    rows = [line for line in out[3:] if line.startswith("|")]
    assert len(rows) == 5 and all(IP in line for line in rows)
    assert out[-1] == "-- 5 of 120 events (times UTC)"


def test_csv_with_chosen_columns_reads_back(seeded_dir: Path) -> None:
    out = run(f"ip:{IP}", "--data", str(seeded_dir), "--limit", "4", "-f", "csv", "-c", "Source IP",
              "-c", "Seq")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 4 and {r["Source IP"] for r in rows} == {IP} and all(r["Seq"].isdigit() for r in rows)


def test_value_format_prints_bare_values_without_the_total(seeded_dir: Path) -> None:
    out = run(f"ip:{IP}", "--data", str(seeded_dir), "--limit", "3", "-f", "value", "-c", "Source IP")
    assert out.splitlines() == [IP] * 3


def test_an_unknown_column_is_a_usage_error(seeded_dir: Path) -> None:
    assert "unknown column 'Nope'" in run("x", "--data", str(seeded_dir), "-c", "Nope", code=2)


def test_json_lines_one_event_each(seeded_dir: Path) -> None:
    rows = [json.loads(line) for line in run("user:adm*", "--data", str(seeded_dir), "--json").splitlines()]
    assert rows and all(r["user"].startswith("adm") for r in rows)
    assert set(rows[0]) == {"seq", "time", "host", "service", "severity", "kind", "action", "outcome", "user",
                            "source_ip", "request_id", "message"}
    assert [r["time"] for r in rows] == sorted((r["time"] for r in rows), reverse=True)


def test_since_and_until_bound_the_hits(seeded_dir: Path) -> None:
    out = run("action:authenticate", "--data", str(seeded_dir), "--since", "2026-03-02T08:00",
              "--until", "2026-03-02T08:10", "--oldest-first", "--json")
    times = [json.loads(line)["time"] for line in out.splitlines()]
    assert times and times == sorted(times)
    assert all("2026-03-02T08:00" <= t < "2026-03-02T08:10" for t in times)


def test_a_parse_error_points_at_the_token(seeded_dir: Path) -> None:
    out = run("host:ctl1 AND user:", "--data", str(seeded_dir), code=1)
    assert "error at column 20: expected a value after 'user:'" in out
    assert out.splitlines()[-2:] == ["  host:ctl1 AND user:", "                     ^"]


def test_a_bad_since_is_a_usage_error(seeded_dir: Path) -> None:
    assert "'yesterday' is not a time" in run("x", "--data", str(seeded_dir), "--since", "yesterday", code=2)


def test_a_missing_store_is_one_clear_line(tmp_path: Path) -> None:
    out = run("x", "--data", str(tmp_path / "nothing"), code=1)
    assert out.startswith("Error: ") and "Traceback" not in out


def test_events_not_yet_indexed_are_announced(tmp_path: Path) -> None:
    from stackwatch.store.sqlite import SQLiteStore
    from stackwatch.testing import make_event

    writer = SQLiteStore(tmp_path / "data", background_index=False, index_every=10**9, index_interval=10**9)
    try:
        writer.append_events([make_event(host="ctl1", message="first")])
        writer.flush()
        writer.index_pending()
        writer.append_events([make_event(host="ctl1", message="second")])
        writer.flush()  # committed, not yet indexed: the writer indexes on its own schedule
        result = CliRunner().invoke(cli, ["search", "host:ctl1", "--data", str(tmp_path / "data")])
    finally:
        writer.close()
    assert result.exit_code == 0, result.output
    assert "note: the 1 newest events are not in the search index yet" in result.output
    assert "-- 2 events" in result.output  # a host term reads the record, not the index
