"""``stackwatch store ...``: keys, verification, proofs, backup, retention, replication.

Every command works on the data folder given by ``--data`` (default ./stackwatch-data);
init, verify, prove, consistency, checkpoint, backup, restore and retention also on a shared
store's ``postgresql://`` URL (``store_pg``); migrate, replicate, standby and promote are the
database's job there and say what to run instead (``store_pg.refuse``).
Exit status: 0 when all is well, 1 on any problem found (verification), 2 on usage errors.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from stackwatch.cli.errors import one_line
from stackwatch.core.errors import StackwatchError

DEFAULT_DATA = "./stackwatch-data"
_URL_SCHEMES = ("postgresql://", "postgres://")


class _Data(click.ParamType):
    """A data folder (a Path), or a shared store's postgresql:// URL (kept as a str)."""

    name = "DIR|URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = os.fspath(value)
        if text.startswith(_URL_SCHEMES):
            return text
        path = Path(text)
        if path.exists() and not path.is_dir():
            self.fail(f"{text} is not a folder", param, ctx)
        return path


data_option = click.option(
    "--data",
    "data",
    default=DEFAULT_DATA,
    show_default=True,
    envvar="STACKWATCH_DATA",
    type=_Data(),
    help="The store's data folder (or a shared store's postgresql:// URL).",
)


def _folder(data: Path | str, command: str) -> Path:
    """``data`` as a folder; a postgresql:// store is refused with what to use instead."""
    if isinstance(data, str):
        from stackwatch.cli import store_pg

        if command in store_pg.REFUSALS:
            store_pg.refuse(command)
        _fail(f"store {command} works on an embedded store's folder; a postgresql:// store is kept by the "
              "database (its backup: stackwatch store backup, which verifies then runs pg_dump)", 2)
    return Path(data)


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {one_line(message)}", err=True)
    sys.exit(code)


