"""smartd (Debian `smartmontools`) writes its syslog through a real rsyslog into `serve`.

What smartd can really produce here: this VM has no SMART-capable disk (one virtio disk that
smartd cannot identify, and no scsi_debug module), so smartd is pointed at a regular file as
an ATA disk behind a SAT bridge (`-d sat -T permissive`). It opens it, finds it "not capable
of SMART Health Status check" and registers it for monitoring, logging each step with
syslog(3) exactly as on a node. The SAT pass-through ioctls fail on a file, so the SMART data
smartd then reads is whatever its buffers held: from run to run it logs attribute changes and,
at LOG_CRIT, real fault lines such as "previous self-test completed with error" or "ATA error
count increased from A to B". The test therefore checks what holds whatever the run: every
line naming the device keeps it; every line the parser calls a fault smartd logged at critical
priority; and every critical line is a fault but for smartd's critical lines about its own
access to the disk or the state of its self-tests (OWN_ACCESS), which say nothing of the
disk's health. A deliberately failing disk ("FAILED SMART self-check") cannot be made here:
that line comes from smartd.cpp's format string (parsers/vectors/hardware.yaml,
rules/hardware/smart_failure.yaml) and is appended below after smartd's own lines.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

from stackwatch.store import EventQuery, open_store
from tests.producers.hosttools import analyze, host_logs, run, syslog_into_serve, with_dev_log
from tests.servetools import wait_for

OWN_ACCESS = ("Read SMART", "Read Summary SMART", "Read Extended Comprehensive SMART", "failed to read",
              "previous self-test was ", "previous self-test could not")  # aborted, interrupted...
SMARTD = shutil.which("smartd") or "/usr/sbin/smartd"  # .ci/run installs smartmontools: never skipped


def _config(tmp_path: Path) -> tuple[Path, Path]:
    disk = tmp_path / "disk.img"
    with disk.open("wb") as handle:
        handle.truncate(16 * 1024 * 1024)
    config = tmp_path / "smartd.conf"
    config.write_text(f"{disk} -a -d sat -T permissive\n")
    return config, disk


def _smartd(tmp_path: Path, config: Path, *options: str) -> list[str]:
    """smartd's command line; its state and attribute logs in the test's folder (-s, -A), not /var/lib."""
    return [SMARTD, *options, "-s", f"{tmp_path}/smartd-state.", "-A", f"{tmp_path}/smartd-attrlog.",
            "-c", str(config)]


def _stored(data: Path, text: str) -> bool:
    with open_store(data, read_only=True) as store:
        return bool(store.search_events(EventQuery(service="smartd", text=text, limit=1)))


def test_smartd_syslog_through_rsyslog_into_serve(tmp_path: Path) -> None:
    config, disk = _config(tmp_path)
    with syslog_into_serve(tmp_path / "serve") as (syslog, alerts):
        # the daemon in the foreground (-n), as its unit runs it: it logs with syslog(3)
        # (`-q onecheck` would print to stdout instead); stopped once its first check is logged
        argv = with_dev_log(syslog.socket, syslog.scratch, _smartd(tmp_path, config, "-n", "-i", "3600"))
        smartd = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: _stored(tmp_path / "serve" / "data", "Adding to monitor list"), 60, 0.3)
        finally:
            smartd.send_signal(signal.SIGTERM)
            smartd.wait(30)
    with open_store(tmp_path / "serve" / "data", read_only=True) as store:
        events = [s.event for s in store.search_events(EventQuery(service="smartd", limit=100))]
    messages = {e.message for e in events}
    assert f"Device: {disk} [SAT], opened" in messages
    assert f"Device: {disk} [SAT], not capable of SMART Health Status check" in messages
    mine = [e for e in events if e.attrs.get("device") == str(disk)]
    assert len(mine) >= 3 and all(e.attrs["component"] == "smart" for e in mine)
    assert all(e.kind == "syslog" for e in events)
    faults = [e for e in events if e.action == "hardware.error"]
    critical = [e for e in mine if e.severity in ("critical", "alert", "emergency")]
    assert [e.message for e in faults if e not in critical] == []
    assert [e.message for e in critical
            if e not in faults and not any(words in e.message for words in OWN_ACCESS)] == []
    assert bool(faults) == any(a.category == "hardware.fault" for a in alerts)


def test_smartd_lines_then_a_failure_of_the_same_device_alert_once(tmp_path: Path) -> None:
    config, disk = _config(tmp_path)
    # onecheck runs in debug mode: smartd prints to stdout what it would send to syslog
    said = run(_smartd(tmp_path, config, "-q", "onecheck"))
    lines = [line for line in said.splitlines() if line.startswith("Device: ")]
    assert lines, said
    stamp = time.strftime("%b %e %H:%M:%S", time.gmtime(time.time() - 60))
    failure = f"Device: {disk} [SAT], FAILED SMART self-check. BACK UP DATA NOW!"  # smartd.cpp's format
    text = "".join(f"{stamp} cmp3 smartd[4242]: {line}\n" for line in [*lines, failure])
    result = analyze(host_logs(tmp_path / "logs", "cmp3", {"syslog": text}), tmp_path / "data")
    assert result.unparsed == 0
    [alert] = result.of("hardware.fault")
    assert alert["severity"] == "critical" and str(disk) in alert["summary"] and alert["host"] == "cmp3"
