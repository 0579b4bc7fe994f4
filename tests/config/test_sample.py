"""The printed sample is a complete, working reference: it loads, and names every setting."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackwatch.alerts.registry import SINKS
from stackwatch.alerts.registry import settings_class as sink_settings
from stackwatch.cli.config_cmd import config_group
from stackwatch.config import parse_config
from stackwatch.config.loader import SECTIONS
from stackwatch.config.sample import SAMPLE
from stackwatch.config.settings import (
    LimitsSettings,
    ListenSettings,
    RulesSettings,
    StoreSettings,
    ThrottleSettings,
)
from stackwatch.sources.registry import SOURCES
from stackwatch.sources.registry import settings_class as source_settings


@pytest.fixture
def sample_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("STACKWATCH_AMQP_PASSWORD", "STACKWATCH_WEBHOOK_SECRET", "STACKWATCH_METRICS_TOKEN"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("STACKWATCH_CHAT_WEBHOOK", "https://chat.example.org/hooks/x")
    monkeypatch.setenv("STACKWATCH_MATRIX_TOKEN", "syt_x")
    (tmp_path / "smtp-password").write_text("pw\n")
    path = tmp_path / "serve.yaml"
    path.write_text(SAMPLE.replace("/etc/stackwatch/smtp-password", str(tmp_path / "smtp-password")))
    return path


def test_sample_loads(sample_file: Path) -> None:
    settings = parse_config(sample_file.read_text(), str(sample_file))
    assert {s.type for s in settings.sources} == set(SOURCES)
    assert {s.type for s in settings.sinks} == set(SINKS)


def _classes() -> list[type]:
    return (
        [StoreSettings, RulesSettings, ThrottleSettings, ListenSettings, LimitsSettings]
        + [source_settings(kind) for kind in SOURCES]
        + [sink_settings(kind) for kind in SINKS]
    )


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_every_setting_is_in_the_sample_and_has_help(cls: type) -> None:
    for field in dataclasses.fields(cls):
        if field.name == "type":
            continue
        assert re.search(rf"^\s*(- )?{field.name}:", SAMPLE, re.MULTILINE), f"{cls.__name__}.{field.name}"
        assert field.metadata.get("help"), f"{cls.__name__}.{field.name} has no help text"


@pytest.mark.parametrize("section", list(SECTIONS))
def test_every_section_is_in_the_sample(section: str) -> None:
    assert re.search(rf"^#? ?{section}:", SAMPLE, re.MULTILINE)


def test_cli_sample_and_check(sample_file: Path) -> None:
    runner = CliRunner()
    printed = runner.invoke(config_group, ["sample"])
    assert printed.exit_code == 0 and printed.output == SAMPLE
    checked = runner.invoke(config_group, ["check", "--no-rules", str(sample_file)])
    assert checked.exit_code == 0, checked.output
    assert checked.output.strip().endswith(f"{sample_file}: ok")


def test_cli_check_reports_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("limits:\n  queue_size: -x\n")
    result = CliRunner().invoke(config_group, ["check", str(bad)])
    assert result.exit_code != 0 and f"{bad}:2: limits.queue_size" in result.output