def _initial_key(text: str) -> bytes:
    from stackwatch.store.seal import parse_initial_key

    if os.path.isfile(text):
        text = Path(text).read_text().strip()
    try:
        return parse_initial_key(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--key") from None


def _public_key(path: str | None) -> bytes | None:
    if path is None:
        return None
    from stackwatch.store.auditor import AuditFailure, load_key

    try:
        return load_key(path)
    except AuditFailure as exc:
        raise click.BadParameter(str(exc), param_hint="--public-key") from None


def _write_doc(doc: dict[str, Any], output: str | None) -> None:
    text = json.dumps(doc, indent=2) + "\n"
    if output:
        Path(output).write_text(text)
        click.echo(f"wrote {output}", err=True)
    else:
        sys.stdout.write(text)


@click.group("store")
def store_group() -> None:
    """The tamper-evident event store: keys, verification, proofs, backup, retention, replication."""


@store_group.command("init")
@data_option
@click.option("--standby", is_flag=True, help="Prepare an empty store to follow a primary.")
@click.option(
    "--witness",
    "witnesses",
    multiple=True,
    metavar="SPEC",
    help="Off-box witness for checkpoints: file:PATH, syslog+udp://H:P, syslog+tcp://H:P, http(s)://URL.",
)
@click.option(
    "--witness-file",
    type=click.Path(dir_okay=False),
    envvar="STACKWATCH_WITNESS_FILE",
    help="Local append-only witness file (outside the data folder). "
    "Default with no --witness: DATA.witness.jsonl beside the data folder.",
)
@click.option("--no-local-witness", is_flag=True, help="Do not create the default local witness file.")
@click.option("--format", "record_format", type=click.Choice(["1", "2"]), default=None,
              help="Record format of a new store: 1 (a chained row per record) or 2 (chained compressed "
              "blocks; docs/store.md). Default: $STACKWATCH_STORE_FORMAT, else 2.")
@click.option("--writer", default=None, help="postgresql:// store: the writer (analyzer) whose log this is "
              "(default: this host's name).")
@click.option("--keys", "key_dir", default=None, type=click.Path(file_okay=False),
              help="postgresql:// store: the folder on this host for the writer's keys.")
def init_command(
    data: Path | str, standby: bool, witnesses: tuple[str, ...], witness_file: str | None,
    no_local_witness: bool, record_format: str | None, writer: str | None, key_dir: str | None,
) -> None:
    """Create the signing and sealing keys; print the initial sealing key ONCE."""
    if isinstance(data, str):
        from stackwatch.cli import store_pg

        store_pg.init(data, writer, key_dir)
        return
    from stackwatch.store.keys import init_store
    from stackwatch.store.witness import configured

    try:
        result = init_store(
            data,
            standby=standby,
            witnesses=list(witnesses),
            witness_file=witness_file,
            local_witness=not no_local_witness,
            format=int(record_format) if record_format else None,
        )
        sinks = [str(w) for w in configured(data)]
    except StackwatchError as exc:
        _fail(str(exc))
    click.echo(
        f"store initialised in {data}"
        + (" as a standby" if standby else "")
        + (f" (new signer from epoch {result.epoch})" if result.epoch else "")
    )
    click.echo(f"public key (Ed25519, also in {data}/keys/sign.pub): {result.public_key}")
    click.echo(
        "checkpoints are witnessed by: " + (", ".join(sinks) if sinks else "nobody (no witness)")
        + " (add an off-host witness: --witness syslog+tcp://H:P or https://...)"
    )
    click.echo("")
    click.echo("INITIAL SEALING KEY k0 -- shown ONCE, stored nowhere. Write it down and keep it OFFLINE:")
    click.echo(f"    {result.initial_key}")
    click.echo("Without it the seals cannot be checked (stackwatch store verify --key K0).")


def _witness_file(value: str) -> Path:
    """A witness file ``store verify`` reads: it must exist (a missing one proves nothing)."""
    path = Path(value)
    if not path.is_file():
        raise click.BadParameter(f"{value!r}: no such witness file", param_hint="--witness")
    return path


@store_group.command("verify")
@data_option
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="K0",
    help="Initial sealing key (or a file holding it); one per signer segment, in order.",
)
@click.option("--public-key", "public_keys", multiple=True, metavar="KEY",
              help="Pin the Ed25519 public key (hex or file); a postgresql:// store: WRITER=KEY, per writer.")
@click.option(
    "--witness",
    "witnesses",
    multiple=True,
    metavar="FILE",
    help="Witness file (JSON lines) to check the checkpoints against (a postgresql:// store: "
    "WRITER=FILE, that writer's witness).",
)
@click.option(
    "--allow-unsealed-tail", is_flag=True, help="Exit 0 even if the newest records are not sealed yet."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--keys", "key_dirs", multiple=True, metavar="WRITER=DIR",
              help="postgresql:// store: a writer's keys folder (on its host): the evidence of how many "
              "epochs its ratchet sealed.")
