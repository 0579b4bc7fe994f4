"""The scenario generator: deterministic, time-ordered, sized as asked, every incident in
the files, every line readable by our parsers."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stackwatch.core.alert import CATEGORIES
from stackwatch.parsers.base import ParseContext
from stackwatch.parsers.framing import FramingStats, frame_lines
from stackwatch.scenario import Manifest, demo_dataset, generate
from stackwatch.scenario.__main__ import main as cli_main

LINES = 12_000
MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest]:
    out = tmp_path_factory.mktemp("scenario") / "logs"
    return out, generate(out, seed=7, lines=LINES)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "manifest.json")


def _digest(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in _files(root)} | {
        "manifest.json": (root / "manifest.json").read_bytes()
    }


_AUDIT = re.compile(r"msg=audit\((\d+)\.(\d{3}):")
_SYSLOG = re.compile(r"^([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d) ")
_APACHE = re.compile(r"\[(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d):(\d\d):(\d\d) ")
_AIDE = re.compile(r"^Start timestamp: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")


def _time(name: str, line: str) -> datetime | None:
    """The record time of one line, per file format (None: a continuation line)."""
    if name == "audit.log":
        m = _AUDIT.search(line)
        return datetime.fromtimestamp(int(m.group(1)) + int(m.group(2)) / 1000, UTC) if m else None
    if name in ("auth.log", "syslog"):
        m = _SYSLOG.match(line)
        assert m, line
        return datetime(
            2026,
            MONTHS[m.group(1)],
            int(m.group(2)),
            int(m.group(3)),
            int(m.group(4)),
            int(m.group(5)),
            tzinfo=UTC,
        )
    if name == "keystone_access.log":
        m = _APACHE.search(line)
        assert m, line
        return datetime(
            int(m.group(3)),
            MONTHS[m.group(2)],
            int(m.group(1)),
            int(m.group(4)),
            int(m.group(5)),
            int(m.group(6)),
            tzinfo=UTC,
        )
    if name == "eve.json":
        return datetime.fromisoformat(json.loads(line)["timestamp"])
    if name == "notifications.json":
        inner = json.loads(json.loads(line)["oslo.message"])
        return datetime.fromisoformat(inner["timestamp"]).replace(tzinfo=UTC)
    if name == "aide.log":
        m = _AIDE.match(line)
        return datetime.fromisoformat(m.group(1)).replace(tzinfo=UTC) if m else None
    # oslo.log files and dpkg.log start with 'YYYY-MM-DD HH:MM:SS'
    return datetime.fromisoformat(line[:23] if line[19:20] == "." else line[:19]).replace(tzinfo=UTC)


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    generate(tmp_path / "a", seed=11, lines=3000)
    generate(tmp_path / "b", seed=11, lines=3000)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")


def test_another_seed_gives_other_ids(tmp_path: Path) -> None:
    generate(tmp_path / "a", seed=11, lines=3000)
    generate(tmp_path / "b", seed=12, lines=3000)
    a = (tmp_path / "a" / "ctl1" / "keystone.log").read_text()
    b = (tmp_path / "b" / "ctl1" / "keystone.log").read_text()
    assert a != b


def test_rsyslog_layout_with_every_host(scenario: tuple[Path, Manifest]) -> None:
    root, manifest = scenario
    hosts = {p.name for p in root.iterdir() if p.is_dir()}
    assert hosts == {"ctl1", "ctl2", "ctl3", "cmp1", "cmp2", "cmp3", "cmp4", "net1"}
    for path in (
        "ctl1/keystone.log",
        "ctl1/keystone_access.log",
        "ctl1/nova-api.log",
        "ctl2/neutron-server.log",
        "ctl1/auth.log",
        "ctl1/audit.log",
        "ctl1/notifications.json",
        "ctl1/aide.log",
        "ctl1/dpkg.log",
        "cmp1/nova-compute.log",
        "cmp1/syslog",
        "cmp1/audit.log",
        "net1/neutron-openvswitch-agent.log",
        "net1/eve.json",
        "net1/syslog",
    ):
        assert (root / path).is_file(), path
        assert manifest.files[path] > 0


@pytest.mark.parametrize(
    "name",
    [
        "keystone.log",
        "keystone_access.log",
        "nova-api.log",
        "neutron-server.log",
        "nova-compute.log",
        "auth.log",
        "syslog",
        "audit.log",
        "notifications.json",
        "eve.json",
        "aide.log",
        "dpkg.log",
        "neutron-l3-agent.log",
    ],
)
def test_each_file_is_in_time_order(scenario: tuple[Path, Manifest], name: str) -> None:
    root, _ = scenario
    paths = sorted(root.glob(f"*/{name}"))
    assert paths
    for path in paths:
        times = [t for line in path.read_text().splitlines() if line and (t := _time(name, line)) is not None]
        assert times, path
        assert times == sorted(times), path


def test_line_count_is_near_the_target(scenario: tuple[Path, Manifest]) -> None:
    root, manifest = scenario
    counted = sum(len(p.read_text().splitlines()) for p in _files(root))
    assert counted == manifest.lines
    assert abs(manifest.lines - LINES) / LINES < 0.05


def test_bigger_target_scales_attacks_to_about_two_percent(tmp_path: Path) -> None:
    manifest = generate(tmp_path, seed=3, lines=150_000, duration=timedelta(minutes=30))
    assert abs(manifest.lines - 150_000) / 150_000 < 0.05
    assert len(manifest.by_category("auth.bruteforce")) > 2


def test_manifest_categories_are_the_documented_ones(scenario: tuple[Path, Manifest]) -> None:
    _, manifest = scenario
    assert {i.category for i in manifest.incidents} <= set(CATEGORIES)
    wanted = {
        "auth.bruteforce",
        "auth.spraying",
        "auth.targeted_account",
        "auth.success_after_failures",
        "auth.lockout",
        "logging.silence",
        "logging.level_lowered",
        "service.unscheduled_stop",
        "os.login",
        "os.privilege",
        "os.restart",
        "network.bridge_down",
        "firewall.flush",
        "identity.orphaned_resources",
        "integrity.file_changed",
        "malware.detected",
        "ids.alert",
        "usage.anomaly",
        "hardware.fault",
    }
    assert wanted <= {i.category for i in manifest.incidents}


def test_manifest_round_trips(scenario: tuple[Path, Manifest]) -> None:
    root, manifest = scenario
    assert Manifest.load(root) == manifest


def test_every_incident_marker_is_in_its_files(scenario: tuple[Path, Manifest]) -> None:
    root, manifest = scenario
    start, end = datetime.fromisoformat(manifest.start), datetime.fromisoformat(manifest.end)
    for incident in manifest.incidents:
        assert start <= datetime.fromisoformat(incident.start) <= datetime.fromisoformat(incident.end) <= end
        text = "".join((root / f).read_text() for f in incident.files)
        for marker in incident.markers:
            assert marker in text, (incident.category, incident.entity, marker)


def test_silent_source_stops_writing(scenario: tuple[Path, Manifest]) -> None:
    root, manifest = scenario
    (incident,) = manifest.by_category("logging.silence")
    lines = (root / "cmp3" / "nova-compute.log").read_text().splitlines()
    last = _time("nova-compute.log", lines[-1])
    assert last is not None
    assert last < datetime.fromisoformat(incident.start)
    other = (root / "cmp2" / "nova-compute.log").read_text().splitlines()
    assert _time("nova-compute.log", other[-1]) > datetime.fromisoformat(incident.start)  # type: ignore[operator]


def test_level_lowered_keeps_only_warnings_and_errors(scenario: tuple[Path, Manifest]) -> None:
    root, manifest = scenario
    (incident,) = manifest.by_category("logging.level_lowered")
    since = datetime.fromisoformat(incident.start)
    after = [
        line
        for line in (root / "ctl2" / "neutron-server.log").read_text().splitlines()
        if _time("neutron-server.log", line) >= since
    ]  # type: ignore[operator]
    levels = {line.split()[3] for line in after}
    assert levels and levels <= {"WARNING", "ERROR"}


def test_keystone_failure_is_seen_three_times_with_one_request_id(scenario: tuple[Path, Manifest]) -> None:
    root, _ = scenario
    ks = [
        line
        for line in (root / "ctl3" / "keystone.log").read_text().splitlines()
        if "Authorization failed" in line
    ]
    assert ks
    req = re.search(r"req-[0-9a-f-]{36}", ks[0]).group(0)  # type: ignore[union-attr]
    assert req in (root / "ctl1" / "notifications.json").read_text()


def test_notifications_are_v2_envelopes(scenario: tuple[Path, Manifest]) -> None:
    root, _ = scenario
    for line in (root / "ctl1" / "notifications.json").read_text().splitlines():
        outer = json.loads(line)
        assert outer["oslo.version"] == "2.0"
        inner = json.loads(outer["oslo.message"])
        assert {
            "message_id",
            "publisher_id",
            "event_type",
            "priority",
            "payload",
            "timestamp",
        } <= inner.keys()


def test_without_attacks_no_incident_lines(tmp_path: Path) -> None:
    manifest = generate(tmp_path, seed=7, lines=3000, attacks=False)
    assert manifest.incidents == []
    assert "Authorization failed" not in (tmp_path / "ctl1" / "keystone.log").read_text()
    assert "FOUND" not in (tmp_path / "cmp2" / "syslog").read_text()


def test_demo_dataset_is_small_and_fast(tmp_path: Path) -> None:
    began = time.perf_counter()
    root = demo_dataset(tmp_path)
    took = time.perf_counter() - began
    manifest = Manifest.load(root)
    assert 3000 <= manifest.lines <= 5000
    assert len({i.category for i in manifest.incidents}) >= 17
    assert took < 2.0


def test_cli_writes_a_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main([str(tmp_path), "--seed", "5", "--lines", "2000", "--minutes", "30"]) == 0
    assert "incidents" in capsys.readouterr().out
    assert Manifest.load(tmp_path).seed == 5


def test_naive_start_is_taken_as_utc(tmp_path: Path) -> None:
    manifest = generate(
        tmp_path, lines=1500, start=datetime(2026, 5, 1, 12, 0), duration=timedelta(minutes=20)
    )
    assert manifest.start == "2026-05-01T12:00:00+00:00"
    first = (tmp_path / "ctl1" / "nova-api.log").read_text().splitlines()[0]
    assert first.startswith("2026-05-01 12:")


def test_every_generated_line_is_parsed(scenario: tuple[Path, Manifest]) -> None:
    """Our parsers read every record of every file: nothing is left ``unparsed``."""
    root, _ = scenario
    unparsed: dict[str, int] = {}
    for path in _files(root):
        stats = FramingStats()
        ctx = ParseContext(host=path.parent.name, origin=str(path), year=2026)
        for _ in frame_lines(path.read_text().splitlines(), ctx, stats=stats):
            pass
        assert stats.records > 0
        if stats.unparsed:
            unparsed[str(path.relative_to(root))] = stats.unparsed
    assert unparsed == {}
