"""Open vSwitch (Debian `openvswitch-switch`): a real ovsdb-server and ovs-vswitchd on the
userspace datapath (`datapath_type=netdev`, no kernel module) with their own database, run
folder and log files. The test builds br-int and br-ex as neutron's OVS agent does, adds and
removes ports, deletes a bridge, and stackwatch reads ovs-vswitchd.log and the syslog that
ovs-vswitchd and ovs-vsctl send (vlog's --syslog-target) through a real rsyslog into `serve`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.producers.hosttools import analyze, host_logs, run, syslog_into_serve


@dataclass(frozen=True)
class Ovs:
    folder: Path
    syslog: list[str]  # vlog options every OVS program of the test gets

    def vsctl(self, *args: str) -> None:
        run(["ovs-vsctl", f"--db=unix:{self.folder / 'db.sock'}", "--timeout=60", *self.syslog, *args])

    def appctl(self, daemon: str, *args: str) -> None:
        run(["ovs-appctl", "-t", str(self.folder / f"{daemon}.ctl"), *args])

    @property
    def log(self) -> Path:
        return self.folder / "ovs-vswitchd.log"


@pytest.fixture
def ovs_factory(tmp_path: Path) -> Iterator:
    started: list[Path] = []

    def start(syslog_port: int | None = None) -> Ovs:
        folder = tmp_path / "ovs"
        folder.mkdir()
        syslog = [f"--syslog-target=127.0.0.1:{syslog_port}"] if syslog_port else []
        run(["ovsdb-tool", "create", str(folder / "conf.db"), "/usr/share/openvswitch/vswitch.ovsschema"])
        run(["ovsdb-server", str(folder / "conf.db"), f"--remote=punix:{folder / 'db.sock'}",
             f"--pidfile={folder / 'ovsdb-server.pid'}", f"--log-file={folder / 'ovsdb-server.log'}",
             f"--unixctl={folder / 'ovsdb-server.ctl'}", "--detach", *syslog])
        started.append(folder / "ovsdb-server.ctl")
        ovs = Ovs(folder, syslog)
        ovs.vsctl("--no-wait", "init")
        run(["ovs-vswitchd", f"unix:{folder / 'db.sock'}", f"--pidfile={folder / 'ovs-vswitchd.pid'}",
             f"--log-file={ovs.log}", f"--unixctl={folder / 'ovs-vswitchd.ctl'}", "--detach",
             "-vconsole:off", *syslog])
        started.append(folder / "ovs-vswitchd.ctl")
        return ovs

    monkey = pytest.MonkeyPatch()
    monkey.setenv("OVS_RUNDIR", str(tmp_path / "ovs"))  # bridges' management sockets (br-int.mgmt) go here
    yield start
    for control in reversed(started):
        if control.exists():
            run(["ovs-appctl", "-t", str(control), "exit"], ok=(0, 1, 2))
    monkey.undo()


def _incident(ovs: Ovs) -> None:
    """neutron's bridges, an instance port coming and going, then the patch port, the external
    NIC and the external bridge removed."""
    for bridge in ("br-int", "br-ex"):
        ovs.vsctl("add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev")
    ovs.vsctl("add-port", "br-int", "tap3f2a1b4c-5d", "--", "set", "interface", "tap3f2a1b4c-5d",
              "type=internal")
    ovs.vsctl("add-port", "br-int", "patch-tun", "--", "set", "interface", "patch-tun", "type=patch",
              "options:peer=patch-int")
    ovs.vsctl("add-port", "br-ex", "eth9", "--", "set", "interface", "eth9", "type=internal")
    ovs.vsctl("del-port", "br-int", "tap3f2a1b4c-5d")
    ovs.vsctl("del-port", "br-int", "patch-tun")
    ovs.vsctl("del-port", "br-ex", "eth9")
    ovs.vsctl("del-br", "br-ex")


def _by_bridge(alerts: list[dict]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for alert in alerts:
        found.setdefault(alert["bridge"], set()).add(alert["severity"])
    return found


def test_ovs_vswitchd_log_names_the_bridges_that_went_down(ovs_factory, tmp_path: Path) -> None:
    ovs = ovs_factory()
    _incident(ovs)
    # the log as it stands after the incident, ovs-vswitchd still running
    snapshot = tmp_path / "ovs-vswitchd.log"
    shutil.copy(ovs.log, snapshot)
    database_log = (ovs.folder / "ovsdb-server.log").read_text()
    logs = host_logs(tmp_path / "logs", "net1",
                     {"ovs-vswitchd.log": snapshot.read_text(), "ovsdb-server.log": database_log})
    result = analyze(logs, tmp_path / "data")
    assert result.categories() == {"network.bridge_down"}
    # br-int lost its patch port (critical); br-ex lost its NIC (high) and was deleted (critical);
    # the instance's tap port coming and going is churn
    assert _by_bridge(result.alerts) == {"br-int": {"critical"}, "br-ex": {"high", "critical"}}
    assert not any("tap3f2a1b4c-5d" in a["summary"] for a in result.alerts)
    assert result.unparsed == 0


def test_ovs_vswitchd_told_to_exit_takes_its_bridges_down(ovs_factory, tmp_path: Path) -> None:
    """`ovs-appctl exit` (what `ovs-ctl stop` runs) logs each bridge's local port deleted: with
    no systemd stop logged before it, that is br-int going down for real."""
    ovs = ovs_factory()
    ovs.vsctl("add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev")
    ovs.appctl("ovs-vswitchd", "exit")
    result = analyze(host_logs(tmp_path / "logs", "net1", {"ovs-vswitchd.log": ovs.log.read_text()}),
                     tmp_path / "data")
    assert [(a["category"], a["bridge"]) for a in result.alerts] == [("network.bridge_down", "br-int")]


def test_ovs_syslog_through_rsyslog_into_serve(ovs_factory, tmp_path: Path) -> None:
    with syslog_into_serve(tmp_path / "serve") as (syslog, alerts):
        ovs = ovs_factory(syslog.udp_port)
        _incident(ovs)
    assert {a.category for a in alerts} == {"network.bridge_down"}
    assert {a.bridge for a in alerts} == {"br-int", "br-ex"}
    deleted = [a for a in alerts if a.rule == "a87bc3bd-9e69-4ae0-b9d9-930f3c2a0f77"]
    assert [a.bridge for a in deleted] == ["br-ex"]
    assert any("ovs-vsctl" in ev.raw and "del-br br-ex" in ev.raw for ev in deleted[0].evidence)