def verify_command(
    data: Path | str,
    keys: tuple[str, ...],
    public_keys: tuple[str, ...],
    witnesses: tuple[str, ...],
    allow_unsealed_tail: bool,
    as_json: bool,
    key_dirs: tuple[str, ...],
) -> None:
    """Check chain, Merkle roots, signatures, seals and witnesses; exit 1 on any problem
    (a postgresql:// store: every writer's log; --key WRITER=K0)."""
    if isinstance(data, str):
        from stackwatch.cli import store_pg

        folders = {name: Path(ds[-1]) for name, ds in store_pg.writer_keys(key_dirs, str).items()}
        files = store_pg.writer_keys(witnesses, _witness_file)
        pins = {name: ks[-1] for name, ks in store_pg.writer_keys(public_keys, _public_key).items()}
        store_pg.verify(data, store_pg.writer_keys(keys, _initial_key), allow_unsealed_tail, as_json, folders,
                        files, pins)
        return
    if len(public_keys) > 1:
        _fail("give one --public-key (the store's signer)", 2)
    public_key = public_keys[0] if public_keys else None
    for path in witnesses:
        _witness_file(path)
    from stackwatch.store.status import write_last_verification
    from stackwatch.store.verify import verify_store

    report = verify_store(
        data,
        initial_keys=[_initial_key(k) for k in keys],
        public_key=_public_key(public_key),
        witnesses=list(witnesses),
    )
    ok = report.ok(allow_unsealed_tail=allow_unsealed_tail)
    first = report.first_bad or next(iter(report.problems), None)
    with contextlib.suppress(OSError):  # the dashboard shows the last verification
        write_last_verification(data, ok=ok, records=report.records,
                                detail=str(first) if first else "all checks passed",
                                seconds=report.seconds)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": ok,
                    "records": report.records,
                    "size": report.size,
                    "pruned_to": report.pruned_to,
                    "epochs": report.epochs,
                    "signing_keys": [{"from_epoch": e, "fingerprint": fp} for e, fp in report.signing_keys],
                    "witnesses": report.witnesses,
                    "problems": [
                        p.__dict__
                        if hasattr(p, "__dict__")
                        else {"level": p.level, "kind": p.kind, "seq": p.seq, "message": p.message}
                        for p in report.problems
                    ],
                },
                indent=2,
            )
        )
        sys.exit(0 if ok else 1)
    rate = report.records / report.seconds if report.seconds else 0
    click.echo(
        f"checked {report.records} records (tree size {report.size}), {report.epochs} checkpoints "
        f"in {report.seconds:.2f}s ({rate:,.0f} records/s)"
    )
    click.echo(
        "signing key: "
        + (", ".join(f"{fp} (from epoch {e})" for e, fp in report.signing_keys) or "none")
        + "; witnesses read: "
        + (", ".join(report.witnesses) or "none")
    )
    for p in report.problems:
        click.echo(
            f"  {'WARNING' if p.level == 'WARN' else p.level}: {p.kind}"
            + (f" (seq {p.seq})" if p.seq is not None else "")
            + f": {p.message}"
        )
    first = report.first_bad
    if first is not None and first.seq is not None:
        if first.block is not None:
            click.echo(f"FIRST BAD BLOCK: {first.block}")
        click.echo(f"FIRST BAD RECORD: seq {first.seq}: {first.message}")
        _show_record(data, first.seq)
    click.echo("RESULT: " + ("OK" if ok else "FAILED" if report.failed else "WARNING (non-zero exit)"))
    sys.exit(0 if ok else 1)


def _show_record(data: Path, seq: int) -> None:
    import sqlite3

    try:
        conn = sqlite3.connect(f"{(data / 'stackwatch.db').resolve().as_uri()}?mode=ro", uri=True)
        row = conn.execute("SELECT received, origin, ref, raw FROM events WHERE seq = ?", (seq,)).fetchone()
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'blocks'").fetchone():
            row = _block_record(conn, seq)  # record format 2: the record is in its block
        conn.close()
    except sqlite3.Error:
        return
    if row is None:
        click.echo(f"  (record {seq} is not in the store)")
    else:
        raw = bytes(row[3]) if isinstance(row[3], bytes | bytearray) else str(row[3]).encode()
        click.echo(f"  record {seq}: origin {row[1]} ref {row[2]}: {raw[:200].decode('utf-8', 'replace')!r}")


def _block_record(conn: Any, seq: int) -> tuple[Any, ...] | None:
    """(received, origin, ref, raw) of record ``seq`` of a format 2 store, None if it cannot be read."""
    import orjson

    from stackwatch.store.chain import decode_record_bytes
    from stackwatch.store.integrity import blocks as codec
    from stackwatch.store.integrity.sqlite_io import SQLiteLedgerIO

    block = SQLiteLedgerIO(conn).block_of(seq)
    if block is None:
        return None
    try:
        fields = decode_record_bytes(codec.records(block.data)[seq - block.first_seq])
        return fields.received_us, fields.origin, orjson.loads(fields.normalized)[-1], fields.raw
    except (codec.BlockError, IndexError, ValueError):
        return None


