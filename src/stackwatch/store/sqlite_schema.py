"""The SQLite schema and its migrations.

Two files in the data folder:

``stackwatch.db`` (the record): events, sources, alerts. Versioned with ``PRAGMA
user_version`` and upgraded by ``MIGRATIONS`` (one function per version step, run in one
transaction). A database newer than this code is refused, never touched.

``stackwatch-index.db`` (derived, rebuildable from the record at any time): the full-text
index over messages and the lookup index for source IP, user and request id. They live in
their own file so they can be filled in bulk, after the fact, by another connection
(another thread or process) without taking the record's write lock: SQLite has one writer
per file, and per-row index maintenance was what throttled ingest (a per-row FTS5 insert
measured ~8x slower than a plain row insert; four secondary B-tree indexes on random keys
cost about a third of the insert rate).

Only the cheap, append-ordered indexes are kept on the events table itself: time, and
(source, time). ``source`` is a small integer naming (host, service) in ``sources``, which
also carries each source's first/last seen and count.

Optional text columns hold ``''`` for "absent": binding ``None`` through Python's sqlite3
costs ~10x more than binding a string, and this is the hot path.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable
from typing import Final

from stackwatch.core.errors import StoreError

Migration = Callable[[sqlite3.Connection], None]


def _v1_events(conn: sqlite3.Connection) -> None:
    conn.execute("""CREATE TABLE meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID""")
    # Ties the derived index file to this record (a restored or replaced record gets a new index).
    conn.execute("INSERT INTO meta VALUES ('store_id', ?)", (secrets.token_hex(16),))
    conn.execute("""CREATE TABLE sources (
        id INTEGER PRIMARY KEY,
        host TEXT NOT NULL,
        service TEXT NOT NULL,
        first_seen INTEGER,           -- event time, microseconds since the epoch (UTC)
        last_seen INTEGER,
        count INTEGER NOT NULL DEFAULT 0,
        last_received INTEGER,
        UNIQUE (host, service))""")
    # seq is dense and monotonic: the order of the record. No foreign key on `source`
    # (it would cost a lookup per inserted row); the writer allocates source ids itself.
    conn.execute("""CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        time INTEGER NOT NULL,        -- microseconds since the epoch, UTC
        received INTEGER NOT NULL,
        source INTEGER NOT NULL,      -- sources.id: (host, service)
        severity TEXT NOT NULL,
        kind TEXT NOT NULL,
        action TEXT NOT NULL,         -- '' when absent (also every column down to request_id)
        outcome TEXT NOT NULL,
        init_name TEXT NOT NULL,
        init_id TEXT NOT NULL,
        init_project TEXT NOT NULL,
        init_domain TEXT NOT NULL,
        init_ip TEXT NOT NULL,
        init_agent TEXT NOT NULL,
        target_type TEXT NOT NULL,
        target_id TEXT NOT NULL,
        target_name TEXT NOT NULL,
        observer TEXT NOT NULL,
        request_id TEXT NOT NULL,
        message TEXT NOT NULL,
        attrs TEXT NOT NULL,          -- JSON object
        raw BLOB NOT NULL,            -- the record's exact bytes
        origin TEXT NOT NULL,
        ref TEXT NOT NULL,
        chain BLOB                    -- reserved for the tamper-evident hash chain (NULL until then)
    )""")
    conn.execute("CREATE INDEX events_time ON events (time)")
    conn.execute("CREATE INDEX events_source_time ON events (source, time)")
    # The flat shape (host and service inline) for ad-hoc SQL and retro hunts.
    conn.execute("""CREATE VIEW events_flat AS
        SELECT e.seq, e.time, e.received, s.host, s.service, e.severity, e.kind, e.action, e.outcome,
               e.init_name, e.init_id, e.init_project, e.init_domain, e.init_ip, e.init_agent,
               e.target_type, e.target_id, e.target_name, e.observer, e.request_id, e.message,
               e.attrs, e.raw, e.origin, e.ref
        FROM events AS e JOIN sources AS s ON s.id = e.source""")


def _v2_alerts(conn: sqlite3.Connection) -> None:
    conn.execute("""CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        rule TEXT NOT NULL,
        key TEXT NOT NULL,
        title TEXT NOT NULL,
        category TEXT NOT NULL,
        severity TEXT NOT NULL,
        status TEXT NOT NULL,
        time INTEGER NOT NULL,        -- first seen
        last_seen INTEGER NOT NULL,
        count INTEGER NOT NULL,
        host TEXT,
        summary TEXT NOT NULL,
        source_ip TEXT,
        user_name TEXT,
        project TEXT,
        service TEXT,
        bridge TEXT,
        path TEXT,
        details TEXT NOT NULL,        -- JSON object
        updated INTEGER NOT NULL,     -- wall clock of the last change
        UNIQUE (rule, key))""")
    conn.execute("CREATE INDEX alerts_last_seen ON alerts (last_seen)")
    conn.execute("CREATE INDEX alerts_status ON alerts (status, last_seen)")
    conn.execute("""CREATE TABLE alert_evidence (
        id INTEGER PRIMARY KEY,
        alert_id INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
        ref TEXT NOT NULL,
        raw BLOB NOT NULL,
        time INTEGER,
        UNIQUE (alert_id, ref))""")
    conn.execute("""CREATE TABLE alert_history (
        id INTEGER PRIMARY KEY,
        alert_id INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
        time INTEGER NOT NULL,
        actor TEXT NOT NULL,
        status TEXT NOT NULL,
        comment TEXT)""")
    conn.execute("CREATE INDEX alert_history_alert ON alert_history (alert_id, id)")


def _v3_ledger(conn: sqlite3.Connection) -> None:
    """The tamper-evident ledger (see ``ledger``): chain state, Merkle node cache, signed and
    sealed checkpoints, signer history, the boundary of a pruned range, the admin outbox.
    Events stored before this version are chained here, in the migration's transaction."""
    from stackwatch.store.record_ledger import chain_existing

    conn.execute("""CREATE TABLE ledger_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        size INTEGER NOT NULL,        -- records chained (= max(seq))
        head BLOB NOT NULL,           -- chain hash of record `size`
        merkle BLOB NOT NULL,         -- MerkleAccumulator.to_bytes() at `size`
        pruned_to INTEGER NOT NULL DEFAULT 0,   -- records 1..pruned_to expired by retention
        pruned_head BLOB,             -- chain hash of record pruned_to
        pruned_merkle BLOB,           -- accumulator (Merkle frontier) at pruned_to
        pruned_time INTEGER)""")
    conn.execute("""CREATE TABLE merkle_nodes (
        level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
        PRIMARY KEY (level, idx)) WITHOUT ROWID""")
    conn.execute("""CREATE TABLE checkpoints (
        epoch INTEGER PRIMARY KEY,
        size INTEGER NOT NULL,
        time INTEGER NOT NULL,
        body BLOB NOT NULL,           -- canonical checkpoint bytes (seal.Checkpoint)
        signature BLOB NOT NULL,      -- Ed25519 over body
        seal BLOB NOT NULL)           -- HMAC tag under the epoch's ratchet key""")
    conn.execute("""CREATE TABLE signers (
        from_epoch INTEGER PRIMARY KEY,   -- checkpoints from this epoch on are signed/sealed by
        public_key BLOB NOT NULL,         -- this key and a seal ratchet with its own k0
        reason TEXT NOT NULL,             -- init, restore, promote
        time INTEGER NOT NULL)""")
    conn.execute("""CREATE TABLE pruned_leaves (idx INTEGER PRIMARY KEY, hash BLOB NOT NULL)""")
    conn.execute("""CREATE TABLE admin_outbox (id INTEGER PRIMARY KEY, event BLOB NOT NULL)""")
    conn.execute("INSERT OR IGNORE INTO meta VALUES ('role', 'primary')")
    state = chain_existing(conn)
    size, head, merkle = state.snapshot()
    conn.execute("INSERT INTO ledger_state (id, size, head, merkle) VALUES (1, ?, ?, ?)",
                 (size, head, merkle))
    state.save(conn)


