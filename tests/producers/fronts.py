"""The fronts keystone sits behind, for real, as the deployment tools lay them out.

* ``start_haproxy(folder, backend_port)``: HAProxy (Debian's) with ``option httplog`` and
  ``option forwardfor`` in front of a backend on 127.0.0.1, logging over UDP to an rsyslog of
  its own that writes the classic file format (``Dec  6 20:40:00 host haproxy[pid]: ...``).
* ``start_apache(folder, keystone)``: Apache httpd (Debian's) serving the same keystone with
  mod_wsgi in daemon mode and Kolla-Ansible's access-log format. Debian's mod_wsgi embeds the
  system Python (/usr/bin/python3, 3.11), not the test venv's; both are CPython 3.11, whose
  ABI is stable across patch releases, so the daemon keeps Debian's standard library and
  takes keystone and its dependencies from the venv's site-packages (``python-path``). This
  needs no compiler and no apache2-dev (PyPI's mod_wsgi would), and it is how a distribution
  package would run a pip-installed keystone. A venv of another minor version is refused
  with a clear error, not half-loaded.

uWSGI's request log, the third front, is written by keystone_server's uWSGI itself.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.producers.keystone_server import PORT_RANGE, Keystone, free_port, stop_process
from tests.servetools import Rsyslog, udp_port_bound


@dataclass(frozen=True)
class HAProxy:
    port: int  # where clients connect
    log_file: Path  # its HTTP log, as rsyslog wrote it


HAPROXY_CONFIG = """\
global
    log 127.0.0.1:{syslog_port} local0 info
    pidfile {folder}/haproxy.pid

defaults
    mode http
    log global
    option httplog
    option forwardfor
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend keystone_front
    bind 127.0.0.1:{port}{tls}
    default_backend keystone_back

backend keystone_back
    server ks1 127.0.0.1:{backend_port}
"""

RSYSLOG_CONFIG = """\
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{port}" ruleset="haproxy")
ruleset(name="haproxy") {{
    action(type="omfile" file="{log_file}" template="RSYSLOG_TraditionalFileFormat")
}}
"""


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0,
                    name: str = "haproxy") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not listen on {port} within {timeout}s")


@contextlib.contextmanager
def start_haproxy(folder: Path, backend_port: int, *,
                  tls: tuple[Path, Path] | None = None) -> Iterator[HAProxy]:
    """``tls``: (certificate, key) PEM files: HAProxy terminates TLS with them (as a cloud's
    public endpoint does) and forwards plain HTTP to the backend."""
    folder.mkdir(parents=True, exist_ok=True)
    bind_tls = ""
    if tls is not None:
        # HAProxy reads the certificate and its key from one file
        bundle = folder / "front.pem"
        bundle.write_bytes(tls[0].read_bytes() + tls[1].read_bytes())
        bundle.chmod(0o600)
        bind_tls = f" ssl crt {bundle}"
    syslog_port = free_port(PORT_RANGE.start + 500, socket.SOCK_DGRAM)
    port = free_port(PORT_RANGE.start + 100)
    log_file = folder / "haproxy.log"
    log_file.touch()  # a follower may open it before the first request
    config = folder / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(syslog_port=syslog_port, folder=folder, port=port,
                                            backend_port=backend_port, tls=bind_tls))
    check = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    with Rsyslog(folder / "rsyslog", RSYSLOG_CONFIG.format(port=syslog_port, log_file=log_file)):
        deadline = time.monotonic() + 20
        while not udp_port_bound(syslog_port) and time.monotonic() < deadline:
            time.sleep(0.05)
        proc = subprocess.Popen(["haproxy", "-db", "-f", str(config)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_listening(port, proc)
            yield HAProxy(port, log_file)
        finally:
            stop_process(proc)


@dataclass(frozen=True)
class Apache:
    port: int
    access_log: Path  # Kolla's keystone-apache-public-access.log
    error_log: Path


MOD_WSGI = Path("/usr/lib/apache2/modules/mod_wsgi.so")
APACHE_MODULES = Path("/usr/lib/apache2/modules")

# Kolla-Ansible's wsgi-keystone.conf, reduced to one vhost on loopback.
APACHE_CONFIG = """\
ServerRoot {folder}
ServerName 127.0.0.1
PidFile {folder}/httpd.pid
Mutex file:{folder}
DefaultRuntimeDir {folder}
ErrorLog {folder}/httpd-error.log
LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule wsgi_module {modules}/mod_wsgi.so
User {user}
Group {user}
Listen 127.0.0.1:{port}
ServerSignature Off
ServerTokens Prod
TraceEnable off
WSGISocketPrefix {folder}/wsgi

