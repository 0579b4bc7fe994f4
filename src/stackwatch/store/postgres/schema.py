"""The PostgreSQL store's tables (one schema per store, ``stackwatch`` unless asked).

Events of every writer share one ``events`` table of **narrow rows** (record format 2: the
record's exact bytes live in its writer's ``blocks``): ``id`` is the event's store-wide number,
``(writer, seq)`` its place in its writer's log (see ``ids``). Text columns sort as bytes
(``COLLATE "C"``) so a prefix ``adm*`` is an index range, as in the embedded store.
``words`` is the full-text vector of the message, built by the writer (``text.py``) with the
same notion of a word as the embedded store's FTS5 tokenizer.

Everything a writer's log owns (blocks, ledger state, Merkle nodes, checkpoints, signers,
pruned leaves) is keyed by ``writer``; alerts, their evidence and history, silences and
sources are shared by all writers.
"""

from __future__ import annotations

from typing import Final

import psycopg
from psycopg import sql

from stackwatch.core.errors import StoreError
from stackwatch.store.postgres import attempts, ingested, partitions, ticks

SCHEMA_VERSION: Final = 5
"""1: the first; 2: the keystone login attempts (``attempts.TABLES``) and commit ticks
(``ticks.TABLES``), what ``analyze`` stored (``ingested.TABLES``); 3: the cluster partitions'
checkpoints (``partitions.TABLE``); 4: the copies each attempt claimed
(``attempt_refs``: a login stored by two writers counts once); 5: the partitions'
ownership epochs (``partitions.EPOCH``)."""
_LOCK_KEY: Final = 0x5357_5343  # advisory lock serialising schema creation ('SWSC')

_TABLES: Final = (
    """CREATE TABLE IF NOT EXISTS meta (name text PRIMARY KEY, value text NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS writers (
        id integer PRIMARY KEY,            -- 0, 1, 2...: the high bits of its events' ids
        name text COLLATE "C" NOT NULL UNIQUE,
        created bigint NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS sources (
        id serial PRIMARY KEY,
        host text COLLATE "C" NOT NULL,
        service text COLLATE "C" NOT NULL,
        UNIQUE (host, service))""",
    # Per writer, so two writers never wait on one another's statistics rows.
    """CREATE TABLE IF NOT EXISTS source_stats (
        writer integer NOT NULL,
        source integer NOT NULL,
        first_seen bigint NOT NULL, last_seen bigint NOT NULL,
        count bigint NOT NULL, last_received bigint NOT NULL,
        PRIMARY KEY (writer, source))""",
    """CREATE TABLE IF NOT EXISTS events (
        id bigint PRIMARY KEY,             -- writer << 40 | seq
        writer integer NOT NULL,
        seq bigint NOT NULL,
        time bigint NOT NULL,              -- microseconds since the epoch, UTC
        received bigint NOT NULL,
        source integer NOT NULL,
        severity text COLLATE "C" NOT NULL,
        kind text COLLATE "C" NOT NULL,
        action text COLLATE "C" NOT NULL,
        outcome text COLLATE "C" NOT NULL,
        init_name text COLLATE "C" NOT NULL,
        init_id text COLLATE "C" NOT NULL,
        init_project text COLLATE "C" NOT NULL,
        init_domain text COLLATE "C" NOT NULL,
        init_ip text COLLATE "C" NOT NULL,
        target_id text COLLATE "C" NOT NULL,
        target_name text COLLATE "C" NOT NULL,
        request_id text COLLATE "C" NOT NULL,
        words tsvector NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS events_time ON events (time, id)",
    "CREATE INDEX IF NOT EXISTS events_source_time ON events (source, time)",
    "CREATE INDEX IF NOT EXISTS events_writer_seq ON events (writer, seq)",
    "CREATE INDEX IF NOT EXISTS events_ip ON events (init_ip) WHERE init_ip <> ''",
    "CREATE INDEX IF NOT EXISTS events_user_name ON events (init_name) WHERE init_name <> ''",
    "CREATE INDEX IF NOT EXISTS events_user_id ON events (init_id) WHERE init_id <> ''",
    "CREATE INDEX IF NOT EXISTS events_request ON events (request_id) WHERE request_id <> ''",
    "CREATE INDEX IF NOT EXISTS events_words ON events USING gin (words)",
    """CREATE TABLE IF NOT EXISTS blocks (
        writer integer NOT NULL,
        number bigint NOT NULL,            -- 1-based (Merkle leaf number - 1)
        first_seq bigint NOT NULL,
        count integer NOT NULL,
        digests bytea NOT NULL,
        data bytea NOT NULL,               -- zstd frame of the records' bytes
        chain bytea NOT NULL,
        PRIMARY KEY (writer, number))""",
    "CREATE INDEX IF NOT EXISTS blocks_first_seq ON blocks (writer, first_seq)",
    """CREATE TABLE IF NOT EXISTS ledger_state (
        writer integer PRIMARY KEY,
        size bigint NOT NULL, head bytea NOT NULL, merkle bytea,
        pruned_to bigint NOT NULL DEFAULT 0, pruned_head bytea, pruned_merkle bytea, pruned_time bigint)""",
    """CREATE TABLE IF NOT EXISTS merkle_nodes (
        writer integer NOT NULL, level integer NOT NULL, idx bigint NOT NULL, hash bytea NOT NULL,
        PRIMARY KEY (writer, level, idx))""",
    """CREATE TABLE IF NOT EXISTS pruned_leaves (
        writer integer NOT NULL, idx bigint NOT NULL, hash bytea NOT NULL, PRIMARY KEY (writer, idx))""",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        writer integer NOT NULL, epoch bigint NOT NULL, size bigint NOT NULL, time bigint NOT NULL,
        body bytea NOT NULL, signature bytea NOT NULL, seal bytea NOT NULL,
        PRIMARY KEY (writer, epoch))""",
    """CREATE TABLE IF NOT EXISTS signers (
        writer integer NOT NULL, from_epoch bigint NOT NULL, public_key bytea NOT NULL,
        PRIMARY KEY (writer, from_epoch))""",
    """CREATE TABLE IF NOT EXISTS admin_outbox (id bigserial PRIMARY KEY, event bytea NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS silences (
        id bigserial PRIMARY KEY,
        rule text NOT NULL, key text NOT NULL, created bigint NOT NULL, created_by text NOT NULL,
        reason text NOT NULL, ends bigint NOT NULL, expired bigint, expired_by text)""",
    "CREATE INDEX IF NOT EXISTS silences_rule ON silences (rule, key, ends)",
    """CREATE TABLE IF NOT EXISTS alerts (
        id bigserial PRIMARY KEY,
        rule text COLLATE "C" NOT NULL, key text COLLATE "C" NOT NULL,
        title text NOT NULL, category text COLLATE "C" NOT NULL, severity text NOT NULL,
        status text NOT NULL, time bigint NOT NULL, last_seen bigint NOT NULL, count bigint NOT NULL,
        host text COLLATE "C", summary text, source_ip text, user_name text, project text,
        service text, bridge text, path text, details text NOT NULL, updated bigint NOT NULL,
        assignee text, silence bigint,
        UNIQUE (rule, key))""",
    "CREATE INDEX IF NOT EXISTS alerts_last_seen ON alerts (last_seen)",
    "CREATE INDEX IF NOT EXISTS alerts_status ON alerts (status, last_seen)",
    """CREATE TABLE IF NOT EXISTS alert_evidence (
        id bigserial PRIMARY KEY,
        alert_id bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
        ref text NOT NULL, raw bytea NOT NULL, time bigint,
        UNIQUE (alert_id, ref))""",
    """CREATE TABLE IF NOT EXISTS alert_history (
        id bigserial PRIMARY KEY,
        alert_id bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
        time bigint NOT NULL, actor text NOT NULL, status text NOT NULL, comment text)""",
    "CREATE INDEX IF NOT EXISTS alert_history_alert ON alert_history (alert_id, id)",
)


