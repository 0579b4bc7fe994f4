"""Replication for failover: a standby follows the primary and can be promoted.

**Connection.** The standby connects to the primary (``listen`` address in the primary's
``<data>/replication.json``, written by ``stackwatch store replicate``). Both prove knowledge of a
shared secret (challenge-response with fresh nonces), then every frame carries
``HMAC-SHA256(session key, direction counter || type || payload)``, so frames cannot be forged,
replayed, reordered or dropped unnoticed. Optionally the socket is wrapped in mutual TLS first
(``tls: {cert, key, ca}`` on both sides) for confidentiality across a network.

**What the standby checks.** Records arrive with the primary's chain hashes; the standby
recomputes every chain hash and Merkle leaf itself and refuses a batch that does not match.
Each checkpoint must follow the previous one (epoch, prev link), be signed by the signer
key for its epoch (pinned on first contact or with ``--public-key``), have the root the
standby computed itself, and come with a consistency proof from the standby's previous
checkpoint that verifies (RFC 9162). Anything else stops the standby with an error.

**Acknowledged means replicated (sync mode, the default).** The primary's ``flush()`` returns
only after the standby has committed every record the primary committed (the standby acks
after its own commit). If no standby acknowledges within ``timeout`` seconds, ``flush()`` raises:
the records are in the primary's store but not acknowledged, and the caller must treat them as
such. In ``async`` mode ``flush()`` does not wait; a failover may then lose the last records.
On a clean shutdown the store's ``close()`` seals the tail with a checkpoint and, in sync mode,
waits (``wait_sealed``) until the standby has verified and stored it.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import os
import secrets
import socket
import sqlite3
import ssl
import struct
import threading
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import msgspec

from stackwatch.core.errors import IntegrityError, StoreError
from stackwatch.store.checkpoints import last_checkpoint
from stackwatch.store.integrity.block_ledger import BlockLedger
from stackwatch.store.integrity.proofs import BlockConsistency, block_consistency, check_block_consistency
from stackwatch.store.integrity.sqlite_io import SQLiteLedgerIO
from stackwatch.store.merkle import verify_consistency
from stackwatch.store.record_ledger import reader
from stackwatch.store.rows import EVENT_COLUMNS
from stackwatch.store.seal import NO_PREV, Checkpoint, verify_checkpoint_signature

if TYPE_CHECKING:  # the store imports this module (a primary ships from it)
    from stackwatch.store.sqlite import SQLiteStore

log = logging.getLogger(__name__)

CONFIG_FILE: Final = "replication.json"
MAGIC: Final = b"SWREPL1\n"
HELLO, RECORDS, CHECKPOINT, ACK, ERROR = 1, 2, 3, 4, 5
CHUNK: Final = 5000
MAX_FRAME: Final = 256 * 1024 * 1024
_LEN: Final = struct.Struct(">IB")

_WIRE_SELECT: Final = (  # fixed column names
    "SELECT e.seq, e.time, e.received, s.host, s.service, "  # noqa: S608
    + ", ".join(f"e.{c}" for c in EVENT_COLUMNS[4:])
    + ", e.chain FROM events AS e JOIN sources AS s ON s.id = e.source "
    "WHERE e.seq BETWEEN ? AND ? ORDER BY e.seq"
)


_BLOCK_HEAD: Final = (  # the chain hash of the block ending at record ?1 (an index seek, not a scan)
    "SELECT chain FROM blocks WHERE first_seq = (SELECT max(first_seq) FROM blocks WHERE first_seq <= ?1) "
    "AND first_seq + count - 1 = ?1"
)
_WIRE_BLOCKS: Final = (
    "SELECT id, first_seq, count, digests, data, chain FROM blocks WHERE first_seq > ? "
    "AND first_seq + count - 1 <= ? ORDER BY id LIMIT ?"
)
BLOCKS_PER_FRAME: Final = 64
"""Record format 2 ships whole blocks (up to 64 a frame: a few MB) and no index rows: the standby
rebuilds each record's narrow row from the record it verified against its digest."""


