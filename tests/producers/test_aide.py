"""AIDE (Debian `aide`) checks a folder it initialised and stackwatch reads its report.

AIDE runs over a temporary tree with its own config and database, never the system. The
explained-by-update case installs a package for real: `dpkg-deb --build` makes a small .deb
owning the binary that changes, and `dpkg --root` installs it into the test's tree (its own
admin folder and dpkg.log), so dpkg writes the very log lines it writes on a node.
"""

from __future__ import annotations

import shutil
import socket
import time
import uuid
from pathlib import Path

import pytest

from stackwatch.store import open_store
from tests.producers.hosttools import (
    _serve_config,
    _stored,
    analyze,
    host_logs,
    run,
    syslog_into_serve,
    with_dev_log,
)
from tests.servetools import ServeProcess, free_port, wait_for

PACKAGE = "swprobe"  # a path component of the binary it owns, as nova-api is of /usr/bin/nova-api


def _aide_config(folder: Path, watched: list[Path], report: str = "") -> Path:
    config = folder / "aide.conf"
    lines = [
        f"database_in=file:{folder / 'aide.db'}",
        f"database_out=file:{folder / 'aide.db.new'}",
        "gzip_dbout=no",
        report or f"report_url=file:{folder / 'report.txt'}",
    ]
    lines += [f"{path} p+i+n+u+g+s+m+c+sha256" for path in watched]
    config.write_text("\n".join(lines) + "\n")
    return config


def _init(config: Path) -> None:
    run(["aide", "--config", str(config), "--init"])
    shutil.move(config.parent / "aide.db.new", config.parent / "aide.db")


def _check(config: Path) -> str:
    report = config.parent / "report.txt"
    report.unlink(missing_ok=True)
    # the exit status is a bit mask of added (1), removed (2) and changed (4) entries
    run(["aide", "--config", str(config), "--check"], ok=(1, 2, 3, 4, 5, 6, 7))
    return report.read_text()


def _tamper(tmp_path: Path, report: str = "") -> tuple[Path, Path]:
    """A tree AIDE initialised, then a config file changed, a binary added and one removed."""
    tree = tmp_path / "node"
    (tree / "etc").mkdir(parents=True)
    (tree / "bin").mkdir()
    (tree / "etc" / "app.conf").write_text("debug = false\n")
    shutil.copy("/bin/true", tree / "bin" / "helper")
    config = _aide_config(tmp_path, [tree], report)
    _init(config)
    (tree / "etc" / "app.conf").write_text("debug = false\nallow_all = true\n")
    shutil.copy("/bin/ls", tree / "bin" / "kswapd1")
    (tree / "bin" / "helper").unlink()
    return config, tree


def _tampered_paths(tree: Path) -> set[str]:
    return {str(tree / "etc" / "app.conf"), str(tree / "bin" / "kswapd1"), str(tree / "bin" / "helper")}


def _assert_reported(found: set[str], tree: Path) -> None:
    """The tampered files, and their folder when the tampering crossed a second after the init:
    adding and removing entries changes the folder's m/c times, which AIDE compares to the
    second (a loaded machine crosses one about a run in three)."""
    assert _tampered_paths(tree) <= found <= _tampered_paths(tree) | {str(tree / "bin")}


@pytest.fixture
def tampered(tmp_path: Path) -> tuple[str, Path]:
    """AIDE's report of the tampered tree."""
    config, tree = _tamper(tmp_path)
    return _check(config), tree


def test_a_changed_config_an_added_and_a_removed_binary_each_alert(tampered, tmp_path: Path) -> None:
    report, tree = tampered
    result = analyze(host_logs(tmp_path / "logs", "ctl1", {"aide.log": report}), tmp_path / "data")
    _assert_reported({a["path"] for a in result.alerts}, tree)
    assert result.categories() == {"integrity.file_changed"}
    assert all(a["host"] == "ctl1" and a["severity"] == "medium" for a in result.alerts)
    assert result.unparsed == 0


def test_the_report_aide_sends_to_syslog_reaches_serve(tmp_path: Path) -> None:
    """report_url=syslog: AIDE 0.18 sends its report a piece per message (each entry alone)."""
    config, tree = _tamper(tmp_path, "report_url=syslog:LOG_LOCAL1")
    with syslog_into_serve(tmp_path / "serve") as (syslog, alerts):
        argv = ["aide", "--config", str(config), "--check"]
        run(with_dev_log(syslog.socket, syslog.scratch, argv), ok=(1, 2, 3, 4, 5, 6, 7))
    _assert_reported({a.path for a in alerts}, tree)
    assert {a.category for a in alerts} == {"integrity.file_changed"}