def use_schema(conn: psycopg.Connection, schema: str) -> None:
    """Point the connection's unqualified names at ``schema`` (created by ``ensure``)."""
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))


def ensure(conn: psycopg.Connection, schema: str) -> None:
    """Create the schema and its tables when missing (serialised across processes: several
    analyzers starting at once must not race CREATE TABLE IF NOT EXISTS). A store already at
    this version runs no DDL at all: even ``CREATE INDEX IF NOT EXISTS`` locks its table, and a
    process starting beside writers that are committing would deadlock with them."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        if exists(conn, schema):
            use_schema(conn, schema)
            row = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
            if row is not None and int(row[0]) == SCHEMA_VERSION:
                return
            if row is not None and int(row[0]) > SCHEMA_VERSION:
                raise StoreError(f"the store in schema {schema!r} is of a newer stackwatch (schema version "
                                 f"{row[0]}, this one knows {SCHEMA_VERSION})")
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        use_schema(conn, schema)
        # IF NOT EXISTS: also what upgrades a store of an earlier version
        for statement in (*_TABLES, *attempts.TABLES, *ticks.TABLES, *ingested.TABLES, partitions.TABLE,
                          partitions.EPOCH):
            conn.execute(statement.encode())
        conn.execute("INSERT INTO meta VALUES ('format', '2') ON CONFLICT (name) DO NOTHING")
        conn.execute("INSERT INTO meta VALUES ('schema_version', %s) ON CONFLICT (name) "
                     "DO UPDATE SET value = EXCLUDED.value", (str(SCHEMA_VERSION),))


def exists(conn: psycopg.Connection, schema: str) -> bool:
    row = conn.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
                       "AND table_name = 'events'", (schema,)).fetchone()
    return row is not None