def _format(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
    return int(row[0]) if row else 1


def _refusal(conn: sqlite3.Connection, fmt: int, theirs: int, size: int) -> str | None:
    """Why this primary cannot serve that standby, or None."""
    if theirs != fmt:
        return (f"the primary's store is in record format {fmt}, the standby's in format {theirs}: "
                f"make the standby with stackwatch store init --standby --format {fmt}")
    if fmt != 2:
        return None
    if conn.execute("SELECT 1 FROM meta WHERE name = 'v2_anchor'").fetchone():
        return ("the primary's store was migrated from format 1: a standby cannot follow it from "
                "empty (restore a backup of it as the standby's starting point is not supported yet)")
    pruned = conn.execute("SELECT coalesce(pruned_to, 0) FROM ledger_state").fetchone()
    if pruned and pruned[0] and size < int(pruned[0]):
        return (f"the primary expired records 1..{pruned[0]} by retention: a standby holding "
                f"{size} records cannot follow it")
    return None


def _wire_blocks(conn: sqlite3.Connection, sent: int, upto: int) -> list[Any]:
    """The next blocks after record ``sent``, none past record ``upto`` (a block end)."""
    rows = conn.execute(_WIRE_BLOCKS, (sent, upto, BLOCKS_PER_FRAME)).fetchall()
    if not rows or rows[0][1] != sent + 1:
        raise StoreError(f"the primary has no block starting at record {sent + 1}")
    return rows


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise StoreError(f"address {text!r}: use HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def read_secret(path: str | os.PathLike[str]) -> bytes:
    data = Path(path).read_bytes().strip()
    if len(data) < 16:
        raise StoreError(f"{path}: a replication secret needs at least 16 bytes")
    if os.stat(path).st_mode & 0o077:
        raise StoreError(f"{path}: the replication secret is readable by others; chmod 600 it")
    return data


def configured(data_dir: Path) -> dict[str, Any] | None:
    """Primary options from ``<data>/replication.json``, or None."""
    path = Path(data_dir) / CONFIG_FILE
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    return {
        "listen": parse_address(doc["listen"]),
        "secret": read_secret(doc["secret_file"]),
        "sync": doc.get("mode", "sync") == "sync",
        "timeout": float(doc.get("timeout", 10.0)),
        "tls": doc.get("tls"),
    }


def tls_context(tls: dict[str, str] | None, *, server: bool) -> ssl.SSLContext | None:
    """Mutual TLS: both sides present a certificate signed by ``ca``."""
    if not tls:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(tls["cert"], tls["key"])
    ctx.load_verify_locations(tls["ca"])
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = False  # peers are pinned by the CA and the shared secret, not by name
    return ctx


class Channel:
    """HMAC-authenticated frames over a connected socket."""

    def __init__(self, sock: socket.socket, send_key: bytes, recv_key: bytes) -> None:
        self.sock = sock
        self._send_key, self._recv_key = send_key, recv_key
        self._sent = self._received = 0
        self._file = sock.makefile("rb")

    @classmethod
    def server(cls, sock: socket.socket, secret: bytes) -> Channel:
        nonce_s = secrets.token_bytes(16)
        sock.sendall(MAGIC + nonce_s)
        reply = _read_exact(sock, 48)
        nonce_c, proof = reply[:16], reply[16:]
        if not hmac.compare_digest(proof, hmac.digest(secret, b"client" + nonce_s + nonce_c, "sha256")):
            raise IntegrityError("replication peer does not know the shared secret")
        sock.sendall(hmac.digest(secret, b"server" + nonce_c + nonce_s, "sha256"))
        return cls(
            sock, _session(secret, b"s2c", nonce_s, nonce_c), _session(secret, b"c2s", nonce_s, nonce_c)
        )

    @classmethod
    def client(cls, sock: socket.socket, secret: bytes) -> Channel:
        head = _read_exact(sock, len(MAGIC) + 16)
        if head[: len(MAGIC)] != MAGIC:
            raise IntegrityError("the peer is not a stackwatch primary")
        nonce_s, nonce_c = head[len(MAGIC) :], secrets.token_bytes(16)
        sock.sendall(nonce_c + hmac.digest(secret, b"client" + nonce_s + nonce_c, "sha256"))
        if not hmac.compare_digest(
            _read_exact(sock, 32), hmac.digest(secret, b"server" + nonce_c + nonce_s, "sha256")
        ):
            raise IntegrityError("the primary does not know the shared secret")
        return cls(
            sock, _session(secret, b"c2s", nonce_s, nonce_c), _session(secret, b"s2c", nonce_s, nonce_c)
        )

    def send(self, kind: int, obj: Any) -> None:
        payload = msgspec.msgpack.encode(obj)
        tag = hmac.digest(self._send_key, self._sent.to_bytes(8, "big") + bytes([kind]) + payload, "sha256")
        self._sent += 1
        self.sock.sendall(_LEN.pack(len(payload), kind) + payload + tag)

    def recv(self) -> tuple[int, Any]:
        head = self._file.read(_LEN.size)
        if len(head) < _LEN.size:
            raise ConnectionError("replication peer closed the connection")
        size, kind = _LEN.unpack(head)
        if size > MAX_FRAME:
            raise IntegrityError("replication frame too large")
        body = self._file.read(size + 32)
        if len(body) < size + 32:
            raise ConnectionError("replication peer closed the connection mid-frame")
        payload, tag = body[:size], body[size:]
        want = hmac.digest(
            self._recv_key, self._received.to_bytes(8, "big") + bytes([kind]) + payload, "sha256"
        )
        if not hmac.compare_digest(tag, want):
            raise IntegrityError("replication frame failed authentication (forged, replayed or reordered)")
        self._received += 1
        return kind, msgspec.msgpack.decode(payload)

    def close(self) -> None:
        try:
            self._file.close()
            self.sock.close()
        except OSError:
            pass


def _session(secret: bytes, label: bytes, nonce_s: bytes, nonce_c: bytes) -> bytes:
    return hmac.digest(secret, b"session " + label + nonce_s + nonce_c, "sha256")


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("replication peer closed the connection")
        data += chunk
    return data


class Primary:
    """The primary's side, run by the appending process: serves one standby at a time."""

    def __init__(
        self,
        data_dir: Path,
        *,
        listen: tuple[str, int],
        secret: bytes,
        sync: bool = True,
        timeout: float = 10.0,
        tls: dict[str, str] | None = None,
    ) -> None:
        self.db = Path(data_dir) / "stackwatch.db"
        self.secret, self.sync, self.timeout = secret, sync, timeout
        self._tls = tls_context(tls, server=True)
        self._cond = threading.Condition()
        self._target = 0
        self.acked = 0
        self.sealed = 0  # size of the newest checkpoint the standby has verified and stored
        self.connected = False
        self._stop = False
        self._listener = socket.create_server(listen, reuse_port=False)
        self._listener.settimeout(0.5)
        self.address = self._listener.getsockname()[:2]
        self._thread = threading.Thread(target=self._accept_loop, name="stackwatch-replication", daemon=True)
        self._thread.start()

    def committed(self, size: int) -> None:
        with self._cond:
            self._target = max(self._target, size)
            self._cond.notify_all()

    def wait_acked(self, size: int) -> None:
        """Block until the standby holds ``size`` records (sync mode); StoreError on timeout."""
        if not self.sync:
            return
        with self._cond:
            self._target = max(self._target, size)
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: self.acked >= size, timeout=self.timeout):
                raise StoreError(
                    f"the standby did not acknowledge records up to {size} within {self.timeout}s: "
                    "they are stored on the primary but NOT acknowledged"
                )

    def wait_sealed(self, size: int) -> bool:
        """Wait (up to ``timeout``) until the standby holds a checkpoint covering ``size``
        records; False when no standby is connected or it did not come in time."""
        with self._cond:
            if not self.connected:
                return self.sealed >= size
            self._target = max(self._target, size)
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self.sealed >= size, timeout=self.timeout)

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._listener.close()
        self._thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._stop:
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                sock.settimeout(30)
                if self._tls is not None:
                    sock = self._tls.wrap_socket(sock, server_side=True)
                self._serve(Channel.server(sock, self.secret))
            except (OSError, ConnectionError, IntegrityError, StoreError, ssl.SSLError, ValueError) as exc:
                log.warning("replication: standby connection ended: %s", exc)
            finally:
                self.connected = False
                sock.close()

    def _serve(self, chan: Channel) -> None:
        conn = sqlite3.connect(f"{self.db.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        try:
            kind, hello = chan.recv()
            if kind != HELLO:
                raise IntegrityError("expected HELLO from the standby")
            sent, sent_epoch = int(hello["size"]), int(hello["epoch"])
            old_size = int(hello["cp_size"])
            fmt = _format(conn)
            refusal = _refusal(conn, fmt, int(hello.get("format", 1)), sent)
            if refusal:
                chan.send(ERROR, {"message": refusal})
                raise IntegrityError(refusal)
            ours = conn.execute("SELECT size FROM ledger_state").fetchone()[0]
            head_sql = _BLOCK_HEAD if fmt == 2 else "SELECT chain FROM events WHERE seq = ?"
            head = (bytes(hello["head"]),)
            if sent > ours or (sent and conn.execute(head_sql, (sent,)).fetchone() != head):
                chan.send(ERROR, {"message": f"standby diverged from the primary at or before seq {sent}"})
                raise IntegrityError("standby diverged from the primary")
            with self._cond:
                self.acked = max(self.acked, sent)
                self.sealed = max(self.sealed, old_size)
                self._target = max(self._target, ours)  # catch up on what was committed before
                self.connected = True
                self._cond.notify_all()
            while not self._stop:
                with self._cond:
                    self._cond.wait_for(functools.partial(self._moved_past, sent), timeout=0.5)
                if self._stop:
                    return
                target = conn.execute("SELECT size FROM ledger_state").fetchone()[0]
                cps = conn.execute(
                    "SELECT epoch, size, body, signature, seal FROM checkpoints WHERE epoch > ? "
                    "AND size <= ? ORDER BY epoch",
                    (sent_epoch, target),
                ).fetchall()
                signers = [
                    list(r) for r in conn.execute("SELECT from_epoch, public_key, reason, time FROM signers")
                ]
                for epoch, size, body, signature, tag in [*cps, (None, target, None, None, None)]:
                    while sent < size:
                        if fmt == 2:
                            chan.send(RECORDS, {"blocks": _wire_blocks(conn, sent, size)})
                        else:
                            end = min(size, sent + CHUNK)
                            rows = conn.execute(_WIRE_SELECT, (sent + 1, end)).fetchall()
                            chan.send(RECORDS, {"rows": rows})
                        sent = self._await_ack(chan)
                    if epoch is None:
                        continue
                    frame = {"body": body, "signature": signature, "seal": tag, "signers": signers,
                             "old_size": old_size}
                    if fmt == 2:
                        c = block_consistency(SQLiteLedgerIO(conn), old_size, size)
                        frame.update(old_blocks=c.old_blocks, old_mth=c.old_mth, proof=c.proof)
                    else:
                        frame["proof"] = (
                            reader(conn).consistency_proof(old_size, size) if 0 < old_size < size else []
                        )
                    chan.send(CHECKPOINT, frame)
                    self._await_ack(chan)
                    sent_epoch, old_size = epoch, size
                    with self._cond:
                        self.sealed = max(self.sealed, size)
                        self._cond.notify_all()
        finally:
            conn.close()

    def _moved_past(self, done: int) -> bool:
        """What the sending loop waits for: stopping, or records past ``done`` to send."""
        return self._stop or self._target > done

    def _await_ack(self, chan: Channel) -> int:
        kind, msg = chan.recv()
        if kind == ERROR:
            raise IntegrityError(f"standby refused: {msg['message']}")
        if kind != ACK:
            raise IntegrityError("expected ACK from the standby")
        with self._cond:
            self.acked = max(self.acked, int(msg["size"]))
            self._cond.notify_all()
        return int(msg["size"])


class Standby:
    """Follows a primary into the local store (role ``standby``)."""

    def __init__(
        self,
        store: SQLiteStore,
        primary: tuple[str, int],
        secret: bytes,
        *,
        public_key: bytes | None = None,
        tls: dict[str, str] | None = None,
        on_progress: Callable[[int, int | None], None] | None = None,
    ) -> None:
        if store.role != "standby":
            raise StoreError("the local store is not a standby (stackwatch store init --standby)")
        self.store, self.primary, self.secret = store, primary, secret
        self._pin = public_key
        self._tls = tls_context(tls, server=False)
        self._progress = on_progress
        self.stop = threading.Event()
        if store._append_lock is None:
            store._take_append_lock(replicate=False)  # the standby is the only writer of its store

    def run(self, *, retry: float = 1.0) -> None:
        """Follow until ``stop`` is set; reconnects on connection loss, raises IntegrityError on
        anything that does not verify."""
        while not self.stop.is_set():
            try:
                sock = socket.create_connection(self.primary, timeout=30)
            except OSError as exc:
                log.info("replication: primary %s:%d unreachable: %s", *self.primary, exc)
                self.stop.wait(retry)
                continue
            try:
                if self._tls is not None:
                    sock = self._tls.wrap_socket(sock)
                sock.settimeout(None)
                self._follow(Channel.client(sock, self.secret))
            except (ConnectionError, OSError, ssl.SSLError) as exc:
                log.info("replication: connection lost: %s", exc)
            finally:
                sock.close()
            self.stop.wait(retry)

    def _follow(self, chan: Channel) -> None:
        store = self.store
        cp = last_checkpoint(store._conn)
        head = store._conn.execute("SELECT head FROM ledger_state").fetchone()[0]
        chan.send(
            HELLO,
            {
                "format": store.format,
                "size": store.size,
                "head": head,
                "epoch": cp.checkpoint.epoch if cp else -1,
                "cp_size": cp.checkpoint.size if cp else 0,
                "cp_root": cp.checkpoint.root if cp else sha256(b"").digest(),
            },
        )
        while not self.stop.is_set():
            kind, msg = chan.recv()
            try:
                if kind == RECORDS:
                    store.apply_replicated(msg["blocks"] if store.format == 2 else msg["rows"])
                elif kind == CHECKPOINT:
                    self._checkpoint(msg, cp)
                    cp = last_checkpoint(store._conn)
                elif kind == ERROR:
                    raise IntegrityError(f"primary refused: {msg['message']}")
                else:
                    raise IntegrityError(f"unexpected frame type {kind}")
            except IntegrityError as exc:
                try:
                    chan.send(ERROR, {"message": str(exc)})
                finally:
                    raise
            chan.send(ACK, {"size": store.size})
            if self._progress is not None:
                self._progress(store.size, cp.checkpoint.epoch if cp else None)

    def _checkpoint(self, msg: dict[str, Any], previous: Any) -> None:
        store = self.store
        body, signature, tag = bytes(msg["body"]), bytes(msg["signature"]), bytes(msg["seal"])
        try:
            cp = Checkpoint.from_bytes(body)
        except ValueError as exc:
            raise IntegrityError(f"checkpoint from the primary is malformed: {exc}") from None
        expected_epoch = previous.checkpoint.epoch + 1 if previous else None
        if expected_epoch is not None and cp.epoch != expected_epoch:
            raise IntegrityError(f"checkpoint epoch {cp.epoch} does not follow epoch {expected_epoch - 1}")
        if cp.prev != (previous.checkpoint.hash() if previous else NO_PREV):
            raise IntegrityError(f"checkpoint epoch {cp.epoch} does not link to the previous checkpoint")
        assert store._ledger is not None  # loaded when the store opened; None only once closed
        if cp.size != store.size or cp.root != store._ledger.root():
            raise IntegrityError(
                f"checkpoint epoch {cp.epoch} (size {cp.size}) does not match the records "
                f"received (size {store.size})"
            )
        signers = sorted((int(e), bytes(k), str(r), int(t)) for e, k, r, t in msg["signers"])
        key = next((k for e, k, _, _ in reversed(signers) if e <= cp.epoch), None)
        if key is None:
            raise IntegrityError(f"no signer key for checkpoint epoch {cp.epoch}")
        known = [bytes(k) for (k,) in store._conn.execute("SELECT public_key FROM signers")]
        if self._pin is not None and key != self._pin and key not in known:
            raise IntegrityError("checkpoint is signed by a key that is not the pinned public key")
        if not verify_checkpoint_signature(key, body, signature):
            raise IntegrityError(f"checkpoint epoch {cp.epoch}: signature does not verify")
        if self._pin is None and not known:
            self._pin = key  # trust on first use; later checkpoints must chain from here
        old_size = int(msg["old_size"])
        if previous is not None and old_size:
            proof = [bytes(h) for h in msg["proof"]]
            if old_size != previous.checkpoint.size:
                reason: str | None = f"it starts from size {old_size}, not {previous.checkpoint.size}"
            elif store.format == 2:  # over block leaves: the new tree is the one received here
                ledger = store._ledger
                assert isinstance(ledger, BlockLedger)  # a format-2 store's (store/sqlite_blocks.py)
                reason = check_block_consistency(previous.checkpoint.root, cp.root, BlockConsistency(
                    int(msg["old_blocks"]), ledger.blocks, bytes(msg["old_mth"]), ledger.acc.root(), proof))
            elif not verify_consistency(old_size, cp.size, previous.checkpoint.root, cp.root, proof):
                reason = "it does not verify"
            else:
                reason = None
            if reason is not None:
                raise IntegrityError(
                    f"consistency proof from size {old_size} to {cp.size}: {reason}: "
                    "the primary's log did not only grow"
                )

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?)",
                (cp.epoch, cp.size, cp.time_us, body, signature, tag),
            )
            conn.executemany("INSERT OR IGNORE INTO signers VALUES (?, ?, ?, ?)", signers)

        store.apply_replicated([], checkpoints=[insert])
