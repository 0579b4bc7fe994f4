"""nftables / iptables (Debian) wiped in a network namespace the test creates, recorded by a real
auditd (Debian `auditd`, its own config and log file): what a node records of a firewall
wipe is the EXECVE of the command (an execve audit rule on the netfilter tools, as the CIS
benchmarks ask) and the kernel's NETFILTER_CFG records. Neither iptables nor nft log anything
themselves. auditd runs in this sandbox; a test that finds the audit subsystem taken by
another auditd waits for it, then fails rather than skip."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.producers.hosttools import analyze, host_logs, run, syslog_into_serve, with_dev_log
from tests.servetools import wait_for

KEY = "stackwatch-netfilter"
TOOLS = ("/usr/sbin/xtables-nft-multi", "/usr/sbin/xtables-legacy-multi", "/usr/sbin/nft")
EMPTY_FILTER = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
NAT_CHAINS = "".join(f":{chain} ACCEPT [0:0]\n" for chain in ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"))
EMPTY_NAT = f"*nat\n{NAT_CHAINS}COMMIT\n"
MASQUERADE = f"*nat\n{NAT_CHAINS}-A POSTROUTING -o eth0 -j MASQUERADE\nCOMMIT\n"
SSH_ONLY = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -j DROP\nCOMMIT\n")


def _audit_status() -> dict[str, str]:
    status = run(["auditctl", "-s"])
    return dict(line.split(" ", 1) for line in status.splitlines() if " " in line)


@dataclass
class Auditd:
    log: Path

    def mark(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def since(self, offset: int) -> str:
        """What auditd wrote after ``offset`` (once the records of the last command are out)."""
        marker = f"/stackwatch-mark-{uuid.uuid4().hex}"
        run(["auditctl", "-m", marker])  # a USER record, written after everything before it
        wait_for(lambda: marker in self.log.read_text(errors="replace")[offset:], 30, 0.1)
        text = self.log.read_bytes()[offset:].decode(errors="replace")
        # split at newlines only: str.splitlines would also cut at the \x1d of ENRICHED records
        return "".join(line + "\n" for line in text.split("\n") if line and marker not in line)


@pytest.fixture(scope="module")
def auditd(tmp_path_factory) -> Iterator[Auditd]:
    folder = tmp_path_factory.mktemp("auditd")
    (folder / "plugins.d").mkdir()
    config = folder / "auditd.conf"
    config.write_text("\n".join([
        f"log_file = {folder / 'audit.log'}", "log_format = ENRICHED", "log_group = root", "write_logs = yes",
        "flush = INCREMENTAL", "freq = 1", "max_log_file = 8", "max_log_file_action = ROTATE",
        "space_left = 75", "space_left_action = SYSLOG", "admin_space_left = 50",
        "admin_space_left_action = SUSPEND", "disk_full_action = SUSPEND", "disk_error_action = SUSPEND",
        f"plugin_dir = {folder / 'plugins.d'}", "q_depth = 2000", "end_of_event_timeout = 2", ""]))
    config.chmod(0o640)
    # one audit daemon per kernel: wait for another test's to leave
    wait_for(lambda: _audit_status().get("pid") == "0", 120, 0.5)
    enabled = _audit_status().get("enabled", "0")
    proc = subprocess.Popen(["auditd", "-n", "-c", str(folder)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _audit_status().get("pid") == str(proc.pid) or proc.poll() is not None, 30, 0.1)
        if proc.poll() is not None:
            pytest.fail(f"auditd could not start: {proc.stderr.read().decode() if proc.stderr else ''}")
        for tool in TOOLS:
            run(["auditctl", "-a", "always,exit", "-F", "arch=b64", "-S", "execve", "-F", f"exe={tool}",
                 "-k", KEY])
        yield Auditd(folder / "audit.log")
    finally:
        run(["auditctl", "-D", "-k", KEY], ok=(0, 1))
        proc.terminate()
        proc.wait(30)
        run(["auditctl", "-e", enabled], ok=(0, 1))


@pytest.fixture
def netns() -> Iterator[list[str]]:
    """A fresh network namespace: the prefix that runs a command inside it."""
    name = f"sw-fw-{uuid.uuid4().hex[:8]}"
    run(["ip", "netns", "add", name])
    try:
        yield ["ip", "netns", "exec", name]
    finally:
        run(["ip", "netns", "del", name])


def _restore(ns: list[str], command: str, rules: str, *options: str) -> None:
    done = subprocess.run([*ns, command, *options], input=rules.encode(), capture_output=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr.decode()


def _alerts(auditd: Auditd, offset: int, tmp_path: Path) -> tuple[list[dict], str]:
    log = auditd.since(offset)
    result = analyze(host_logs(tmp_path / "logs", "cmp1", {"audit.log": log}), tmp_path / "data")
    assert result.unparsed == 0
    return result.alerts, log


WIPES = {
    "iptables -F": [["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"],
                    ["iptables", "-F"]],
    "iptables-legacy -F": [["iptables-legacy", "-A", "INPUT", "-j", "ACCEPT"], ["iptables-legacy", "-F"]],
    "nft flush ruleset": [["nft", "add", "table", "inet", "filter"],
                          ["nft", "add", "chain", "inet", "filter", "input",
                           "{ type filter hook input priority 0; policy drop; }"],
                          ["nft", "flush", "ruleset"]],
    "nft delete table": [["nft", "add", "table", "inet", "guard"],
                         ["nft", "delete", "table", "inet", "guard"]],
}


@pytest.mark.parametrize("wipe", list(WIPES))
def test_a_firewall_wipe_is_a_flush_alert(auditd, netns, tmp_path: Path, wipe: str) -> None:
    offset = auditd.mark()
    for command in WIPES[wipe]:
        run([*netns, *command])
    alerts, log = _alerts(auditd, offset, tmp_path)
    assert "NETFILTER_CFG" in log  # the kernel recorded the change itself
    assert [(a["category"], a["host"]) for a in alerts] == [("firewall.flush", "cmp1")], log
    assert wipe in alerts[0]["summary"]  # the command as auditd recorded its argv


# iptables-restore is iptables-nft-restore on Debian. An empty iptables-legacy-restore is not
# covered: since kernel 5.13 its NETFILTER_CFG record (op=xt_replace) gives the size of the table
# it replaced, not of the table it left, so nothing in the audit trail tells it is empty.
@pytest.mark.parametrize("command", ["iptables-restore"])
@pytest.mark.parametrize(("rules", "empty"), [(SSH_ONLY, EMPTY_FILTER), (MASQUERADE, EMPTY_NAT)],
                         ids=["filter", "nat"])
def test_restoring_an_empty_table_is_a_flush_alert(auditd, netns, tmp_path: Path, command: str, rules: str,
                                                   empty: str) -> None:
    _restore(netns, command, rules)
    offset = auditd.mark()
    _restore(netns, command, empty)
    alerts, log = _alerts(auditd, offset, tmp_path)
    assert [a["category"] for a in alerts] == ["firewall.flush"], log


@pytest.mark.parametrize("command", ["iptables-restore", "iptables-legacy-restore"])
def test_restoring_rules_as_neutron_does_raises_nothing(auditd, netns, tmp_path: Path, command: str) -> None:
    offset = auditd.mark()
    _restore(netns, command, SSH_ONLY, "-n")
    _restore(netns, command, SSH_ONLY, "-n")
    tool = command.removesuffix("-restore")
    run([*netns, tool, "-A", "INPUT", "-p", "tcp", "--dport", "443", "-j", "ACCEPT"])
    alerts, log = _alerts(auditd, offset, tmp_path)
    assert alerts == [], log


@pytest.mark.parametrize("command", ["iptables-restore", "iptables-legacy-restore"])
def test_reloading_a_full_table_raises_nothing(auditd, netns, tmp_path: Path, command: str) -> None:
    """`netfilter-persistent reload`: the saved rules restored (flushing) over the same rules."""
    _restore(netns, command, SSH_ONLY)
    offset = auditd.mark()
    _restore(netns, command, SSH_ONLY)
    alerts, log = _alerts(auditd, offset, tmp_path)
    assert alerts == [], log


def test_a_wipe_run_with_sudo_reaches_serve_through_syslog(netns, tmp_path: Path) -> None:
    """Without auditd a node still has sudo's own record of the command (auth.log / syslog)."""
    with syslog_into_serve(tmp_path / "serve") as (syslog, alerts):
        run(with_dev_log(syslog.socket, syslog.scratch, [*netns, "sudo", "iptables", "-F"]))
        run(with_dev_log(syslog.socket, syslog.scratch, [*netns, "sudo", "nft", "list", "ruleset"]))
    assert [a.category for a in alerts] == ["firewall.flush"]
    assert "iptables -F" in alerts[0].summary
    assert not any("nft list" in ev.raw for a in alerts for ev in a.evidence)
