"""Off-box witnesses: every checkpoint is also handed to one or more places the store's host
does not control, so that wiping and rebuilding the whole store is detected.

Specs (one per line in ``<data>/witnesses.conf``, or given to the store):

- ``file:/mnt/other/witness.jsonl`` (or a bare path): append-only JSON lines, fsynced;
- ``syslog+udp://host:514`` / ``syslog+tcp://host:601``: RFC 5424 (TCP with octet counting,
  RFC 6587), facility log audit (13), severity info, MSGID ``checkpoint``, the JSON as MSG;
- ``http://host/path`` / ``https://...``: POST of the JSON document.

A store with no witness configured gets a **local witness** at ``store init``: the file
``<data folder>.witness.jsonl`` next to the data folder (``default_witness_path``), or the path
given with ``store init --witness-file`` / ``$STACKWATCH_WITNESS_FILE``. ``store verify`` reads the
file witnesses of ``witnesses.conf`` and that default file whenever they exist.

Each entry is the JSON object ``{"format": "stackwatch-witness/v1", "log", "epoch", "size",
"root", "body", "signature", "public_key"}``; ``store verify --witness FILE`` reads a file of
them (a syslog or HTTP collector can write the same lines).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import urllib.request
from pathlib import Path
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from stackwatch.core.errors import StoreError
from stackwatch.store.seal import Checkpoint

FORMAT: Final = "stackwatch-witness/v1"
CONFIG_FILE: Final = "witnesses.conf"
WITNESS_SUFFIX: Final = ".witness.jsonl"
WITNESS_ENV: Final = "STACKWATCH_WITNESS_FILE"
TIMEOUT: Final = 5.0


class Witness(Protocol):
    def send(self, body: bytes, signature: bytes, public_key: bytes) -> None: ...


def entry(body: bytes, signature: bytes, public_key: bytes) -> dict[str, Any]:
    cp = Checkpoint.from_bytes(body)
    return {
        "format": FORMAT,
        "log": cp.log_id,
        "epoch": cp.epoch,
        "size": cp.size,
        "root": cp.root.hex(),
        "body": body.decode(),
        "signature": signature.hex(),
        "public_key": public_key.hex(),
    }


def _line(body: bytes, signature: bytes, public_key: bytes) -> bytes:
    return json.dumps(entry(body, signature, public_key), sort_keys=True).encode()


class FileWitness:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __str__(self) -> str:
        return f"file:{self.path}"

    def send(self, body: bytes, signature: bytes, public_key: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, _line(body, signature, public_key) + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)


class SyslogWitness:
    def __init__(self, host: str, port: int, transport: str) -> None:
        self.host, self.port, self.transport = host, port, transport

    def __str__(self) -> str:
        return f"syslog+{self.transport}://{self.host}:{self.port}"

    def message(self, body: bytes, signature: bytes, public_key: bytes) -> bytes:
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        host = socket.gethostname() or "-"
        return f"<110>1 {stamp} {host} stackwatch {os.getpid()} checkpoint - ".encode() + _line(
            body, signature, public_key
        )

    def send(self, body: bytes, signature: bytes, public_key: bytes) -> None:
        msg = self.message(body, signature, public_key)
        if self.transport == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.sendto(msg, (self.host, self.port))
        else:
            with socket.create_connection((self.host, self.port), timeout=TIMEOUT) as sock:
                sock.sendall(str(len(msg)).encode() + b" " + msg)


class HttpWitness:
    def __init__(self, url: str) -> None:
        self.url = url

    def __str__(self) -> str:
        return self.url

    def send(self, body: bytes, signature: bytes, public_key: bytes) -> None:
        request = urllib.request.Request(  # noqa: S310 - parse_witness only accepts http(s)
            self.url,
            data=_line(body, signature, public_key),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - http(s) only
            if response.status >= 300:
                raise OSError(f"HTTP {response.status}")


def parse_witness(spec: str) -> Witness:
    spec = spec.strip()
    if spec.startswith(("http://", "https://")):
        return HttpWitness(spec)
    if spec.startswith(("syslog+udp://", "syslog+tcp://")):
        parts = urlsplit(spec)
        if not parts.hostname or not parts.port:
            raise StoreError(f"witness {spec!r}: give host:port")
        return SyslogWitness(parts.hostname, parts.port, parts.scheme.split("+")[1])
    if "://" in spec:
        raise StoreError(
            f"unknown witness {spec!r}: use file:PATH, syslog+udp://, syslog+tcp:// or http(s)://"
        )
    return FileWitness(spec.removeprefix("file:"))


def _specs(data_dir: Path) -> list[str]:
    path = Path(data_dir) / CONFIG_FILE
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def configured(data_dir: Path) -> list[Witness]:
    return [parse_witness(line) for line in _specs(data_dir)]


def default_witness_path(data_dir: str | os.PathLike[str]) -> Path:
    """Where ``store init`` puts the local witness: ``$STACKWATCH_WITNESS_FILE``, else the file
    ``<data folder>.witness.jsonl`` beside the data folder (outside it, so that replacing or
    wiping the folder leaves it; on another mount or host it protects more, see docs/store.md)."""
    env = os.environ.get(WITNESS_ENV)
    if env:
        return Path(env).absolute()
    folder = Path(data_dir).absolute()
    return folder.with_name(folder.name + WITNESS_SUFFIX)


def local_witness_files(data_dir: Path) -> list[Path]:
    """The witness files ``store verify`` reads by itself: every ``file:`` witness of
    ``witnesses.conf`` (a missing one is reported: its evidence was deleted) and the default
    local witness when it exists (so that deleting the config line does not hide it)."""
    files = [w.path for w in configured(data_dir) if isinstance(w, FileWitness)]
    default = default_witness_path(data_dir)
    if default.exists() and all(f.absolute() != default for f in files):
        files.append(default)
    return files


def read_entries(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Entries of a witness file (JSON lines; syslog lines keep the JSON after the header)."""
    out: list[dict[str, Any]] = []
    for n, line in enumerate(Path(path).read_text(errors="replace").splitlines(), 1):
        start = line.find("{")
        if start < 0:
            continue
        try:
            doc = json.loads(line[start:])
        except ValueError:
            raise StoreError(f"{path}:{n}: not a witness entry") from None
        if isinstance(doc, dict) and doc.get("format") == FORMAT:
            out.append(doc)
    return out