@store_group.command("prove")
@data_option
@click.argument("seq", type=int)
@click.option("--size", type=int, help="Prove against the checkpoint at this tree size.")
@click.option("-o", "--output", help="Write the proof to this file.")
def prove_command(data: Path | str, seq: int, size: int | None, output: str | None) -> None:
    """Inclusion proof of record SEQ (check it with python -m stackwatch.store.auditor);
    a postgresql:// store: of event SEQ (its id) in its writer's log."""
    from stackwatch.store.proofs import prove

    try:
        if isinstance(data, str):
            from stackwatch.cli import store_pg

            _write_doc(store_pg.prove(data, seq), output)
            return
        _write_doc(prove(data, seq, size), output)
    except StackwatchError as exc:
        _fail(str(exc))


@store_group.command("consistency")
@data_option
@click.argument("old_size", type=int)
@click.argument("new_size", type=int)
@click.option("-o", "--output", help="Write the proof to this file.")
@click.option("--writer", default=None, help="postgresql:// store: whose log (sizes count its records); "
              "needed when the store has several writers.")
def consistency_command(data: Path | str, old_size: int, new_size: int, output: str | None,
                        writer: str | None) -> None:
    """Consistency proof that the log of OLD_SIZE records is a prefix of NEW_SIZE (a
    postgresql:// store: of one writer's log, --writer)."""
    from stackwatch.store.proofs import consistency

    try:
        if isinstance(data, str):
            from stackwatch.cli import store_pg

            _write_doc(store_pg.consistency(data, writer, old_size, new_size), output)
            return
        if writer is not None:
            _fail("--writer names a log of a postgresql:// store; an embedded store has one", 2)
        _write_doc(consistency(data, old_size, new_size), output)
    except StackwatchError as exc:
        _fail(str(exc))


@store_group.command("checkpoint")
@data_option
def checkpoint_command(data: Path | str) -> None:
    """Make a signed, sealed checkpoint now."""
    from stackwatch.store.sqlite import open_store

    if isinstance(data, str):
        from stackwatch.cli import store_pg

        store_pg.checkpoint(data)
        return

    try:
        with open_store(data) as store:
            epoch = store.checkpoint()
            size = store.size
    except StackwatchError as exc:
        _fail(str(exc))
    if epoch is None:
        _fail("the store has no keys: run stackwatch store init first")
    click.echo(f"checkpoint epoch {epoch} at tree size {size}")


@store_group.command("attempts")
@data_option
@click.option("--rebuild", is_flag=True, help="Recount them from the stored events (takes the append lock).")
def attempts_command(data: Path | str, rebuild: bool) -> None:
    """Check the keystone login attempts the store correlated at ingest against a recount of
    its events (exit 1 when they differ), or recount them."""
    if isinstance(data, str):
        from stackwatch.cli import store_pg

        store_pg.attempts(data, rebuild)
        return
    data = _folder(data, "attempts")
    from stackwatch.store.sqlite import open_store

    if not (data / "stackwatch.db").is_file():
        _fail(f"no store at {data}")
    try:
        with open_store(data, background_index=False) as store:  # in the format it was created with
            if rebuild:
                click.echo(f"recounted {store.rebuild_login_attempts()} login attempts")
                return
            problems = store.check_login_attempts()
    except StackwatchError as exc:
        _fail(str(exc))
    if problems:
        _fail("the login attempts differ from a recount: " + "; ".join(problems)
              + " (stackwatch store attempts --rebuild recounts them)")
    click.echo("the login attempts match a recount of the stored events")


@store_group.command("backup")
@data_option
@click.argument("dest", type=click.Path(dir_okay=False))
@click.option(
    "--encrypt-key",
    type=click.Path(exists=True, dir_okay=False),
    help="AES-256-GCM key file (32 bytes, or 64 hex digits).",
)
def backup_command(data: Path | str, dest: str, encrypt_key: str | None) -> None:
    """Consistent online backup to DEST (ingest may continue); a postgresql:// store: every
    writer's log verified, then pg_dump of its schema."""
    from stackwatch.store.backup import backup, read_key

    if isinstance(data, str):
        from stackwatch.cli import store_pg

        if encrypt_key:
            _fail("--encrypt-key: a postgresql:// backup is pg_dump's file; encrypt it with your tools", 2)
        store_pg.backup(data, dest)
        return

    try:
        manifest = backup(data, dest, encrypt_key=read_key(encrypt_key) if encrypt_key else None)
    except StackwatchError as exc:
        _fail(str(exc))
    click.echo(
        f"backup {dest}: {manifest['records']} records, {manifest['checkpoints']} checkpoints"
        + (", encrypted" if encrypt_key else "")
    )


