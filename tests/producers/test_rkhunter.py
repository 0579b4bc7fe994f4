"""rkhunter (Debian) checks this machine with a configuration of the test's own (its database,
temporary folder, log file and the sshd_config it reads are the test's), and stackwatch reads
its log file, its cron/report output and what it sends to syslog (through a real rsyslog into
`serve`). Only rkhunter's quick checks run (sshd configuration, passwd and group changes):
the file-properties scan of every system binary takes minutes on a shared machine.

The warnings are made the way an incident makes them: a user appears in /etc/passwd that the
copy rkhunter kept does not have, and sshd's configuration allows root to log in."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.producers.hosttools import analyze, host_logs, run, syslog_into_serve, with_dev_log

CHECKS = "system_configs_ssh,group_accounts"
# root may log in; 'Protocol' unset (rkhunter warns that the default may allow v1, in a
# message it wraps onto an unstamped line)
LAX_SSHD = "Port 22\nPermitRootLogin yes\n"
STRICT_SSHD = "Port 22\nProtocol 2\nPermitRootLogin no\n"


def _config(folder: Path, sshd_config: str, passwd: str) -> Path:
    """A config whose state lives in ``folder``; the passwd copy rkhunter keeps (in its TMPDIR,
    from its last run) is ``passwd``."""
    db, tmp, ssh = folder / "db", folder / "tmp", folder / "ssh"
    for path in (tmp, ssh):
        path.mkdir(parents=True)
    shutil.copytree("/var/lib/rkhunter/db", db)
    (tmp / "passwd").write_text(passwd)
    shutil.copy("/etc/group", tmp / "group")
    (ssh / "sshd_config").write_text(sshd_config)
    config = folder / "rkhunter.conf"
    config.write_text("\n".join([
        f"TMPDIR={tmp}", f"DBDIR={db}", "SCRIPTDIR=/usr/share/rkhunter/scripts", "INSTALLDIR=/usr",
        f"LOGFILE={folder / 'rkhunter.log'}", "USE_SYSLOG=authpriv.warning", "UPDATE_MIRRORS=0",
        "MIRRORS_MODE=1", 'WEB_CMD="/bin/false"', f"SSH_CONFIG_DIR={ssh}", "PKGMGR=NONE",
        "ALLOW_SSH_ROOT_USER=no", f"ENABLE_TESTS={CHECKS.replace(',', ' ')}", "DISABLE_TESTS=NONE", ""]))
    return config


def _passwd_without_last_user() -> str:
    """/etc/passwd as rkhunter stored it before the last user was added."""
    lines = Path("/etc/passwd").read_text().splitlines(keepends=True)
    return "".join(lines[:-1])


def _check(config: Path, *options: str, wrap: tuple[Path, Path] | None = None, checks: str = CHECKS) -> str:
    argv = ["rkhunter", "--configfile", str(config), "--nocolors", "--enable", checks, *options]
    return run(with_dev_log(*wrap, argv) if wrap else argv, ok=(0, 1), timeout=600)


@pytest.fixture(scope="module")
def warned(tmp_path_factory) -> tuple[str, list, Path]:
    """rkhunter --check over the two incidents: its log file and the alerts serve raised
    from its syslog."""
    folder = tmp_path_factory.mktemp("rkhunter-warned")
    config = _config(folder, LAX_SSHD, _passwd_without_last_user())
    with syslog_into_serve(folder / "serve") as (syslog, alerts):
        _check(config, "--check", "--sk", "--logfile", str(folder / "rkhunter.log"),
               wrap=(syslog.socket, syslog.scratch))
    return (folder / "rkhunter.log").read_text(), alerts, folder


def test_rkhunter_log_warnings_are_one_malware_alert(warned, tmp_path: Path) -> None:
    log, _, _ = warned
    result = analyze(host_logs(tmp_path / "logs", "ctl1", {"rkhunter.log": log}), tmp_path / "data")
    assert [(a["category"], a["host"], a["severity"]) for a in result.alerts] == [
        ("malware.detected", "ctl1", "medium")]
    evidence = "\n".join(ev["raw"] for ev in result.alerts[0]["evidence"])
    assert "PermitRootLogin" in evidence or "passwd" in evidence
    assert result.unparsed == 0


def test_rkhunter_syslog_warning_reaches_serve(warned) -> None:
    _, alerts, _ = warned
    assert [(a.category, a.severity) for a in alerts] == [("malware.detected", "medium")]
    assert any("may be infected" in ev.raw for ev in alerts[0].evidence)


def test_rkhunter_cron_report_output(tmp_path: Path) -> None:
    config = _config(tmp_path / "rk", LAX_SSHD, Path("/etc/passwd").read_text())
    report = _check(config, "--cronjob", "--report-warnings-only")
    assert report.startswith("Warning: "), report
    result = analyze(host_logs(tmp_path / "logs", "ctl1", {"rkhunter-cron.log": report}), tmp_path / "data")
    assert [(a["category"], a["severity"]) for a in result.alerts] == [("malware.detected", "medium")]
    assert any("PermitRootLogin" in ev["raw"] for ev in result.alerts[0]["evidence"])
    assert result.unparsed == 0


def test_a_clean_rkhunter_run_raises_nothing(tmp_path: Path) -> None:
    config = _config(tmp_path / "rk", STRICT_SSHD, Path("/etc/passwd").read_text())
    # sshd's configuration only: other tests on this machine add and remove users meanwhile
    _check(config, "--check", "--sk", "--logfile", str(tmp_path / "rk" / "rkhunter.log"),
           checks="system_configs_ssh")
    log = (tmp_path / "rk" / "rkhunter.log").read_text()
    assert "Warning" not in log  # the checks really passed
    result = analyze(host_logs(tmp_path / "logs", "ctl1", {"rkhunter.log": log}), tmp_path / "data")
    assert result.alerts == []
    assert result.unparsed == 0
