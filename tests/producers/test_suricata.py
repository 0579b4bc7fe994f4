"""Suricata: what several releases wrote, from Suricata's own regression expectations (see
data/suricata/PROVENANCE.md), read by `stackwatch analyze`; and the producer slot that runs the
real `suricata` over the same capture where the package exists.

Suricata is not packaged for Debian bookworm: the slot's skip is the one skip of the host
producer tests, and says so."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.producers.hosttools import analyze, host_logs, run

DATA = Path(__file__).with_name("data") / "suricata"


def _analyze(folder: Path, tmp_path: Path) -> list[dict]:
    files = {path.name: path.read_text() for path in folder.iterdir()}
    result = analyze(host_logs(tmp_path / "logs", "ids1", files), tmp_path / "data")
    assert result.unparsed == 0
    assert result.categories() == {"ids.alert"}
    return result.alerts


def _signatures(alerts: list[dict]) -> set[tuple[str, str | None]]:
    return {(a["summary"].split(": ", 1)[1].split(" from ")[0], a.get("source_ip")) for a in alerts}


@pytest.mark.parametrize(("release", "expected", "severity"), [
    ("3.2-alert-testmyids", {("GPL ATTACK_RESPONSE id check returned root", "82.165.177.154")}, "high"),
    ("3.2-tls-fingerprint-alert", {("TLS FINGERPRINT TEST", "24.244.4.23")}, "medium"),
    ("3.2-dnp3-func-alert", {("DNP3 Function code test bi-directional", "127.0.0.1"),
                             ("DNP3 Function code test to-server", "127.0.0.1")}, "medium"),
    ("8.0-lua-fastlog", {("GPL ATTACK_RESPONSE id check returned root", "82.165.177.154")}, "high"),
])
def test_suricata_alerts_of_each_release(release: str, expected: set, severity: str, tmp_path: Path) -> None:
    alerts = _analyze(DATA / release, tmp_path)
    assert _signatures(alerts) == expected
    assert {a["severity"] for a in alerts} == {severity}


def test_eve_and_fast_log_of_one_alert_are_one_alert(tmp_path: Path) -> None:
    alerts = _analyze(DATA / "3.2-alert-testmyids", tmp_path)
    assert len(alerts) == 1 and alerts[0]["count"] == 2
    assert "10.16.1.11" in alerts[0]["summary"]


def test_ipv6_fast_log_addresses_read_as_eve_writes_them(tmp_path: Path) -> None:
    alerts = _analyze(DATA / "7.0-http2-files", tmp_path)
    assert {a["source_ip"] for a in alerts} == {"::1"}
    # rules without msg: Suricata writes '(null)'; one alert per signature id and source
    assert len(alerts) == len({line.split("] ")[1] for line in
                               (DATA / "7.0-http2-files" / "fast.log").read_text().splitlines()})


@pytest.fixture
def suricata() -> str:
    """The producer slot: the real suricata, where it is installed."""
    binary = shutil.which("suricata")
    if binary is None:
        pytest.skip("suricata is not packaged for Debian bookworm (the producer slot runs where it is)")
    return binary


def test_real_suricata_over_the_capture(suricata: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    capture = DATA / "pcap"
    # the packaged suricata.yaml writes fast.log and eve.json (alerts included) to the -l folder
    run([suricata, "-k", "none", "-r", str(capture / "input.pcap"), "-S", str(capture / "test.rules"),
         "-l", str(out)])
    files = {name: (out / name).read_text() for name in ("eve.json", "fast.log") if (out / name).exists()}
    assert files, "suricata wrote neither eve.json nor fast.log"
    result = analyze(host_logs(tmp_path / "logs", "ids1", files), tmp_path / "data")
    assert _signatures(result.of("ids.alert")) == {
        ("GPL ATTACK_RESPONSE id check returned root", "82.165.177.154")}
