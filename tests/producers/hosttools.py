"""What the host producer tests share: run `stackwatch analyze` over what a real program
wrote, and carry a real program's syslog through a real rsyslog into a running `serve`.

Programs that log with syslog(3) write to /dev/log, which this machine (a container
without a system logger) does not have, and which other tests must not see appear. Such a
program is started in a mount namespace of its own whose /dev is a fresh tmpfs holding the
usual device nodes (bind-mounted from the real /dev) and a /dev/log that leads to the test's
rsyslog socket: the program calls syslog(3) exactly as on a node, and nothing outside sees it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from stackwatch.core.alert import Alert
from stackwatch.store import EventQuery, open_store
from tests.servetools import Rsyslog, ServeProcess, free_port, logger, udp_port_bound, wait_for

# Run "$@" with /dev replaced by a tmpfs whose 'log' is a link to $1 ($2: a scratch folder).
_DEV_LOG_SCRIPT = r"""
set -eu
sock=$1; scratch=$2; shift 2
mkdir -p "$scratch/realdev"
mount --rbind /dev "$scratch/realdev"
mount -t tmpfs -o mode=755 stackwatch-dev /dev
for node in null zero full random urandom tty; do
  touch "/dev/$node"; mount --bind "$scratch/realdev/$node" "/dev/$node"
done
mkdir /dev/pts /dev/shm
mount --rbind "$scratch/realdev/pts" /dev/pts
mount --rbind "$scratch/realdev/shm" /dev/shm
ln -s /proc/self/fd /dev/fd
ln -s "$sock" /dev/log
exec "$@"
"""


def with_dev_log(socket: Path, scratch: Path, argv: list[str]) -> list[str]:
    """``argv`` run so that its syslog(3) calls reach ``socket`` (see the module docstring)."""
    scratch.mkdir(parents=True, exist_ok=True)
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", _DEV_LOG_SCRIPT, "sh",
            str(socket), str(scratch), *argv]


def run(argv: list[str], *, ok: tuple[int, ...] = (0,), timeout: float = 120) -> str:
    """Run a producer; its stdout. An exit status outside ``ok`` fails with its output."""
    done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    output = done.stdout.decode("utf-8", "replace")
    assert done.returncode in ok, f"{argv} exited {done.returncode}:\n{output}\n{done.stderr.decode()}"
    return output


@dataclass(frozen=True)
class Analysis:
    """What `stackwatch analyze --format json` said: the alerts and the closing summary."""

    alerts: list[dict]
    summary: str

    def categories(self) -> set[str]:
        return {alert["category"] for alert in self.alerts}

    def of(self, category: str) -> list[dict]:
        return [alert for alert in self.alerts if alert["category"] == category]

    @property
    def unparsed(self) -> int:
        return int(self.summary.split("unparsed:")[1].split()[0])


def analyze(root: Path, data: Path) -> Analysis:
    """`stackwatch analyze` over ``root`` (laid out as <root>/<host>/<file>)."""
    done = subprocess.run(
        [sys.executable, "-m", "stackwatch", "analyze", str(root), "--format", "json", "--data", str(data)],
        capture_output=True, timeout=300, check=False,
    )
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr
    alerts = [json.loads(line) for line in done.stdout.decode().splitlines() if line.strip()]
    return Analysis(alerts, stderr[stderr.rfind("records read:"):])


def host_logs(root: Path, host: str, files: dict[str, str]) -> Path:
    """Lay ``files`` (name -> text a producer wrote) out as <root>/<host>/<name>."""
    folder = root / host
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return root


@dataclass(frozen=True)
class SyslogPath:
    """Where a producer sends syslog: a unix socket (for /dev/log) and a UDP port, both read
    by a real rsyslog that forwards everything over TCP to `serve`."""

    socket: Path
    udp_port: int
    scratch: Path


def _serve_config(folder: Path, tcp_port: int) -> Path:
    config = folder / "serve.yaml"
    config.write_text(
        f"hostname: testmon\nstate_dir: {folder / 'state'}\nstore: {{url: '{folder / 'data'}'}}\n"
        "rules: {builtin: true}\n"
        f"sources:\n  - {{type: syslog_tcp, name: tcp, listen: '127.0.0.1:{tcp_port}'}}\n"
    )
    return config


def _relay(socket: Path, udp_port: int, tcp_port: int) -> str:
    return (
        'module(load="imuxsock" SysSock.Use="off")\n'
        f'input(type="imuxsock" Socket="{socket}" CreatePath="on")\n'
        f'module(load="imudp")\ninput(type="imudp" address="127.0.0.1" port="{udp_port}")\n'
        f'action(type="omfwd" target="127.0.0.1" port="{tcp_port}" protocol="tcp"'
        ' template="RSYSLOG_SyslogProtocol23Format"\n'
        '       action.resumeRetryCount="-1" queue.type="LinkedList" queue.size="10000")\n'
    )


@contextmanager
def syslog_into_serve(folder: Path) -> Iterator[tuple[SyslogPath, list[Alert]]]:
    """A running `serve` (built-in rules) fed by a real rsyslog. The list yielded is filled, on
    leaving, with the alerts serve stored once everything sent before has gone through: a last
    marker line is sent through rsyslog and waited for in the store before serve stops."""
    folder.mkdir(parents=True, exist_ok=True)
    tcp_port, udp_port = free_port(), free_port(2)
    socket = folder / "log.sock"
    serve = ServeProcess(_serve_config(folder, tcp_port)).start()
    alerts: list[Alert] = []
    try:
        with Rsyslog(folder / "rsyslog", _relay(socket, udp_port, tcp_port)) as rsyslog:
            wait_for(lambda: socket.exists() and udp_port_bound(udp_port), 15)
            yield SyslogPath(socket, udp_port, folder / "ns"), alerts
            marker = f"end-of-test-{uuid.uuid4().hex}"
            logger(udp_port, marker, tag="stackwatch-test")
            try:
                wait_for(lambda: _stored(folder, marker), 30, 0.2)
            except AssertionError:
                raise AssertionError(f"serve:\n{serve.log()}\nrsyslog:\n{rsyslog.output()}") from None
    finally:
        assert serve.stop() == 0, serve.log()
    with open_store(folder / "data") as store:
        alerts.extend(stored.alert for stored in store.alerts())


def _stored(folder: Path, text: str) -> bool:
    with open_store(folder / "data", read_only=True) as store:
        return bool(store.search_events(EventQuery(text=text, limit=1)))
