"""``stackwatch store ...`` on a shared PostgreSQL store (``--data postgresql://...``).

Every writer's log is its own: ``init`` makes one writer's keys (``--writer``, ``--keys``),
``verify`` checks every writer's log (``--key NAME=K0``, ``--public-key NAME=KEY`` per writer),
``prove`` proves an event (by id) in its writer's log, ``consistency`` a writer's log's growth,
``checkpoint`` seals a writer's log now, ``retention`` expires each writer's oldest blocks.
``backup`` verifies every log, then dumps the store's schema with pg_dump (custom format);
``restore`` loads a dump into a database and keeps it only if every log in it verifies.
``migrate``, ``replicate``, ``standby`` and ``promote`` are the database's job there: ``refuse``
says what to run instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from stackwatch.cli.errors import one_line
from stackwatch.core.errors import StackwatchError, StoreError
from stackwatch.store.verify import VerifyReport


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {one_line(message)}", err=True)
    sys.exit(code)


def init(url: str, writer: str | None, keys: str | None) -> None:
    from stackwatch.store.postgres.keys import init_writer

    if not keys:
        _fail("a postgresql:// store keeps each writer's keys on its host: give --keys DIR", 2)
    try:
        result = init_writer(url, writer=writer, keys=keys or "")
    except StackwatchError as exc:
        _fail(str(exc))
    from stackwatch.store.postgres.store import default_writer, split_url

    name = writer or split_url(url)[1].get("writer") or default_writer(keys)
    click.echo(f"writer {name} initialised; its keys are in {keys}/keys")
    click.echo(f"public key (Ed25519): {result.public_key}")
    click.echo("")
    click.echo("INITIAL SEALING KEY k0 of this writer -- shown ONCE, stored nowhere. Keep it OFFLINE:")
    click.echo(f"    {result.initial_key}")
    click.echo("Without it the seals cannot be checked (stackwatch store verify --key WRITER=K0).")


def writer_keys(values: tuple[str, ...], parse: Any) -> dict[str, list[Any]]:
    """``--key NAME=K0`` (repeatable, in signer order per writer) -> name -> k0s (``parse``d)."""
    keys: dict[str, list[Any]] = {}
    for value in values:
        name, sep, key = value.partition("=")
        if not sep or not name:
            _fail(f"{value!r}: a postgresql:// store takes WRITER=VALUE (one log per writer)", 2)
        keys.setdefault(name, []).append(parse(key))
    return keys


def verify(url: str, keys: dict[str, list[bytes]], allow_unsealed_tail: bool, as_json: bool,
           key_dirs: dict[str, Path] | None = None, witnesses: dict[str, list[Path]] | None = None,
           public_keys: dict[str, bytes] | None = None) -> None:
    from stackwatch.store.postgres.verify import verify_postgres

    for option, named in (("--witness", witnesses), ("--public-key", public_keys)):
        unknown = sorted(set(named) - set(_writer_names(url))) if named else []
        if unknown:  # a witness or pin checked against no log would say nothing: refuse it
            _fail(f"{option} names writers this store does not have: {', '.join(unknown)}", 2)
    try:
        reports = verify_postgres(url, initial_keys=keys, key_dirs=key_dirs, witnesses=witnesses,
                                  public_keys=public_keys)
    except StackwatchError as exc:
        _fail(str(exc))
    except Exception as exc:  # psycopg's errors: the server, the URL
        _fail(f"cannot read the store: {exc}")
    ok = all(r.ok(allow_unsealed_tail=allow_unsealed_tail) for r in reports.values())
    if as_json:
        docs = {name: _doc(r) for name, r in reports.items()}
        click.echo(json.dumps({"ok": ok, "writers": docs}, indent=2))
        sys.exit(0 if ok else 1)
    if not reports:
        click.echo("no writer has appended to this store yet")
    for name, report in reports.items():
        click.echo(f"writer {name}: checked {report.records} records in {report.blocks} blocks, "
                   f"{report.epochs} checkpoints in {report.seconds:.2f}s"
                   + (f"; witnesses read: {', '.join(report.witnesses)}" if report.witnesses else ""))
        for p in report.problems:
            click.echo(f"  {'WARNING' if p.level == 'WARN' else p.level}: {p.kind}"
                       + (f" (seq {p.seq})" if p.seq is not None else "") + f": {p.message}")
        first = report.first_bad
        if first is not None and first.seq is not None:
            if first.block is not None:
                click.echo(f"  FIRST BAD BLOCK of {name}: {first.block}")
            click.echo(f"  FIRST BAD RECORD of {name}: seq {first.seq}: {first.message}")
    click.echo("RESULT: " + ("OK" if ok else "FAILED" if any(r.failed for r in reports.values())
                             else "WARNING (non-zero exit)"))
    sys.exit(0 if ok else 1)


def _writer_names(url: str) -> list[str]:
    from stackwatch.store.postgres import open_store

    try:
        with open_store(url, read_only=True) as store:
            return [name for _, name in store.writers()]
    except StackwatchError as exc:
        _fail(str(exc))
    return []


def _doc(report: VerifyReport) -> dict[str, Any]:
    return {"records": report.records, "blocks": report.blocks, "size": report.size, "epochs": report.epochs,
            "witnesses": report.witnesses,
            "problems": [{"level": p.level, "kind": p.kind, "seq": p.seq, "block": p.block,
                          "message": p.message} for p in report.problems]}


def prove(url: str, event_id: int) -> dict[str, Any]:
    from stackwatch.store.postgres import open_store

    with open_store(url, read_only=True) as store:
        doc = store.inclusion_proof(event_id)
    if doc is None:
        raise StoreError(f"event {event_id} is not covered by a checkpoint of its writer's log "
                         "(or not stored)")
    return doc


def checkpoint(url: str) -> None:
    from stackwatch.store.postgres import open_store

    try:
        with open_store(url) as store:
            epoch = store.checkpoint()
    except StackwatchError as exc:
        _fail(str(exc))
    if epoch is None:
        _fail("this writer has no keys: give ?keys=DIR (made by stackwatch store init --keys DIR)")
    click.echo(f"checkpoint epoch {epoch} of writer {store.writer_name}")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        _fail(f"{name} is not installed (Debian: postgresql-client)")
    return path or name


def backup(url: str, dest: str) -> None:
    from stackwatch.store.postgres.store import DEFAULT_SCHEMA, split_url
    from stackwatch.store.postgres.verify import verify_postgres

    reports = verify_postgres(url)
    bad = {name: r.first_bad for name, r in reports.items() if r.failed}
    if bad:
        _fail("backup refused: the store does not verify: "
              + "; ".join(f"{name}: {first}" for name, first in bad.items()))
    libpq_url, own = split_url(url)
    schema = own.get("schema") or DEFAULT_SCHEMA
    # an argument list, no shell: the URL and paths are single arguments whatever they hold
    command = [_tool("pg_dump"), "--format=custom", f"--schema={schema}", f"--file={dest}",
               f"--dbname={libpq_url}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        _fail(f"pg_dump failed: {done.stderr.strip()}")
    os.chmod(dest, 0o600)
    records = sum(r.records for r in reports.values())
    click.echo(f"backup {dest}: {records} verified records of {len(reports)} writers (pg_dump custom format)")


def restore(src: str, url: str, keys: dict[str, list[bytes]]) -> None:
    import psycopg
    from psycopg import sql

    from stackwatch.store.postgres.schema import exists
    from stackwatch.store.postgres.store import DEFAULT_SCHEMA, split_url
    from stackwatch.store.postgres.verify import verify_postgres

    libpq_url, own = split_url(url)
    schema = own.get("schema") or DEFAULT_SCHEMA
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        if exists(conn, schema):
            _fail(f"restore refused: schema {schema!r} already holds a store")
    done = subprocess.run([_tool("pg_restore"), "--no-owner", f"--dbname={libpq_url}", src],  # noqa: S603
                          capture_output=True, text=True, check=False)
    reports = verify_postgres(url, initial_keys=keys) if done.returncode == 0 else {}
    bad = [f"{name}: {r.first_bad}" for name, r in reports.items() if r.failed]
    if done.returncode != 0 or bad:
        with psycopg.connect(libpq_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        _fail("restore refused: " + (f"pg_restore failed: {done.stderr.strip()}" if done.returncode
                                      else "the backup does not verify: " + "; ".join(bad)))
    for name, report in reports.items():
        for p in report.problems:
            click.echo(f"  {name}: {p}")
    click.echo(f"restored {sum(r.records for r in reports.values())} verified records of "
               f"{len(reports)} writers into schema {schema}")


def consistency(url: str, writer: str | None, old_size: int, new_size: int) -> dict[str, Any]:
    from stackwatch.store.postgres.proofs import consistency as proof

    return proof(url, writer, old_size, new_size)


def retention(url: str, max_age: Any, max_size: int | None, actor: str, writers: tuple[str, ...]) -> None:
    from stackwatch.store.postgres.retention import expire_postgres

    try:
        results = expire_postgres(url, max_age=max_age, max_size=max_size, actor=actor,
                                  writers=list(writers) or None)
    except StackwatchError as exc:
        _fail(str(exc))
    except Exception as exc:  # psycopg's errors: the server, the URL
        _fail(f"retention failed: {exc}")
    if not results:
        click.echo("no writer has appended to this store yet")
    for name, result in results.items():
        if not result.pruned_to:
            click.echo(f"writer {name}: nothing to expire (pruning stops at one of its checkpoints)")
        else:
            click.echo(f"writer {name}: expired records {result.pruned_from}..{result.pruned_to}; they are "
                       "now attested only by its checkpoints (a retention.run admin event enters the log "
                       "at the next writer's commit)")


def attempts(url: str, rebuild: bool) -> None:
    """``store attempts``: each writer's login attempts against a recount of its events."""
    from stackwatch.store.postgres import open_store
    from stackwatch.store.postgres.attempts_check import describe

    if rebuild:
        _fail("--rebuild works on an embedded store; on a postgresql:// store each writer folds its own "
              "login attempts (a difference found here is a bug to report, with this output)", 2)
    try:
        with open_store(url, read_only=True) as store:
            result = store.check_login_attempts()
    except StackwatchError as exc:
        _fail(str(exc))
    except Exception as exc:  # psycopg's errors: the server, the URL
        _fail(f"cannot read the store: {exc}")
    for line in describe(result):
        click.echo(line)
    if not result.checked and not result.skipped:
        click.echo("no writer has appended to this store yet")
    if result.problems:
        _fail("the login attempts differ from a recount of the stored events")
    if result.skipped:
        _fail("some writers were not checked", 1)
    click.echo("the login attempts match a recount of the stored events")


