"""The fronts keystone sits behind, for real: HAProxy (Debian's) logging its HTTP log through a
real rsyslog into a file, as Kolla-Ansible and OpenStack-Ansible lay it out.

``start_haproxy(folder, backend_port)`` runs HAProxy with ``option httplog`` and ``option
forwardfor`` in front of a backend on 127.0.0.1, logging over UDP to an rsyslog of its own
that writes the classic file format (``Dec  6 20:40:00 host haproxy[pid]: ...``).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.producers.keystone_server import PORT_RANGE, free_port
from tests.servetools import Rsyslog, udp_port_bound


def free_udp_port(start: int) -> int:
    for port in range(start, PORT_RANGE.stop):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free UDP port in {PORT_RANGE}")


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
    bind 127.0.0.1:{port}
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


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"haproxy exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"haproxy did not listen on {port} within {timeout}s")


@contextlib.contextmanager
def start_haproxy(folder: Path, backend_port: int) -> Iterator[HAProxy]:
    folder.mkdir(parents=True, exist_ok=True)
    syslog_port = free_udp_port(PORT_RANGE.start + 500)
    port = free_port(PORT_RANGE.start + 100)
    log_file = folder / "haproxy.log"
    config = folder / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(syslog_port=syslog_port, folder=folder, port=port,
                                            backend_port=backend_port))
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
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
