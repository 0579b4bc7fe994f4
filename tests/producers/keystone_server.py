"""A real keystone (PyPI ``keystone``) served by uWSGI on 127.0.0.1, for tests that need one.

``start_keystone(folder)`` builds a keystone the way a deployment tool does: an SQLite
database (``keystone-manage db_sync``), fernet tokens and credential keys
(``fernet_setup``, ``credential_setup``), an admin (``bootstrap``), then uWSGI serving
``keystone.wsgi.api:application`` with a request log, keystone's own ``log_file`` and CADF
notifications (``messagingv2``) on the local RabbitMQ, on an exchange and topic of its own
so concurrent tests never share them. ``[security_compliance]`` is set so lockout, expired
passwords and ``partial_password_hash`` (``report_invalid_password_hash = event``) happen
for real, and ``notification_opt_out`` keeps ``identity.authenticate.success`` (keystone
opts out of it by default).

``Keystone.client(source)`` talks plain HTTP from a chosen loopback source address, so
per-address detection sees distinct clients; ``Keystone.notifications`` records every
notification into a JSON-lines file for ``stackwatch analyze``.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import pwd
import secrets
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
AMQP = "amqp://guest:guest@127.0.0.1:5672/"
TRANSPORT_URL = "rabbit://guest:guest@127.0.0.1:5672/"  # oslo.messaging's name for the same broker
USER_AGENT = "stackwatch-tests keystoneauth1/5.18.1"
PORT_RANGE = range(23000, 24000)
"""The TCP ports this fixture layer may listen on (the range the project assigned it)."""


def free_port(start: int = PORT_RANGE.start, kind: int = socket.SOCK_STREAM) -> int:
    """The first port of PORT_RANGE (from ``start``) that nothing has bound (TCP, or UDP)."""
    for port in range(start, PORT_RANGE.stop):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORT_RANGE}")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@dataclass(frozen=True)
class Credentials:
    name: str
    password: str
    project: str = "admin"
    domain: str = "default"


class HttpError(AssertionError):
    """keystone answered an admin call with an unexpected status."""


@dataclass
class KeystoneClient:
    """Plain HTTP to keystone from ``source`` (a loopback address), as any client would."""

    host: str
    port: int
    source: str = "127.0.0.1"
    headers: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30, source_address=(self.source, 0))
        try:
            payload = json.dumps(body).encode() if body is not None else None
            all_headers = {"Content-Type": "application/json", "Accept": "application/json",
                           "User-Agent": USER_AGENT, **self.headers, **(headers or {})}
            conn.request(method, path, body=payload, headers=all_headers)
            response = conn.getresponse()
            data = response.read()
            document = json.loads(data) if data and data[:1] in b"{[" else data.decode(errors="replace")
            return response.status, {k.lower(): v for k, v in response.getheaders()}, document
        finally:
            conn.close()

    def authenticate(self, name: str, password: str, *, domain: str = "default",
                     project: str | None = None) -> int:
        """POST /v3/auth/tokens with a password; the HTTP status (201, 401...)."""
        return self._password_login(name, password, domain, project)[0]

    def token(self, credentials: Credentials) -> str:
        """A project-scoped token for ``credentials`` (raises unless keystone issues one)."""
        status, headers, document = self._password_login(credentials.name, credentials.password,
                                                          credentials.domain, credentials.project)
        if status != 201:
            raise HttpError(f"admin token: HTTP {status}: {document}")
        return headers["x-subject-token"]

    def _password_login(self, name: str, password: str, domain: str,
                        project: str | None) -> tuple[int, dict[str, str], Any]:
        user = {"name": name, "domain": {"id": domain}, "password": password}
        auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": user}}}
        if project is not None:
            auth["scope"] = {"project": {"name": project, "domain": {"id": domain}}}
        return self.request("POST", "/v3/auth/tokens", {"auth": auth})


@dataclass
class Admin:
    """Admin calls with a project-scoped admin token (users, projects, domains)."""

    client: KeystoneClient

    def _call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        status, _, document = self.client.request(method, path, body)
        if status != expect:
            raise HttpError(f"{method} {path}: HTTP {status}: {document}")
        return document

    def create_domain(self, name: str) -> str:
        return str(self._call("POST", "/v3/domains", {"domain": {"name": name}}, 201)["domain"]["id"])

    def create_project(self, name: str, domain_id: str = "default") -> str:
        body = {"project": {"name": name, "domain_id": domain_id}}
        return str(self._call("POST", "/v3/projects", body, 201)["project"]["id"])

    def create_user(self, name: str, password: str, *, domain_id: str = "default",
                    project_id: str | None = None, **options: Any) -> str:
        user: dict[str, Any] = {"name": name, "password": password, "domain_id": domain_id}
        if project_id:
            user["default_project_id"] = project_id
        if options:
            user["options"] = options
        return str(self._call("POST", "/v3/users", {"user": user}, 201)["user"]["id"])

    def delete_user(self, user_id: str) -> None:
        self._call("DELETE", f"/v3/users/{user_id}", expect=204)

    def delete_project(self, project_id: str) -> None:
        self._call("DELETE", f"/v3/projects/{project_id}", expect=204)

    def delete_domain(self, domain_id: str) -> None:
        # keystone deletes only a disabled domain
        self._call("PATCH", f"/v3/domains/{domain_id}", {"domain": {"enabled": False}})
        self._call("DELETE", f"/v3/domains/{domain_id}", expect=204)


@dataclass
class NotificationRecorder:
    """A queue of its own on keystone's exchange; ``drain`` appends every message body (the
    oslo.messaging v2 envelope, as it travels) to ``path``, one per line."""

    exchange: str
    topic: str
    queue: str
    path: Path

    async def _declare(self) -> None:
        import aio_pika

        connection = await aio_pika.connect_robust(AMQP)
        async with connection:
            channel = await connection.channel()
            # oslo.messaging's own declaration (not durable unless amqp_durable_queues)
            exchange = await channel.declare_exchange(self.exchange, aio_pika.ExchangeType.TOPIC,
                                                      durable=False)
            queue = await channel.declare_queue(self.queue, durable=False)
            await queue.bind(exchange, routing_key=f"{self.topic}.*")

    async def _drain(self, quiet: float, timeout: float) -> list[str]:
        import aio_pika

        bodies: list[str] = []
        connection = await aio_pika.connect_robust(AMQP)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(self.queue, passive=True)
            deadline = time.monotonic() + timeout
            last = time.monotonic()
            while time.monotonic() < deadline and time.monotonic() - last < quiet:
                message = await queue.get(no_ack=True, fail=False)
                if message is None:
                    await asyncio.sleep(0.05)
                    continue
                bodies.append(message.body.decode())
                last = time.monotonic()
        return bodies

    def declare(self) -> None:
        asyncio.run(self._declare())

    def drain(self, quiet: float = 1.0, timeout: float = 60.0) -> list[str]:
        """The messages that arrived since the last drain (waits until none came for ``quiet`` s);
        ``path`` keeps every one."""
        bodies = asyncio.run(self._drain(quiet, timeout))
        with self.path.open("a") as out:
            out.writelines(body + "\n" for body in bodies)
        return bodies

    async def _delete(self) -> None:
        import aio_pika

        connection = await aio_pika.connect_robust(AMQP)
        async with connection:
            channel = await connection.channel()
            for queue in (self.queue, f"{self.topic}.info", f"{self.topic}.error", f"{self.topic}.warn"):
                await channel.queue_delete(queue)
            await channel.exchange_delete(self.exchange)

    def delete(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run(self._delete())


@dataclass
class Keystone:
    """A running keystone: where it answers, who its admin is, and where it writes."""

    url: str
    host: str
    port: int
    admin_credentials: Credentials
    folder: Path
    config: Path
    database: Path
    log_file: Path  # keystone's own log (oslo.log)
    request_log: Path  # uWSGI's request log
    exchange: str  # [DEFAULT] control_exchange
    topic: str  # [oslo_messaging_notifications] topics
    notifications: NotificationRecorder
    _token: str = ""

    def client(self, source: str = "127.0.0.1", port: int | None = None) -> KeystoneClient:
        """A client from loopback ``source``; ``port`` to go through a front (HAProxy...)."""
        return KeystoneClient(self.host, port or self.port, source)

    def admin(self) -> Admin:
        if not self._token:
            self._token = self.client().token(self.admin_credentials)
        return Admin(KeystoneClient(self.host, self.port, headers={"X-Auth-Token": self._token}))

    def expire_password(self, user_id: str) -> None:
        """Make ``user_id``'s current password expired (keystone counts password age in days,
        so a test cannot wait for it: the row keystone reads is moved into the past)."""
        with contextlib.closing(sqlite3.connect(self.database)) as db, db:
            db.execute(
                "UPDATE password SET expires_at_int = ?, expires_at = ? WHERE local_user_id ="
                " (SELECT id FROM local_user WHERE user_id = ?)",
                (1_000_000, "1970-01-01 00:00:01", user_id))


CONFIG = """\
[DEFAULT]
log_file = {log_file}
debug = false
control_exchange = {exchange}
notification_format = cadf
# keystone opts out of authenticate.success and .pending by default; keep the successes
notification_opt_out = identity.authenticate.pending