@pytest.mark.parametrize("transport", ["--octet-count", "--tcp", "bare-frame"])
def test_a_report_sent_as_one_syslog_message_alerts_as_the_file_does(tampered, tmp_path: Path,
                                                                   transport: str) -> None:
    """The whole report in one message (``logger "$(aide --check)"``, rsyslog's imfile with
    startmsg.regex): over TCP with octet counting the newlines arrive inside one frame; with LF
    framing (``--tcp``: non-transparent) they must come escaped, as rsyslog writes them ('#012'); a
    bare octet-counted frame holds the report as the file does, with no syslog header."""
    report, tree = tampered
    folder = tmp_path / "serve"
    folder.mkdir()
    port = free_port()
    message = report if transport == "--octet-count" else report.replace("\n", "#012").replace("\t", "#011")
    serve = ServeProcess(_serve_config(folder, port)).start()
    try:
        argv = ["logger", "--server", "127.0.0.1", "--port", str(port), "--tcp", "--rfc5424", "-t", "aide",
                "-p", "local1.warning", "--size", "65536"]
        if transport == "bare-frame":
            body = report.encode()
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                conn.sendall(b"%d %s" % (len(body), body))
        else:
            run([*argv, *(["--octet-count"] if transport == "--octet-count" else []), "--", message])
        marker = f"end-of-test-{uuid.uuid4().hex}"
        run([*argv, "--", marker])
        wait_for(lambda: _stored(folder, marker), 30, 0.2)
    finally:
        assert serve.stop() == 0, serve.log()
    with open_store(folder / "data", read_only=True) as store:
        alerts = [stored.alert for stored in store.alerts()]
    _assert_reported({a.path for a in alerts}, tree)
    assert {a.category for a in alerts} == {"integrity.file_changed"}
    # the same findings as the file form of the same report gives through analyze
    from_file = analyze(host_logs(tmp_path / "logs", "ctl1", {"aide.log": report}), tmp_path / "data")
    assert sorted((a.path, a.severity, a.title) for a in alerts) == sorted(
        (a["path"], a["severity"], a["title"]) for a in from_file.alerts)


def _deb(folder: Path, version: str) -> Path:
    """A package owning /opt/<PACKAGE>/bin/<PACKAGE>, whose content is its version."""
    root = folder / f"{PACKAGE}-{version}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {PACKAGE}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: stackwatch tests <tests@example.org>\nDescription: stackwatch AIDE test package\n")
    binary = root / "opt" / PACKAGE / "bin" / PACKAGE
    binary.parent.mkdir(parents=True)
    binary.write_text(f"#!/bin/sh\necho {version}\n")
    binary.chmod(0o755)
    deb = folder / f"{PACKAGE}_{version}_all.deb"
    run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)])
    return deb


def _dpkg(root: Path, log: Path, *args: str) -> None:
    run(["dpkg", f"--root={root}", f"--log={log}", *args])


@pytest.fixture
def upgraded(tmp_path: Path) -> tuple[str, str, Path]:
    """dpkg.log and AIDE's report after a real package upgrade and, beside it, a config edit."""
    root = tmp_path / "node"
    (root / "var" / "lib" / "dpkg" / "info").mkdir(parents=True)
    (root / "var" / "lib" / "dpkg" / "updates").mkdir()
    (root / "var" / "lib" / "dpkg" / "status").touch()
    (root / "etc").mkdir()
    (root / "etc" / f"{PACKAGE}.conf").write_text("listen = 127.0.0.1\n")
    dpkg_log = tmp_path / "dpkg.log"
    _dpkg(root, dpkg_log, "--install", str(_deb(tmp_path, "1.0")))
    config = _aide_config(tmp_path, [root / "opt", root / "etc"])
    _init(config)
    _dpkg(root, dpkg_log, "--install", str(_deb(tmp_path, "1.1")))
    (root / "etc" / f"{PACKAGE}.conf").write_text("listen = 0.0.0.0\n")
    # dpkg.log and AIDE stamp whole seconds; within one second analyze cannot tell which came
    # first (ties go in file order, aide.log before dpkg.log). On a node AIDE's scan runs from
    # cron well after the update; here the check starts in the next second.
    time.sleep(1.1)
    return dpkg_log.read_text(), _check(config), root


def test_dpkg_writes_an_upgrade_line_for_the_package(upgraded) -> None:
    dpkg_log, _, _ = upgraded
    assert f" upgrade {PACKAGE}:all 1.0 1.1\n" in dpkg_log


def test_a_binary_the_dpkg_upgrade_replaced_is_explained_and_low(upgraded, tmp_path: Path) -> None:
    dpkg_log, report, root = upgraded
    result = analyze(host_logs(tmp_path / "logs", "ctl1", {"dpkg.log": dpkg_log, "aide.log": report}),
                     tmp_path / "data")
    binary = next(a for a in result.alerts if a["path"] == str(root / "opt" / PACKAGE / "bin" / PACKAGE))
    assert binary["severity"] == "low"
    assert result.unparsed == 0


def test_a_config_edit_beside_the_upgrade_is_not_explained(upgraded, tmp_path: Path) -> None:
    dpkg_log, report, root = upgraded
    result = analyze(host_logs(tmp_path / "logs", "ctl1", {"dpkg.log": dpkg_log, "aide.log": report}),
                     tmp_path / "data")
    edited = next(a for a in result.alerts if a["path"] == str(root / "etc" / f"{PACKAGE}.conf"))
    assert edited["severity"] == "medium"
    assert result.categories() == {"integrity.file_changed"}


def test_without_the_dpkg_log_the_same_binary_change_is_not_lowered(upgraded, tmp_path: Path) -> None:
    _, report, root = upgraded
    result = analyze(host_logs(tmp_path / "logs", "ctl1", {"aide.log": report}), tmp_path / "data")
    binary = next(a for a in result.alerts if a["path"] == str(root / "opt" / PACKAGE / "bin" / PACKAGE))
    assert binary["severity"] == "medium"
