"""HAProxy's runtime API over its admin socket: the deny map stackwatch adds addresses to.

HAProxy reads ``stats socket /run/haproxy/admin.sock mode 600 level admin``; one command per
connection (non-interactive mode), the answer is what it writes before closing. A frontend
denies what the map holds::

    http-request deny deny_status 403 if { src,map_ip(/etc/haproxy/stackwatch-deny.map) -m found }

``add map`` / ``del map`` change the running process only (a reload reads the file again), so
the caller re-applies what should still be denied (``stackwatch respond run`` is idempotent).
"""

from __future__ import annotations

import socket
from typing import Final

from stackwatch.core.errors import StackwatchError

MAX_ANSWER: Final = 4 * 1024 * 1024  # a `show map` of a large deny list fits; more is refused
_NOT_FOUND: Final = ("key not found", "entry not found")


class HAProxyError(StackwatchError):
    """The admin socket refused a command or could not be reached."""


class RuntimeApi:
    def __init__(self, socket_path: str, timeout: float = 5.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def command(self, line: str) -> str:
        if "\n" in line or ";" in line:
            raise HAProxyError(f"refusing a command with a separator: {line!r}")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(self.socket_path)
                sock.sendall(line.encode() + b"\n")
                chunks, size = [], 0
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > MAX_ANSWER:
                        raise HAProxyError(f"answer to {line.split()[0]!r} over {MAX_ANSWER} bytes")
        except OSError as exc:
            raise HAProxyError(f"HAProxy admin socket {self.socket_path}: {exc}") from exc
        return b"".join(chunks).decode("utf-8", "replace")

    def show_map(self, map_name: str) -> dict[str, str]:
        """The running map: key -> value."""
        answer = self.command(f"show map {map_name}")
        entries = {}
        for line in answer.splitlines():
            parts = line.split(maxsplit=2)  # "0x55d1c... 203.0.113.9 value"
            if len(parts) >= 2 and parts[0].startswith("0x"):
                entries[parts[1]] = parts[2] if len(parts) > 2 else ""
            elif line.strip():
                raise HAProxyError(f"show map {map_name}: {line.strip()}")
        return entries

    def add_map(self, map_name: str, key: str, value: str) -> None:
        """Add (or, when present, set) ``key``; idempotent."""
        if key in self.show_map(map_name):
            answer = self.command(f"set map {map_name} {key} {value}")
        else:
            answer = self.command(f"add map {map_name} {key} {value}")
        if answer.strip():
            raise HAProxyError(f"add map {map_name} {key}: {answer.strip()}")

    def del_map(self, map_name: str, key: str) -> bool:
        """Remove ``key``; False when it was not there (already removed)."""
        answer = self.command(f"del map {map_name} {key}").strip()
        if not answer:
            return True
        if answer.lower().rstrip(".") in _NOT_FOUND:
            return False
        raise HAProxyError(f"del map {map_name} {key}: {answer}")