<VirtualHost 127.0.0.1:{port}>
    WSGIDaemonProcess keystone-public processes=1 threads=4 display-name=keystone-public \\
        python-path={site_packages}
    WSGIProcessGroup keystone-public
    WSGIScriptAlias / {script}
    WSGIApplicationGroup %{{GLOBAL}}
    WSGIPassAuthorization On
    <Directory {folder}>
        Require all granted
    </Directory>
    ErrorLogFormat "%{{cu}}t %M"
    ErrorLog "{error_log}"
    LogFormat "%{{X-Forwarded-For}}i %l %u %t \\"%r\\" %>s %b %D \\"%{{Referer}}i\\" \\
\\"%{{User-Agent}}i\\"" logformat
    CustomLog "{access_log}" logformat
</VirtualHost>
"""

# keystone ships no WSGI script any more (keystone.wsgi.api:application is the entry point);
# deployment tools write this one, so the daemon finds keystone's configuration.
WSGI_SCRIPT = """\
import os

os.environ.setdefault("OS_KEYSTONE_CONFIG_DIR", {config_dir!r})
from keystone.wsgi.api import application  # noqa: E402,F401
"""


APACHE_USER = "www-data"


def _check_reachable(path: Path, user: str) -> None:
    """Fail clearly (not with Apache's 500s) when ``user`` cannot read ``path``."""
    done = subprocess.run(["runuser", "-u", user, "--", "test", "-r", str(path), "-a", "-x", str(path)],
                          capture_output=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"{user} cannot read {path}: Apache's mod_wsgi daemon could not import keystone"
                           " (make the virtual environment's folders world-readable)")


def _embedded_python() -> str:
    """The Python version Debian's mod_wsgi embeds: 'mod_wsgi.so' links to 'mod_wsgi.so-3.11'."""
    return MOD_WSGI.resolve().name.rpartition("-")[2]


@contextlib.contextmanager
def start_apache(folder: Path, keystone: Keystone) -> Iterator[Apache]:
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if _embedded_python() != running:
        raise RuntimeError(f"Debian's mod_wsgi embeds Python {_embedded_python()}, the tests run {running}:"
                           " keystone's site-packages cannot be loaded into it")
    site_packages = sysconfig.get_paths()["purelib"]
    _check_reachable(Path(site_packages), APACHE_USER)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    port = free_port(PORT_RANGE.start + 200)
    apache = Apache(port, folder / "keystone-apache-public-access.log",
                    folder / "keystone-apache-public-error.log")
    script = folder / "keystone-wsgi-public"
    script.write_text(WSGI_SCRIPT.format(config_dir=str(keystone.folder)))
    config = folder / "httpd.conf"
    config.write_text(APACHE_CONFIG.format(
        folder=folder, modules=APACHE_MODULES, port=port, script=script, user=APACHE_USER,
        site_packages=site_packages, access_log=apache.access_log,
        error_log=apache.error_log))
    check = subprocess.run(["apache2", "-t", "-f", str(config)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    proc = subprocess.Popen(["apache2", "-f", str(config), "-DFOREGROUND"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port, proc, name="apache2")
        yield apache
    finally:
        stop_process(proc)