def _v4_chain_over_leaves(conn: sqlite3.Connection) -> None:
    """Chain hashes link Merkle leaf hashes instead of hashing each record a second time."""
    from stackwatch.store.record_ledger import rechain_over_leaves

    rechain_over_leaves(conn)


def _v5_triage(conn: sqlite3.Connection) -> None:
    """Triage at volume: an alert's assignee and the silence that muted it at its last
    firing; silences (mute a rule, or a rule and key, until a time, with who and why)."""
    # Written to be re-runnable (tests re-label a current database as an older version).
    columns = {row[1] for row in conn.execute("PRAGMA table_info(alerts)")}
    if "assignee" not in columns:
        conn.execute("ALTER TABLE alerts ADD COLUMN assignee TEXT")
    if "silence" not in columns:
        conn.execute("ALTER TABLE alerts ADD COLUMN silence INTEGER")  # silences.id; NULL: not muted
    conn.execute("CREATE INDEX IF NOT EXISTS alerts_assignee ON alerts (assignee, last_seen)")
    conn.execute("""CREATE TABLE IF NOT EXISTS silences (
        id INTEGER PRIMARY KEY,
        rule TEXT NOT NULL,
        key TEXT NOT NULL,            -- '' mutes every key of the rule
        created INTEGER NOT NULL,     -- wall clock, microseconds since the epoch (UTC)
        created_by TEXT NOT NULL,
        reason TEXT NOT NULL,
        ends INTEGER NOT NULL,
        expired INTEGER,              -- set when expired early by hand
        expired_by TEXT)""")
    conn.execute("CREATE INDEX IF NOT EXISTS silences_rule ON silences (rule, key, ends)")


