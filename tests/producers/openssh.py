"""A real OpenSSH server for the producer tests: Debian's sshd on a loopback port, with its own
config, host key and test users, logging through syslog(3) to a real rsyslogd.

sshd (and sudo, run beside it) write to /dev/log only (glibc's syslog has no other path). So
that no system socket is touched, they run in a private mount namespace whose /dev is a small
tmpfs holding the device nodes they need and a ``log`` symlink to the rsyslog socket the test
created; the machine's own /dev is left alone."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SSH = shutil.which("ssh") or "/usr/bin/ssh"
PASSWORD = "Corr3ct-h0rse-battery"

# /dev of the namespace: bind mounts of the nodes sshd and its PAM stack open, the pty
# multiplexer for sessions, and /dev/log pointing at the test's rsyslog socket.
_NAMESPACE_SCRIPT = """set -e
dev="$1"; socket="$2"; shift 2
mount -t tmpfs -o mode=755 tmpfs "$dev"
for node in null zero full random urandom tty ptmx; do
  touch "$dev/$node"; mount --bind "/dev/$node" "$dev/$node"
done
mkdir "$dev/pts"; mount --bind /dev/pts "$dev/pts"
ln -s "$socket" "$dev/log"
mount --rbind "$dev" /dev
exec "$@"
"""


def logging_to(log_socket: Path, argv: list[str], **popen: Any) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a private mount namespace whose /dev/log is ``log_socket``."""
    dev = Path(tempfile.mkdtemp(prefix="dev-", dir=log_socket.parent))  # the mount point, empty outside
    return subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", _NAMESPACE_SCRIPT, "sh",
         str(dev), str(log_socket), *argv], **popen)


def sudo_as(user: str, log_socket: Path, password: str) -> int:
    """``sudo -S true`` run by ``user`` (not in sudoers), the password given on stdin."""
    proc = logging_to(log_socket, ["runuser", "-u", user, "--", "sudo", "-S", "-k", "-p", "", "true"],
                      stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc.communicate(f"{password}\n".encode(), timeout=60)
    return proc.returncode


def sshd_config(folder: Path, port: int, deny: str, authorized: Path) -> Path:
    """A complete sshd_config for the test (nothing read from /etc/ssh); ``authorized`` holds
    one authorized_keys file per user name, in a folder the users can read (sshd reads it as
    the user)."""
    key = folder / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {key}\nPidFile {folder / 'sshd.pid'}\n"
        "UsePAM yes\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"  # root by key only, as the security guide asks
        "MaxAuthTries 3\nLoginGraceTime 20\nMaxStartups 100:30:200\n"
        f"DenyUsers {deny}\nSyslogFacility AUTH\n"
        "LogLevel VERBOSE\n"  # what CIS asks for: every key tried is logged, with its fingerprint
        f"AuthorizedKeysFile {authorized}/%u\n"
        "StrictModes no\n"  # the key files live in a temporary folder
        "UseDNS no\nPrintMotd no\n"
    )
    return config


def client_key(folder: Path, name: str) -> Path:
    key = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    return key


@contextmanager
def readable_folder() -> Iterator[Path]:
    """A temporary folder every local user can read (pytest's tmp_path is root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="stackwatch-sshd-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class LocalUsers:
    """Local accounts created for the test and removed after it (useradd/userdel)."""

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def __enter__(self) -> LocalUsers:
        for name in self.names:
            subprocess.run(["userdel", name], capture_output=True, timeout=30)  # a previous run's leftover
            subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", name],
                           check=True, timeout=30)
            subprocess.run(["chpasswd"], input=f"{name}:{PASSWORD}\n".encode(), check=True, timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in self.names:
            subprocess.run(["userdel", name], capture_output=True, timeout=30)


class Sshd:
    """``sshd -D -f CONFIG`` in a private mount namespace whose /dev/log is ``log_socket``."""

    def __init__(self, folder: Path, config: Path, log_socket: Path, port: int) -> None:
        self.folder, self.config, self.log_socket, self.port = folder, config, log_socket, port
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Sshd:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
        check = subprocess.run([SSHD, "-t", "-f", str(self.config)], capture_output=True, timeout=30)
        assert check.returncode == 0, check.stderr.decode()
        self.proc = logging_to(self.log_socket, [SSHD, "-D", "-f", str(self.config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read().decode() if self.proc.stderr else ""
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        raise AssertionError("sshd did not listen")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # our own session: sshd and its children
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


class SshClient:
    """Debian's OpenSSH client against the test server, from a chosen loopback address; the
    password comes from an askpass helper (SSH_ASKPASS_REQUIRE=force), so no tty is needed."""

    def __init__(self, folder: Path, port: int) -> None:
        self.port = port
        self.askpass = folder / "askpass"
        self.askpass.write_text('#!/bin/sh\nprintf "%s\\n" "$STACKWATCH_TEST_PASSWORD"\n')
        self.askpass.chmod(0o700)

    def start(self, user: str, source: str, *, password: str | None = None, keys: tuple[Path, ...] = (),
              tries: int = 1) -> subprocess.Popen[bytes]:
        options = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                   "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "-o", "BatchMode=no",
                   "-o", f"NumberOfPasswordPrompts={tries}", "-o", "IdentitiesOnly=yes",
                   "-o", "IdentityAgent=none", "-F", "/dev/null"]
        if keys:
            options += ["-o", "PasswordAuthentication=no"]
            for key in keys:
                options += ["-i", str(key)]
        else:
            options += ["-o", "PubkeyAuthentication=no"]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SSH_ASKPASS": str(self.askpass),
               "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0",
               "STACKWATCH_TEST_PASSWORD": password or ""}
        return subprocess.Popen(
            [SSH, "-p", str(self.port), "-b", source, *options, f"{user}@127.0.0.1", "true"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=env, start_new_session=True,  # no controlling tty: askpass, never a prompt
        )

    def run_all(self, clients: list[subprocess.Popen[bytes]], timeout: float = 60.0) -> list[int]:
        return [client.wait(timeout) for client in clients]


def probe_before_auth(source: str, port: int, payload: bytes | None) -> None:
    """A scanner: connect from ``source``, read the banner, send ``payload`` (or nothing), close."""
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as sock:
        sock.recv(256)
        if payload is not None:
            sock.sendall(payload)
            with suppress(OSError):  # sshd may close before or after its answer
                sock.recv(256)