@store_group.command("restore")
@click.argument("src", type=click.Path(exists=True, dir_okay=False))
@click.argument("dest_dir", type=click.Path(file_okay=False))
@click.option("--decrypt-key", type=click.Path(exists=True, dir_okay=False))
@click.option("--key", "keys", multiple=True, metavar="K0", help="Initial sealing key(s) to check the seals.")
@click.option("--public-key", "public_key", metavar="KEY", help="Pin the Ed25519 public key (hex or file).")
@click.option("--witness", "witnesses", multiple=True, type=click.Path(exists=True, dir_okay=False))
def restore_command(
    src: str,
    dest_dir: str,
    decrypt_key: str | None,
    keys: tuple[str, ...],
    public_key: str | None,
    witnesses: tuple[str, ...],
) -> None:
    """Verify backup SRC fully, then restore it into DEST_DIR (refused if anything is wrong);
    DEST_DIR a postgresql:// URL: load a pg_dump backup and keep it only if every log verifies."""
    from stackwatch.store.backup import read_key, restore

    if dest_dir.startswith(_URL_SCHEMES):
        from stackwatch.cli import store_pg

        store_pg.restore(src, dest_dir, store_pg.writer_keys(keys, _initial_key))
        return

    try:
        report = restore(
            src,
            dest_dir,
            decrypt_key=read_key(decrypt_key) if decrypt_key else None,
            initial_keys=[_initial_key(k) for k in keys],
            public_key=_public_key(public_key),
            witnesses=list(witnesses),
        )
    except StackwatchError as exc:
        _fail(f"restore refused: {exc}")
    for p in report.problems:
        click.echo(f"  {p}")
    click.echo(f"restored {report.records} verified records into {dest_dir}")


@store_group.command("migrate")
@click.argument("folder", required=False, type=_Data())
@data_option
@click.option("--key", "keys", multiple=True, metavar="K0", help="Initial sealing key(s): the seals are "
              "checked before and after.")
@click.option("--actor", default=lambda: os.environ.get("USER", "stackwatch"), help="Who runs it (logged).")
@click.option("--to", "to", metavar="URL", default=None, help="Move the folder's store into the shared store "
              "at this postgresql:// URL, as a writer log of its own (docs/cluster.md, 'Adding a machine').")
@click.option("--writer", default=None, help="--to: the new writer's name (default: the name an analyzer on "
              "this host with --writer-keys takes, so it continues the log).")
@click.option("--writer-keys", "writer_keys", default=None, metavar="DIR",
              help="--to: a new folder for the new writer's signing and sealing keys (on this host).")
def migrate_command(folder: Path | str | None, data: Path | str, keys: tuple[str, ...], actor: str,
                    to: str | None, writer: str | None, writer_keys: str | None) -> None:
    """Convert a format 1 store to record format 2 (compressed chained blocks), in place; its
    history stays provable (docs/store.md). With --to postgresql://...: copy it into the shared
    store as a writer log anchored on the folder's last checkpoint, with its alerts, silences and
    ingested-files ledger. Stop the writer first."""
    data = _folder(folder if folder is not None else data, "migrate")
    if to is not None:
        _migrate_to(data, to, [_initial_key(k) for k in keys], writer, writer_keys, actor)
        return
    from stackwatch.store.migrate import migrate_store

    try:
        result = migrate_store(data, initial_keys=[_initial_key(k) for k in keys], actor=actor)
    except StackwatchError as exc:
        _fail(f"migration refused: {exc}")
    click.echo(f"migrated {result.records} records into {result.blocks} blocks; format 2 checkpoints "
               f"from epoch {result.v2_epoch}, its chain anchored on the last format 1 checkpoint; "
               f"verified before and after ({result.after.records} records)")