def _v6_page_rollups(conn: sqlite3.Connection) -> None:
    """What keeps the dashboard fast on a big store (see ``sqlite_rollup``): events per source
    and minute, maintained on append; partial indexes over the login and audit events."""
    from stackwatch.store.sqlite_rollup import create_rollups

    create_rollups(conn)


def _v7_login_attempts(conn: sqlite3.Connection) -> None:
    """The keystone login attempts, correlated at ingest (see ``sqlite_attempts``), recounted
    from the events already stored."""
    from stackwatch.store.sqlite_attempts import create, rebuild

    create(conn)
    rebuild(conn)


MIGRATIONS: Final[list[Migration]] = [_v1_events, _v2_alerts, _v3_ledger, _v4_chain_over_leaves, _v5_triage,
                                      _v6_page_rollups, _v7_login_attempts]
"""MIGRATIONS[i] upgrades a database from version i to i + 1. Append only; never edit one
that has shipped."""
SCHEMA_VERSION: Final = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the database on ``conn`` (autocommit mode) to ``target``; returns the version
    found. Refuses a database newer than this code, and a non-empty database that is not ours."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = conn.execute("PRAGMA user_version").fetchone()[0]
        if found > SCHEMA_VERSION:
            raise StoreError(f"the store's schema version {found} is newer than this stackwatch "
                             f"supports ({SCHEMA_VERSION}); upgrade stackwatch")
        if found == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise StoreError("the database is not a stackwatch store (it has tables but no version)")
        for version in range(found, target):
            MIGRATIONS[version](conn)
        if target > found:
            conn.execute(f"PRAGMA user_version = {int(target)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


INDEX_VERSION: Final = 3
"""Version of the derived index file; a mismatch means drop and rebuild, not migrate.
3: ``event_keys`` values packed (store/index_keys.py)."""

FIELD_IP: Final = 1
FIELD_USER_NAME: Final = 2
FIELD_USER_ID: Final = 3
FIELD_REQUEST: Final = 4
FTS_MAX_CHARS: Final = 65536  # longest message prefix the full-text index takes
KEY_GEN_BITS: Final = 19
"""event_keys rows lead with ``gen = seq >> KEY_GEN_BITS`` (2**19 = 524,288 seqs a generation)."""


def create_index_schema(conn: sqlite3.Connection) -> None:
    """The derived index file: drop whatever is there and create it empty (inside the
    caller's transaction)."""
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN "
                                "('meta', 'events_fts', 'event_keys')").fetchall():
        conn.execute(f"DROP TABLE {name}")  # name comes from the fixed list above
    conn.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID")
    conn.execute("INSERT INTO meta VALUES ('indexed_seq', 0), ('store_id', '')")
    # Contentless: the messages live in the record; this only maps words to seqs. No column
    # sizes (columnsize = 0): they serve bm25 ranking, which no search uses (hits come by seq),
    # and cost 10 of the index's 80 bytes a line (measured, 300k benchmark messages). An index
    # file made before keeps its sizes table and answers the same (no rebuild is forced).
    conn.execute("CREATE VIRTUAL TABLE events_fts USING fts5 (message, content = '', columnsize = 0, "
                 "tokenize = 'unicode61 remove_diacritics 2')")
    # (field, value) -> seq for source IP, user name, user id and request id, led by the seq's
    # generation: values such as request ids are random, and keyed by (field, value) alone every
    # insert lands on a random page of one ever-growing B-tree (index time per event grew ~2x from
    # 0.5M to 3M events, and kept growing). Led by gen, inserts only touch the newest
    # generation's subtree, which stays the same size (and in cache); a lookup seeks
    # (gen, field, value) once per generation (gen IN (0..max)), a few dozen seeks at most.
    # A value is its text or, in a canonical shape (UUIDs, IPv4...), a packed BLOB
    # (store/index_keys.py): no type, so neither is converted to the other.
    conn.execute("""CREATE TABLE event_keys (
        gen INTEGER NOT NULL, field INTEGER NOT NULL, value NOT NULL, seq INTEGER NOT NULL,
        PRIMARY KEY (gen, field, value, seq)) WITHOUT ROWID""")
    conn.execute(f"PRAGMA user_version = {INDEX_VERSION}")
