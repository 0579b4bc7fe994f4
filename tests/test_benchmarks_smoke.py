"""The benchmark suite runs end to end at its smallest size (CI: it must run, not be timed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--smoke", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return orjson.loads((out / "results.json").read_bytes()), (out / "results.md").read_text()


def _positive(figures: dict) -> bool:
    return isinstance(figures["lines_per_s"], int) and figures["lines_per_s"] > 0 and figures["lines"] > 0


@pytest.mark.parametrize("stage", ["python_read", "grep"])
def test_every_baseline_has_a_positive_rate(smoke, stage):
    [size] = smoke[0]["results"]
    assert _positive(size["baselines"][stage])


@pytest.mark.parametrize("stage", ["read", "parse", "parse_pure", "parse_detect", "parse_detect_pure",
                                   "parse_detect_fullparse", "parse_detect_fullparse_pure",
                                   "parse_detect_store", "parse_detect_store_pure",
                                   "parse_detect_store_nochain"])
def test_every_pipeline_stage_has_a_positive_rate_and_reads_every_line(smoke, stage):
    [size] = smoke[0]["results"]
    figures = size["stages"][stage]
    assert _positive(figures)
    assert figures["lines"] == size["baselines"]["python_read"]["lines"]
    assert figures["peak_rss_mb"] > 0


def test_pure_stages_ran_the_pure_python_path(smoke):
    [size] = smoke[0]["results"]
    assert size["stages"]["parse_pure"]["hot_paths"] == "pure Python (STACKWATCH_PURE_PYTHON=1)"
    assert size["stages"]["parse"]["hot_paths"] != size["stages"]["parse_pure"]["hot_paths"] \
        or not size["stages"]["parse"]["hot_paths"].startswith("compiled")
    assert "Hot modules:" in smoke[1]


def test_chain_cost_is_reported_as_the_on_off_ratio(smoke):
    [size] = smoke[0]["results"]
    on, off = size["stages"]["parse_detect_store"], size["stages"]["parse_detect_store_nochain"]
    assert size["chain_ratio"]["lines_per_s"] == round(on["lines_per_s"] / off["lines_per_s"], 3)
    assert "### Cost of the tamper-evident chain" in smoke[1]


@pytest.mark.parametrize("stage", ["cadf_orjson", "cadf_parse", "cadf_e2e", "cadf_store"])
def test_every_cadf_stage_has_a_positive_rate(smoke, stage):
    assert _positive(smoke[0]["cadf"][stage])


def test_keys_benchmark_holds_every_distinct_address_in_state(smoke):
    [keys] = smoke[0]["keys"]
    assert keys["detect_events_per_s"] > 0
    assert keys["keys_held"] >= keys["ips"]


def test_sigma_comparison_runs_both_sides_and_they_agree(smoke):
    sigma = smoke[0]["sigma"]
    assert sigma["stackwatch"]["events_per_s"] > 0 and sigma["sqlite"]["events_per_s"] > 0
    assert sigma["rules"] >= 7 and sigma["hits_equal"]


def test_markdown_table_names_the_machine_and_every_section(smoke):
    markdown = smoke[1]
    assert markdown.startswith("Machine: ")
    for heading in ("### Pipeline", "### Detection state", "### Keystone CADF", "### Sigma over auditd"):
        assert heading in markdown


@pytest.mark.parametrize("stage", ["floor_event", "floor_wide_row", "floor_meta_row"])
def test_every_floor_has_a_positive_rate_and_reads_every_line(smoke, stage):
    [size] = smoke[0]["results"]
    figures = size["floors"][stage]
    assert _positive(figures)
    assert figures["lines"] == size["baselines"]["python_read"]["lines"]
    assert "### Floors: fixed per-line costs" in smoke[1]


def test_jobs_section_reports_both_sides_cpu_and_the_model(smoke):
    jobs = smoke[0]["jobs"]
    stages = jobs["stages"]
    lines = stages["parse"]["lines"]
    for name in ("detect_jobs1", "detect_jobs2", "analyze_jobs1", "analyze_jobs2"):
        assert _positive(stages[name]) and stages[name]["lines"] == lines  # every line, any N
    assert stages["analyze_jobs2"]["workers_cpu_seconds"] > 0  # the parsing moved to the workers
    assert stages["analyze_jobs1"]["workers_cpu_seconds"] == 0
    # with workers the search index is filled by a process of its own, counted apart
    assert stages["analyze_jobs2"]["indexer_cpu_seconds"] > 0
    assert stages["analyze_jobs1"]["indexer_cpu_seconds"] == 0
    assert set(jobs["model"]["speedup_store"]) == {"2", "4", "8", "16"}
    assert "### analyze --jobs N" in smoke[1]


def test_the_usage_baselines_benchmark_runs_and_holds_every_key() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.usage_baselines", "--projects", "300", "--users",
                           "200", "--days", "2"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    sides = orjson.loads(done.stdout.splitlines()[-1])
    state = sides["engine"]["state"]
    assert state["resource_burst_project.yaml"] == {"keys": 300, "evicted": 0, "expired": 0}
    assert state["resource_burst_user.yaml"]["keys"] == 200
    assert sides["engine"]["events"] == sides["baseline"]["events"] == 300 * 2 * 2
    assert sides["engine"]["alerts"] == 0  # every key steady: nothing to say