def _migrate_to(data: Path, url: str, keys: list[bytes], writer: str | None, writer_keys: str | None,
                actor: str) -> None:
    if not url.startswith(_URL_SCHEMES):
        _fail("--to takes a postgresql:// URL", 2)
    if not writer_keys:
        _fail("--to: give --writer-keys DIR, a new folder for the new writer's keys on this host", 2)
    from stackwatch.store.postgres.move import move_to_postgres

    try:
        result = move_to_postgres(data, url, keys=writer_keys or "", writer=writer, initial_keys=keys,
                                  actor=actor)
    except StackwatchError as exc:
        _fail(f"migration refused: {exc}")
    except Exception as exc:  # psycopg's errors: the server, the URL
        _fail(f"migration failed: {exc}")
    anchor = result.anchor
    click.echo(f"moved {result.records} records of {data} into writer {result.writer}'s log (its record 1 "
               f"anchors the folder's checkpoint epoch {anchor['epoch']}, size {anchor['size']}, root "
               f"{anchor['root']}); {result.alerts} alerts, {result.silences} silences, {result.files} "
               f"ingested files; verified before and after ({result.after.records} records)")
    click.echo(f"public key (Ed25519) of writer {result.writer}: {result.public_key}")
    click.echo("")
    click.echo("INITIAL SEALING KEY k0 of this writer -- shown ONCE, stored nowhere. Keep it OFFLINE:")
    click.echo(f"    {result.initial_key}")
    click.echo(f"Analyzers continue this log with ?writer={result.writer}&keys={writer_keys}.")


@store_group.command("retention")
@data_option
@click.option("--max-age", help="Expire records received longer ago than this (e.g. 90d).")
@click.option(
    "--max-size", help="Expire the oldest records until the database is about this size (e.g. 10GB)."
)
@click.option("--actor", default=lambda: os.environ.get("USER", "stackwatch"), help="Who runs it (logged).")
@click.option("--writer", "writers", multiple=True, help="postgresql:// store: only this writer's log "
              "(repeatable; default every writer's).")
def retention_command(data: Path | str, max_age: str | None, max_size: str | None, actor: str,
                      writers: tuple[str, ...]) -> None:
    """Expire old records; what is expired stays attested by its checkpoints (a postgresql://
    store: each writer's oldest blocks, up to one of its checkpoints)."""
    from stackwatch.store.retention import expire, parse_age, parse_size
    from stackwatch.store.sqlite import open_store

    if (max_age is None) == (max_size is None):
        _fail("give exactly one of --max-age and --max-size", 2)
    if isinstance(data, str):
        from stackwatch.cli import store_pg

        try:
            age = parse_age(max_age) if max_age else None
            size = parse_size(max_size) if max_size else None
        except StackwatchError as exc:
            _fail(str(exc), 2)
        store_pg.retention(data, age, size, actor, writers)
        return
    if writers:
        _fail("--writer names a log of a postgresql:// store; an embedded store has one", 2)
    data = _folder(data, "retention")
    try:
        with open_store(data) as store:
            result = expire(
                store,
                max_age=parse_age(max_age) if max_age else None,
                max_size=parse_size(max_size) if max_size else None,
                actor=actor,
            )
    except StackwatchError as exc:
        _fail(str(exc))
    if not result.pruned_to:
        click.echo("nothing to expire (pruning stops at a checkpoint boundary)")
    else:
        click.echo(
            f"expired records {result.pruned_from}..{result.pruned_to}; they are now attested only by "
            f"checkpoints (logged as admin event {result.admin_seq})"
        )