REFUSALS: dict[str, str] = {
    "migrate": "store migrate converts an embedded store of record format 1; a postgresql:// store is "
               "always format 2, there is nothing to migrate (to move a folder's store into this one: "
               "stackwatch store migrate FOLDER --to postgresql://...)",
    "replicate": "a postgresql:// store is replicated by PostgreSQL itself: streaming replication to a "
                 "standby made with pg_basebackup -R (docs/store-postgres.md, 'High availability'); "
                 "check a standby with stackwatch store verify --data postgresql://STANDBY/... "
                 "--witness WRITER=FILE",
    "standby": "a postgresql:// store's standby is a PostgreSQL streaming standby: pg_basebackup -h PRIMARY "
               "-D DIR -R -X stream, then start it (docs/store-postgres.md, 'High availability'); web, "
               "report and verify can read it as --data postgresql://STANDBY/...",
    "promote": "promote a postgresql:// store's standby with PostgreSQL's own tools (pg_ctl promote -D DIR, "
               "or SELECT pg_promote()); the analyzers reconnect on their own when their URL names both "
               "hosts with target_session_attrs=read-write (docs/store-postgres.md, 'High availability')",
}


def refuse(command: str) -> None:
    """``command`` is the database's job on a postgresql:// store: say what to run instead."""
    _fail(REFUSALS[command], 2)
