"""``stackwatch store migrate DATA_FOLDER --to postgresql://...``: an embedded store's history
becomes a writer log of the shared store (from one machine to a cluster).

Steps: seal the folder's tail (a checkpoint) and verify it (refuse on any problem); refuse a
writer name the shared store already has. The new writer gets keys of its own (``keys/`` in the
given folder, k0 returned once), and its log's **first record** is a ``store.migrate`` admin
event that anchors the folder's last signed checkpoint (its bytes, signature and signer, so an
auditor checks the signature offline and, with the folder or a backup of it, links the two logs);
then every record of the folder follows in its order (folder seq s is the new log's seq s + 1,
or s + 1 - P when the folder's retention expired records 1..P: the anchor's ``seq_offset``),
stored by the writer as any append (blocks, index rows, source statistics, login attempts folded
as the embedded store folded them), and a checkpoint seals the whole. Alerts (by identity
``(rule, key)``, with their triage state, evidence and history), silences and the ingested-files
ledger (keyed by the new writer's name) go along in one transaction; an alert the shared store
already has is folded into it (first/last seen, count, evidence, history), its triage stays.
Finally the new log is verified.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psycopg

from stackwatch.core.errors import StoreError
from stackwatch.store.admin import admin_event
from stackwatch.store.keys import _create_keys
from stackwatch.store.permissions import make_private
from stackwatch.store.postgres import schema
from stackwatch.store.postgres.alerts import text
from stackwatch.store.postgres.store import DEFAULT_SCHEMA, PostgresStore, default_writer, split_url
from stackwatch.store.seal import Checkpoint, format_initial_key
from stackwatch.store.sqlite import DB_FILE, open_store, stored_format
from stackwatch.store.verify import VerifyReport, verify_store

CHUNK: Final = 5_000
"""Records read from the folder and appended per step (get_events takes at most 10,000)."""
_ALERT_COLUMNS: Final = ("rule", "key", "title", "category", "severity", "status", "time", "last_seen",
                         "count", "host", "summary", "source_ip", "user_name", "project", "service",
                         "bridge", "path", "details", "updated", "assignee", "silence")
_INSERT_ALERT: Final = (
    f"INSERT INTO alerts ({', '.join(_ALERT_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_ALERT_COLUMNS))}) "  # noqa: S608
    "ON CONFLICT (rule, key) DO NOTHING RETURNING id").encode()


@dataclass(frozen=True, slots=True)
class MoveResult:
    writer: str
    records: int
    alerts: int
    silences: int
    files: int
    initial_key: str
    public_key: str
    anchor: dict[str, Any]
    before: VerifyReport
    after: VerifyReport


def move_to_postgres(data_dir: str | Path, url: str, *, keys: str | Path, writer: str | None = None,
                     initial_keys: list[bytes] | None = None, actor: str = "stackwatch") -> MoveResult:
    """Copy the embedded store in ``data_dir`` into the shared store at ``url`` as the log of
    ``writer`` (default: the name an analyzer on this host with ``keys`` takes, so it continues
    this log), whose new keys go into ``keys``. See the module docstring."""
    data = Path(data_dir)
    if stored_format(data) is None:
        raise StoreError(f"no store in {data}")
    folder = Path(keys)
    if (folder / "keys").exists():
        raise StoreError(f"{folder / 'keys'} exists: give the new writer a keys folder of its own")
    libpq_url, own = split_url(url)
    name = writer or own.get("writer") or default_writer(folder)
    schema_name = own.get("schema") or DEFAULT_SCHEMA
    _refuse_known_writer(libpq_url, schema_name, name)
    # the folder's append lock is held from the seal to the last record copied: an analyzer
    # appending in between would add records the verified, anchored checkpoint does not cover
    with open_store(data, background_index=False) as source:
        if source.checkpoint() is None:
            raise StoreError("the folder's store has no keys (stackwatch store init): there is no signed "
                             "history to carry over")
        return _move_sealed(data, url, libpq_url, schema_name, name, folder, initial_keys, actor)


def _move_sealed(data: Path, url: str, libpq_url: str, schema_name: str, name: str, folder: Path,
                 initial_keys: list[bytes] | None, actor: str) -> MoveResult:
    """The move, the folder sealed and its append lock held by the caller."""
    before = verify_store(data, initial_keys=initial_keys)
    if not before.ok():
        first = before.first_bad or before.problems[0]
        raise StoreError(f"the folder's store does not verify, so it is not moved: {first}")
    anchor, shared_rows = _read_folder(data)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    make_private(folder)
    k0, pub = _create_keys(folder, 0)
    anchor["public_key_new"] = pub.hex()
    with PostgresStore(url, writer=name, keys=folder) as target:
        log = target.start_writer()
        if log.ledger.size or target.signers(log.writer):  # registered meanwhile by another process
            raise StoreError(f"writer {name!r} already has a log in the shared store")
        try:
            target.add_signer(pub)
            target.append_events([admin_event(actor, "store.migrate", target.log_id, anchor)])
            records = _copy_records(data, target)
            target.flush()
            with psycopg.connect(libpq_url, autocommit=True) as conn:
                schema.use_schema(conn, schema_name)
                with conn.transaction():
                    counts = _copy_shared(conn, shared_rows, name)
            target.checkpoint()
        except (StoreError, psycopg.Error) as exc:
            # the records are committed batch by batch: what was stored stays, a verifiable prefix
            # the keys in ``folder`` sign that incomplete log: a retry needs keys of its own
            raise StoreError(f"{exc}; writer {name!r}'s log in the shared store is incomplete: move the "
                             "folder again under another --writer name and another --writer-keys folder "
                             f"({folder} holds the keys of the incomplete log: keep them to verify it); "
                             "the alerts, silences and files already copied are not copied twice") from exc
    from stackwatch.store.postgres.verify import verify_postgres

    after = verify_postgres(url, initial_keys={name: [k0]}, key_dirs={name: folder}).get(name)
    if after is None or not after.ok():
        # the log and its keys exist either way: k0 is shown once, so the operator gets it here
        raise StoreError(f"the new log of writer {name!r} does not verify: "
                         f"{after.first_bad if after is not None else 'not found'}; its initial key "
                         f"(k0, shown once, needed to verify it): {format_initial_key(k0)}")
    return MoveResult(name, records, counts[0], counts[1], counts[2], format_initial_key(k0), pub.hex(),
                      anchor, before, after)


def _refuse_known_writer(libpq_url: str, schema_name: str, name: str) -> None:
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        if not schema.exists(conn, schema_name):
            return
        schema.use_schema(conn, schema_name)
        if conn.execute(b"SELECT 1 FROM writers WHERE name = %s", (name,)).fetchone() is not None:
            raise StoreError(f"writer {name!r} already has a log in the shared store: give --writer "
                             "a name of its own")


def _read_folder(data: Path) -> tuple[dict[str, Any], dict[str, list[tuple[Any, ...]]]]:
    """(the anchor: the folder's last checkpoint and what it is; its shared tables' rows)."""
    conn = sqlite3.connect(f"{(data / DB_FILE).resolve().as_uri()}?mode=ro", uri=True)
    try:
        epoch, size, body, signature = conn.execute(
            "SELECT epoch, size, body, signature FROM checkpoints ORDER BY epoch DESC LIMIT 1").fetchone()
        signer = conn.execute("SELECT public_key FROM signers WHERE from_epoch <= ? ORDER BY from_epoch DESC "
                              "LIMIT 1", (epoch,)).fetchone()
        store_id = conn.execute("SELECT value FROM meta WHERE name = 'store_id'").fetchone()
        state = conn.execute("SELECT size, pruned_to FROM ledger_state WHERE id = 1").fetchone()
        if int(state[0]) != int(size):
            raise StoreError("the folder's newest records are not sealed by a checkpoint")
        cp = Checkpoint.from_bytes(bytes(body))
        anchor = {"from_folder": str(data.resolve()), "from_store_id": str(store_id[0]) if store_id else "",
                  "from_format": stored_format(data), "from_log_id": cp.log_id, "epoch": int(epoch),
                  "size": int(size), "root": cp.root.hex(), "checkpoint": bytes(body).hex(),
                  "signature": bytes(signature).hex(),
                  "public_key": bytes(signer[0]).hex() if signer else "",
                  # new seq = folder seq + seq_offset: the anchor is record 1 and the folder's
                  # first record kept (after its own retention) is record 2
                  "first_seq": int(state[1]) + 1, "seq_offset": 1 - int(state[1])}
        columns = ", ".join(c if c in _columns(conn, "alerts") else "NULL" for c in ("id", *_ALERT_COLUMNS))
        rows = {
            "alerts": conn.execute(f"SELECT {columns} FROM alerts ORDER BY id").fetchall(),  # noqa: S608
            "evidence": conn.execute("SELECT alert_id, ref, raw, time FROM alert_evidence "
                                     "ORDER BY id").fetchall(),
            "history": conn.execute("SELECT alert_id, time, actor, status, comment FROM alert_history "
                                    "ORDER BY id").fetchall(),
            "silences": conn.execute("SELECT id, rule, key, created, created_by, reason, ends, expired, "
                                     "expired_by FROM silences ORDER BY id").fetchall()
            if _columns(conn, "silences") else [],
        }
    finally:
        conn.close()
    rows["files"] = _ingested(data)
    return anchor, rows


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}


def _ingested(data: Path) -> list[tuple[Any, ...]]:
    from stackwatch.pipeline.ingested import INGESTED_FILE

    path = data / INGESTED_FILE
    if not path.is_file():
        return []
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT path, text_bytes, lines, digest FROM files ORDER BY path").fetchall()
    finally:
        conn.close()


def _copy_records(data: Path, target: PostgresStore) -> int:
    """Every record of the folder, in order (admin records too: the log's own history)."""
    copied = 0
    with open_store(data, read_only=True) as source:
        size, first = _extent(data)
        for low in range(first, size + 1, CHUNK):
            found = source.get_events(range(low, min(low + CHUNK, size + 1)))
            if [e.seq for e in found] != list(range(low, min(low + CHUNK, size + 1))):
                raise StoreError(f"the folder's records {low}..{min(low + CHUNK, size + 1) - 1} could "
                                 "not all be read")
            target.append_events([e.event for e in found])
            copied += len(found)
    return copied


def _extent(data: Path) -> tuple[int, int]:
    conn = sqlite3.connect(f"{(data / DB_FILE).resolve().as_uri()}?mode=ro", uri=True)
    try:
        size, pruned = conn.execute("SELECT size, pruned_to FROM ledger_state WHERE id = 1").fetchone()
    finally:
        conn.close()
    return int(size), int(pruned or 0) + 1


def _copy_shared(conn: psycopg.Connection, rows: dict[str, list[tuple[Any, ...]]],
                 writer: str) -> tuple[int, int, int]:
    """Silences, alerts (evidence, history) and the ingested-files ledger, in the caller's
    transaction: (alerts, silences, files)."""
    # by identity, not blindly: a move retried after a failure (or a folder moved twice) copies
    # these again, and a silence or a history entry the shared store has is not added twice
    known = {tuple(r[1:]): int(r[0]) for r in conn.execute(
        b"SELECT id, rule, key, created, created_by, reason, ends FROM silences")}
    silence_ids: dict[int, int] = {}
    for old, *fields in rows["silences"]:
        cleaned = [text(f) if isinstance(f, str) else f for f in fields]
        same = known.get(tuple(cleaned[:6]))
        if same is None:
            found = conn.execute(b"INSERT INTO silences (rule, key, created, created_by, reason, ends, "
                                 b"expired, expired_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                                 cleaned).fetchone()
            assert found is not None
            same = known[tuple(cleaned[:6])] = int(found[0])
        silence_ids[int(old)] = same
    alert_ids: dict[int, int] = {}
    folded: set[int] = set()
    for old, *fields in rows["alerts"]:
        cleaned = [text(f) if isinstance(f, str) else f for f in fields]
        values: dict[str, Any] = dict(zip(_ALERT_COLUMNS, cleaned, strict=True))
        values["silence"] = silence_ids.get(values["silence"]) if values["silence"] is not None else None
        values["summary"] = values["summary"] or ""
        new = conn.execute(_INSERT_ALERT, list(values.values())).fetchone()
        if new is None:  # the shared store has this alert: fold the folder's sightings in, keep its triage
            new = conn.execute(
                b"UPDATE alerts SET time = least(time, %s), last_seen = greatest(last_seen, %s), "
                b"count = greatest(count, %s) WHERE rule = %s AND key = %s RETURNING id",
                (values["time"], values["last_seen"], values["count"], values["rule"],
                 values["key"])).fetchone()
            assert new is not None
            folded.add(int(new[0]))
        alert_ids[int(old)] = int(new[0])
    from stackwatch.store.alert_rows import MAX_EVIDENCE

    room = {alert: MAX_EVIDENCE - int(conn.execute(
        b"SELECT count(*) FROM alert_evidence WHERE alert_id = %s", (alert,)).fetchone()[0])  # type: ignore[index]
        for alert in folded}
    for old, ref, raw, time in rows["evidence"]:
        target = alert_ids[int(old)]
        if room.get(target, 1) <= 0:
            continue
        added = conn.execute(b"INSERT INTO alert_evidence (alert_id, ref, raw, time) VALUES (%s, %s, %s, %s) "
                             b"ON CONFLICT (alert_id, ref) DO NOTHING",
                             (target, text(ref) or "", bytes(raw), time)).rowcount
        if target in room:
            room[target] -= max(added, 0)
    had = {tuple(r) for r in conn.execute(
        b"SELECT alert_id, time, actor, status, comment FROM alert_history WHERE alert_id = ANY(%s)",
        (sorted(set(alert_ids.values())),))}
    history = [(alert_ids[int(old)], int(t), text(a) or "", s, text(c))
               for old, t, a, s, c in rows["history"]]
    with conn.cursor() as cur:
        cur.executemany(b"INSERT INTO alert_history (alert_id, time, actor, status, comment) "
                        b"VALUES (%s, %s, %s, %s, %s)", [h for h in history if h not in had])
        cur.executemany(b"INSERT INTO ingested_files VALUES (%s, %s, %s, %s, %s) ON CONFLICT (writer, path) "
                        b"DO UPDATE SET text_bytes = EXCLUDED.text_bytes, lines = EXCLUDED.lines, "
                        b"digest = EXCLUDED.digest",
                        [(writer, text(p), int(b), int(n), bytes(d)) for p, b, n, d in rows["files"]])
    return len(rows["alerts"]), len(rows["silences"]), len(rows["files"])