@store_group.command("replicate")
@data_option
@click.option("--listen", metavar="HOST:PORT", help="Address the primary serves its standby on.")
@click.option(
    "--secret-file", type=click.Path(exists=True, dir_okay=False), help="Shared secret (>= 16 bytes)."
)
@click.option(
    "--async", "async_mode", is_flag=True, help="Do not wait for the standby in flush() (may lose data)."
)
@click.option("--timeout", default=10.0, show_default=True, help="Seconds flush() waits for the standby.")
@click.option("--tls-cert", help="Mutual TLS: this side's certificate (PEM).")
@click.option("--tls-key", help="Mutual TLS: this side's private key (PEM).")
@click.option("--tls-ca", help="Mutual TLS: the CA that signed both certificates.")
@click.option("--off", is_flag=True, help="Stop replicating.")
def replicate_command(
    data: Path,
    listen: str | None,
    secret_file: str | None,
    async_mode: bool,
    timeout: float,
    tls_cert: str | None,
    tls_key: str | None,
    tls_ca: str | None,
    off: bool,
) -> None:
    """Configure this store as a primary serving a standby (the appending process serves it)."""
    data = _folder(data, "replicate")
    from stackwatch.store.replication import CONFIG_FILE, parse_address, read_secret

    path = data / CONFIG_FILE
    if off:
        path.unlink(missing_ok=True)
        click.echo("replication off")
        return
    if not listen or not secret_file:
        _fail("give --listen and --secret-file (or --off)", 2)
    try:
        parse_address(listen)
        read_secret(secret_file)
    except StackwatchError as exc:
        _fail(str(exc), 2)
    doc: dict[str, Any] = {
        "listen": listen,
        "secret_file": str(Path(secret_file).resolve()),
        "mode": "async" if async_mode else "sync",
        "timeout": timeout,
    }
    if tls_cert or tls_key or tls_ca:
        doc["tls"] = {"cert": tls_cert, "key": tls_key, "ca": tls_ca}
    data.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    click.echo(f"replication configured ({doc['mode']}): the appending process serves a standby on {listen}")


@store_group.command("standby")
@data_option
@click.option("--primary", required=True, metavar="HOST:PORT")
@click.option("--secret-file", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--public-key", "public_key", metavar="KEY", help="Pin the primary's Ed25519 public key.")
@click.option("--tls-cert", help="Mutual TLS: this side's certificate (PEM).")
@click.option("--tls-key", help="Mutual TLS: this side's private key (PEM).")
@click.option("--tls-ca", help="Mutual TLS: the CA that signed both certificates.")
def standby_command(
    data: Path,
    primary: str,
    secret_file: str,
    public_key: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    tls_ca: str | None,
) -> None:
    """Follow a primary, verifying everything received, until stopped (then: store promote)."""
    data = _folder(data, "standby")
    from stackwatch.store.replication import Standby, parse_address, read_secret
    from stackwatch.store.sqlite import open_store

    tls = {"cert": tls_cert, "key": tls_key, "ca": tls_ca} if tls_cert else None
    try:
        with open_store(data, background_index=False) as store:
            follower = Standby(
                store,
                parse_address(primary),
                read_secret(secret_file),
                public_key=_public_key(public_key),
                tls=tls,  # type: ignore[arg-type]
                on_progress=lambda size, epoch: print(f"standby at {size} epoch {epoch}", flush=True),
            )
            signal.signal(signal.SIGTERM, lambda *_: follower.stop.set())
            click.echo(f"following {primary} from record {store.size}", err=True)
            follower.run()
    except StackwatchError as exc:
        _fail(f"standby stopped: {exc}")


@store_group.command("promote")
@data_option
@click.option("--actor", default=lambda: os.environ.get("USER", "stackwatch"))
def promote_command(data: Path, actor: str) -> None:
    """Make a (stopped) standby the primary; its own keys sign and seal from the next epoch."""
    data = _folder(data, "promote")
    from stackwatch.store.keys import promote

    try:
        epoch = promote(data, actor=actor)
    except StackwatchError as exc:
        _fail(str(exc))
    click.echo(
        f"promoted: this store is the primary from epoch {epoch}; verify it with the primary's k0 "
        "followed by this store's k0 (--key K0 --key K0_STANDBY)"
    )
