"""``stackwatch analyze PATH...``."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import TextIO

import click

from stackwatch.cli.output import ProgressBar, write_json, write_summary, write_table
from stackwatch.config.loader import load_config
from stackwatch.config.schema import parse_size
from stackwatch.config.settings import Settings, StoreSettings
from stackwatch.core.errors import ConfigError
from stackwatch.core.types import DetectionEngine
from stackwatch.detect.gc_tuning import tune_gc
from stackwatch.pipeline.analyze import AnalyzeResult, analyze
from stackwatch.pipeline.engine import archive_settings, engine_for
from stackwatch.pipeline.ingested import IngestLedger
from stackwatch.pipeline.reader import (
    DEFAULT_MAX_INFLATE_RATIO,
    InflateLimits,
    InputFile,
    ReadProgress,
    discover,
)
from stackwatch.pipeline.workers import ReaderPool, default_jobs
from stackwatch.store import open_store

DEFAULT_DATA = "./stackwatch-data"


class StopSignal(threading.Event):
    """Set by SIGTERM/SIGINT; ``signum`` says which."""

    signum = 0


class ByteSizeParam(click.ParamType):
    name = "size"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            return parse_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopSignal]:
    """An event SIGTERM and SIGINT set, so ``analyze`` stops between two batches and the store
    is closed (its tail sealed) before exit; a second signal interrupts at once."""
    stop = StopSignal()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.signum = signum
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_analyze(paths: list[str], *, data: str | None, host: str = "", fmt: str = "text",
                rules: tuple[str, ...] = (), store_events: bool = True,
                inflate: InflateLimits | None = None, jobs: int = 1,
                settings: Settings | None = None) -> AnalyzeResult:
    """Shared by `analyze` and `demo`: read, detect, store, print. ``settings`` (a
    configuration file's): its rules, maintenance windows and expected sources apply, with the
    engine ``serve`` would build from it (pipeline/engine.py); the store is ``data``'s."""
    inputs = discover(paths, host=host)
    engine = engine_for(archive_settings(settings, data=data, rules=rules), live=False, report=sys.stderr,
                        overrides=data is not None)
    tune_gc()  # see detect/gc_tuning.py: a quarter of detection time went to the cyclic GC
    files = sum(source.path is not None for source in inputs)
    # the workers are forked before the store starts its threads (see workers.ReaderPool)
    pool = ReaderPool(min(jobs, files)) if jobs > 1 and files else None
    with pool if pool is not None else contextlib.nullcontext():
        return _run(inputs, engine, pool, data=data, fmt=fmt, store_events=store_events, inflate=inflate)


def _run(inputs: list[InputFile], engine: DetectionEngine, pool: ReaderPool | None, *, data: str | None,
         fmt: str, store_events: bool, inflate: InflateLimits | None) -> AnalyzeResult:
    folder = StoreSettings(url=data).embedded_folder() if data else None
    # With workers this process is what bounds the speed: an embedded store's search index is
    # then filled by a process of its own (store/index_process.py), on the other core.
    options = {"index_process": True} if pool is not None and folder is not None else {}
    store = open_store(data, **options) if (data and store_events) else None
    # what earlier runs read is remembered beside an embedded store, and in a shared store's
    # table (per writer: ``ingest_records``)
    shared = store.ingest_records() if store is not None and folder is None else None
    ledger = (None if store is None else IngestLedger(folder) if folder is not None
              else IngestLedger(records=shared) if shared is not None else None)
    bar = ProgressBar()
    with stop_on_signals() as stop:
        try:
            stored_before = ledger.prepare(inputs) if ledger is not None else None
            result = analyze(inputs, engine=engine, store=store, on_progress=bar, pool=pool,
                             inflate=inflate or InflateLimits(), stop=stop, stored_before=stored_before)
            if ledger is not None and not result.interrupted:
                ledger.record(inputs)  # after analyze flushed the store: what it names is committed
        finally:
            bar.close()
            if ledger is not None:
                ledger.close()
            if store is not None:
                store.close()  # commits and seals the tail, also when stopped by a signal
    if fmt == "json":
        write_json(result.alerts, sys.stdout)
    else:
        write_table(result.alerts, sys.stdout)
    write_summary(result.progress, len(result.alerts), inputs=inputs,
                  already_stored=result.already_stored if store is not None else None)
    write_read_limits(result.progress)
    result.signal = stop.signum
    if result.interrupted:
        sys.stderr.write(f"interrupted: stopped reading; {result.stored} events stored"
                         f"{' and sealed' if store is not None else ''}\n")
    return result


def write_read_limits(progress: ReadProgress, out: TextIO = sys.stderr) -> None:
    """Say what reading left out: over-long lines cut, files not read to the end."""
    if progress.cut_lines:
        out.write(f"over-long lines: {progress.cut_lines} cut to their first 4 MiB (attrs.truncated); "
                  f"{progress.cut_bytes:,} bytes past the cut not stored\n")
    for message in progress.stopped:
        out.write(f"incomplete: {message}\n")


@click.command("analyze")
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              help="text: an alert table; json: one JSON object per alert.")
@click.option("--data", default=DEFAULT_DATA, show_default=True, help="Data folder of the embedded store.")
@click.option("--host", default="", help="Host name for records that carry none.")
@click.option("--rules", multiple=True, type=click.Path(exists=True),
              help="Extra rule files or folders (YAML or Sigma), in addition to the built-in packs.")
@click.option("--max-inflate-ratio", type=click.FloatRange(min=0), default=DEFAULT_MAX_INFLATE_RATIO,
              show_default=True,
              help="Stop reading a .gz file that expands more than this many times its compressed size "
                   "(checked after its first 64 MiB; 0: no limit). What was read is kept.")
@click.option("--max-inflated-size", type=ByteSizeParam(), default="0", show_default=True,
              help="Stop reading a .gz file after this much decompressed data (e.g. 20G; 0: no limit).")
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False), default=None,
              help="A `serve` configuration file: its rules, maintenance windows and expected sources "
                   "apply as they do in serve (the store is still --data's).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Worker processes reading and parsing files (default: the number of cores). "
                   "Detection and the store stay in one process; the alerts are the same for any N.")
def analyze_command(paths: tuple[str, ...], fmt: str, data: str, host: str, rules: tuple[str, ...],
                    max_inflate_ratio: float, max_inflated_size: int, jobs: int | None,
                    config_path: str | None) -> None:
    """Analyze log files, .gz files, folders (<root>/<host>/<file>) or - (stdin).

    Exit status: 0 when everything was read, 1 when a file was not read to the end (see
    --max-inflate-ratio; a corrupt file; its worker died: the summary names it, the other files
    are read whole), 128 + the signal's number when SIGTERM/SIGINT stopped it (the store
    is sealed first)."""
    try:
        settings = load_config(config_path) if config_path else None
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        result = run_analyze(list(paths), data=data, host=host, fmt=fmt, rules=rules,
                             inflate=InflateLimits(max_inflate_ratio, max_inflated_size),
                             jobs=jobs or default_jobs(), settings=settings)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc
    if result.interrupted:
        sys.exit(128 + (result.signal or signal.SIGTERM))
    if result.progress.stopped:
        sys.exit(1)
