"""Helpers for the `stackwatch serve` tests: certificates, free ports, a real HTTP receiver
for webhooks, a rule file, and running `stackwatch serve` as a real process (the cluster
roles' processes in tests/cluster/clustertools.py are this one with other options)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

STACKWATCH = str(Path(sys.executable).parent / "stackwatch")

BRUTE_FORCE_RULE = """\
id: 5d0c3a52-1f6e-4c1e-9a55-0d7c2b9f0a01
title: SSH brute force (serve test)
category: auth.bruteforce
severity: high
kind: threshold
condition: {action: authenticate, outcome: failure, service: sshd}
group_by: [initiator.source_ip]
threshold: 10
window: 1m
summary: "{count} failed ssh logins from {initiator.source_ip}"
"""


def run(coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
    """Run a coroutine to completion, bounded in time."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.02, *, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy (bounded); ``what`` names it in the failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}" if what else f"condition not met within {timeout}s")


# ---------------------------------------------------------------------------- certificates


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    cert_path, key_path = path.with_suffix(".pem"), path.with_suffix(".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def _ca(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], name: str, server: bool
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = ca
    key = _key()
    now = dt.datetime.now(dt.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    )
    return builder.sign(ca_key, hashes.SHA256()), key


def make_certs(folder: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1/localhost, a client certificate from the same
    CA, and a client certificate from another CA (a stranger)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = _ca("stackwatch test CA")
    other = _ca("some other CA")
    out: dict[str, Path] = {}
    out["ca"] = folder / "ca.pem"
    out["ca"].write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    out["server_cert"], out["server_key"] = _write(folder / "server", *_leaf(ca, "stackwatch", server=True))
    out["client_cert"], out["client_key"] = _write(folder / "client", *_leaf(ca, "node1", server=False))
    out["stranger_cert"], out["stranger_key"] = _write(
        folder / "stranger", *_leaf(other, "intruder", server=False)
    )
    for path in out.values():
        os.chmod(path, 0o644)
    return out


def make_tenant_certs(folder: Path, projects: list[str]) -> dict[str, Path]:
    """A tenants' CA, a server certificate, one client certificate per project (its common
    name the project id: ``<project>_cert`` / ``<project>_key``), and a stranger's."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = _ca("stackwatch tenants CA")
    out: dict[str, Path] = {"ca": folder / "ca.pem"}
    out["ca"].write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    out["server_cert"], out["server_key"] = _write(folder / "server", *_leaf(ca, "stackwatch", server=True))
    for project in projects:
        out[f"{project}_cert"], out[f"{project}_key"] = _write(folder / project,
                                                               *_leaf(ca, project, server=False))
    out["stranger_cert"], out["stranger_key"] = _write(
        folder / "stranger", *_leaf(_ca("some other CA"), projects[0], server=False))
    for path in out.values():
        os.chmod(path, 0o644)
    return out


# ---------------------------------------------------------------------------- webhook receiver


class HookReceiver:
    """A real HTTP server recording POSTs; the first ``fail_first`` requests get HTTP 503."""

    def __init__(self, fail_first: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.requests.append(
                        {"body": body, "headers": dict(self.headers), "time": time.time(), "path": self.path}
                    )
                    failing = len(receiver.requests) <= receiver.fail_first
                self.send_response(503 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def documents(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests]


# ---------------------------------------------------------------------------- serve process


class ServeProcess:
    """`stackwatch serve --config FILE [options]` as a real child process, ready once its log
    says ``ready_mark``; ``command`` runs stackwatch (the venv's script by default)."""

    name = "serve"
    ready_mark = "ready:"

    def __init__(self, config: Path, env: dict[str, str] | None = None, *, options: Sequence[str] = (),
                 command: Sequence[str] = (STACKWATCH,)) -> None:
        self.config = config
        self.env = {**os.environ, **(env or {})}
        self.argv = [*command, "serve", "--config", str(config), *options]
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr: list[str] = []
        self.ready = threading.Event()

    def start(self, timeout: float = 20.0) -> Self:
        self.ready.clear()
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        if not self.ready.wait(timeout):
            self.kill()
            raise AssertionError(f"{self.name} did not become ready:\n" + self.log())
        return self

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace")
            self.stderr.append(line)
            if self.ready_mark in line:
                self.ready.set()

    def stop(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)  # nothing when it has already ended (Popen checks)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def log(self) -> str:
        return "".join(self.stderr)


# ---------------------------------------------------------------------------- oslo.messaging publisher

AMQP_URL = "amqp://guest@127.0.0.1:5672/"


def keystone_auth_payload(
    username: str = "admin", address: str = "203.0.113.50", outcome: str = "failure"
) -> dict[str, Any]:
    """A CADF authenticate event built by pycadf the way keystone builds it."""
    from pycadf import cadftaxonomy as taxonomy
    from pycadf import cadftype, eventfactory, host, resource

    initiator = resource.Resource(typeURI=taxonomy.ACCOUNT_USER, id="d7bec06f41254509987354d0c0581cdc")
    initiator.host = host.Host(address=address, agent="openstacksdk/4.3.0 keystoneauth1/5.9.1")
    initiator.username = username
    initiator.user_id = "d7bec06f41254509987354d0c0581cdc"
    initiator.request_id = "req-214d0f85-74a4-441b-85b5-c1159341d577"
    event = eventfactory.EventFactory().new_event(
        eventType=cadftype.EVENTTYPE_ACTIVITY,
        outcome=outcome,
        action=taxonomy.ACTION_AUTHENTICATE,
        initiator=initiator,
        target=resource.Resource(typeURI=taxonomy.ACCOUNT_USER, id="5ca93d89-b1fd-5245-9c37-508f0a034289"),
        observer=resource.Resource(typeURI="service/security", id="f11c53400a5247baa2f120ff36c66b8f"),
    )
    return event.as_dict()  # type: ignore[no-any-return]


def publish(
    exchange: str,
    topic: str,
    items: list[tuple[str, str, dict[str, Any]]],
    publisher_id: str = "identity.ctl1",
) -> None:
    """Publish ``(priority, event_type, payload)`` items with oslo.messaging's own Notifier
    (messagingv2 driver), on control exchange ``exchange``, as an OpenStack service would."""
    job = json.dumps({"exchange": exchange, "topic": topic, "publisher_id": publisher_id, "items": items})
    script = Path(__file__).with_name("oslo_publisher.py")
    subprocess.run(
        [sys.executable, str(script)], input=job.encode(), check=True, timeout=120, capture_output=True
    )


async def amqp_cleanup(exchanges: list[str], queues: list[str]) -> None:
    import aio_pika

    connection = await aio_pika.connect_robust("amqp://guest:guest@127.0.0.1:5672/")
    async with connection:
        channel = await connection.channel()
        for name in queues:
            await channel.queue_delete(name)
        for name in exchanges:
            await channel.exchange_delete(name)


async def amqp_queue_depth(queue: str) -> int:
    import aio_pika

    connection = await aio_pika.connect_robust("amqp://guest:guest@127.0.0.1:5672/")
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)


# ---------------------------------------------------------------------------- rsyslog


class Rsyslog:
    """A real rsyslogd (Debian's), with its own config, pid file and work folder, in the foreground."""

    def __init__(self, folder: Path, config: str) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "work").mkdir(exist_ok=True)
        self.conf = folder / "rsyslog.conf"
        self.conf.write_text(f'global(workDirectory="{folder / "work"}")\n' + config)
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Rsyslog:
        check = subprocess.run(["rsyslogd", "-N1", "-f", str(self.conf)], capture_output=True, timeout=30)
        assert check.returncode == 0, check.stderr.decode() + check.stdout.decode()
        self.proc = subprocess.Popen(
            ["rsyslogd", "-n", "-f", str(self.conf), "-i", str(self.folder / "rsyslog.pid")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def output(self) -> str:
        if self.proc is None or self.proc.stdout is None or self.proc.poll() is None:
            return ""
        return self.proc.stdout.read().decode("utf-8", "replace")


def udp_port_bound(port: int) -> bool:
    """True once something (rsyslog) has bound UDP ``port`` on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def logger(port: int, message: str, *, tag: str = "sshd", transport: str = "--udp") -> None:
    subprocess.run(
        [
            "logger",
            "--server",
            "127.0.0.1",
            "--port",
            str(port),
            transport,
            "--rfc5424",
            "-t",
            tag,
            "-p",
            "auth.info",
            message,
        ],
        check=True,
        timeout=10,
    )


def serve_config(folder: Path, sources: str, *, sinks: str = "", extra: str = "") -> Path:
    """A serve config with a store and state in ``folder`` and the brute-force test rule."""
    rules = folder / "rules"
    rules.mkdir(parents=True, exist_ok=True)
    (rules / "brute.yaml").write_text(BRUTE_FORCE_RULE)
    text = (
        f"hostname: testmon\nstate_dir: {folder / 'state'}\nstore: {{url: '{folder / 'data'}'}}\n"
        f"rules: {{builtin: false, paths: ['{rules}']}}\nsources:\n{sources}"
        + (f"sinks:\n{sinks}" if sinks else "")
        + extra
    )
    path = folder / "serve.yaml"
    path.write_text(text)
    return path