[database]
connection = sqlite:///{database}

[identity]
# bcrypt's least work factor: the tests make hundreds of logins
password_hash_rounds = 4

[token]
provider = fernet

[fernet_tokens]
key_repository = {folder}/fernet-keys

[fernet_receipts]
key_repository = {folder}/fernet-keys

[credential]
key_repository = {folder}/credential-keys

[oslo_messaging_notifications]
driver = messagingv2
transport_url = {amqp}
topics = {topic}

[security_compliance]
lockout_failure_attempts = {lockout_attempts}
lockout_duration = 1800
password_expires_days = 90
report_invalid_password_hash = event
invalid_password_hash_secret_key = {hash_key}
"""


def _manage(config: Path, *commands: tuple[str, ...]) -> None:
    """Run keystone-manage ``commands`` side by side (each start costs seconds of imports)."""
    procs = [(args, subprocess.Popen([str(BIN / "keystone-manage"), "--config-file", str(config), *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
             for args in commands]
    for args, proc in procs:
        _, stderr = proc.communicate(timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"keystone-manage {args[0]} failed: {stderr.decode(errors='replace')[-3000:]}")


def _hand_over(folder: Path, user: str) -> None:
    account = pwd.getpwnam(user)
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, account.pw_uid, account.pw_gid)


def _wait_until_answering(client: KeystoneClient, proc: subprocess.Popen[bytes], log: Path,
                          timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uwsgi exited with {proc.returncode}: {_tail(log)}")
        with contextlib.suppress(OSError):
            if client.request("GET", "/v3")[0] == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"keystone did not answer within {timeout}s: {_tail(log)}")


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"


@contextlib.contextmanager
def start_keystone(folder: Path, *, port: int | None = None, lockout_attempts: int = 5,
                   admin_password: str | None = None, shared_with: str | None = None) -> Iterator[Keystone]:
    """Build and run a keystone in ``folder``; stops uWSGI and removes its AMQP queues after.

    ``shared_with``: an OS account another server of this same keystone runs as (Apache's
    mod_wsgi daemon runs as www-data): the folder, database, keys and log are handed to it
    (uWSGI runs as root and is not hindered). ``folder`` must then be reachable by it."""
    folder.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    port = port or free_port()
    keystone = Keystone(
        url=f"http://127.0.0.1:{port}/v3", host="127.0.0.1", port=port,
        admin_credentials=Credentials("admin", admin_password or secrets.token_urlsafe(12)),
        folder=folder, config=folder / "keystone.conf", database=folder / "keystone.db",
        log_file=folder / "keystone.log", request_log=folder / "uwsgi-requests.log",
        exchange=f"swk-{tag}-keystone", topic=f"swk-{tag}-notifications",
        notifications=NotificationRecorder(f"swk-{tag}-keystone", f"swk-{tag}-notifications",
                                           f"swk-{tag}-recorder", folder / "notifications.jsonl"),
    )
    keystone.config.write_text(CONFIG.format(
        folder=folder, log_file=keystone.log_file, database=keystone.database, amqp=TRANSPORT_URL,
        exchange=keystone.exchange, topic=keystone.topic, lockout_attempts=lockout_attempts,
        hash_key=secrets.token_hex(16)))
    owner = ("--keystone-user", str(os.getuid()), "--keystone-group", str(os.getgid()))
    _manage(keystone.config, ("db_sync",), ("fernet_setup", *owner), ("credential_setup", *owner))
    _manage(keystone.config, ("bootstrap", f"--bootstrap-password={keystone.admin_credentials.password}",
                              "--bootstrap-public-url", keystone.url, "--bootstrap-region-id", "RegionOne"))
    if shared_with is not None:
        _hand_over(folder, shared_with)
    keystone.notifications.declare()
    server_log = folder / "uwsgi.log"
    env = {**os.environ, "OS_KEYSTONE_CONFIG_DIR": str(folder)}
    proc = subprocess.Popen(
        [str(BIN / "uwsgi"), "--http-socket", f"127.0.0.1:{port}",
         "--module", "keystone.wsgi.api:application",
         "--master", "--processes", "1", "--threads", "4", "--need-app", "--die-on-term", "--lazy-apps",
         "--logger", f"file:{server_log}", "--req-logger", f"file:{keystone.request_log}",
         # the client behind a proxy, as OpenStack-Ansible's uwsgi configuration logs it
         "--log-x-forwarded-for", "--pidfile", str(folder / "uwsgi.pid"),
         # --http-socket closes the connection after each answer: say so, or a keep-alive client
         # (requests under openstacksdk) sends its next request on a closed socket (reset by peer)
         "--add-header", "Connection: close"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder)
    try:
        _wait_until_answering(keystone.client(), proc, server_log)
        yield keystone
    finally:
        stop_process(proc)
        keystone.notifications.delete()
