"""``stackwatch analyze PATH...``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from stackwatch.cli.output import ProgressBar, write_json, write_summary, write_table
from stackwatch.detect.gctune import tune_gc
from stackwatch.pipeline.analyze import AnalyzeResult, analyze
from stackwatch.pipeline.engine import build_engine
from stackwatch.pipeline.ingested import IngestLedger
from stackwatch.pipeline.reader import discover
from stackwatch.store import open_store

DEFAULT_DATA = "./stackwatch-data"


def run_analyze(paths: list[str], *, data: str | None, host: str = "", fmt: str = "text",
                rules: tuple[str, ...] = (), store_events: bool = True) -> AnalyzeResult:
    """Shared by `analyze` and `demo`: read, detect, store, print."""
    inputs = discover(paths, host=host)
    engine = build_engine(extra_rule_paths=[Path(p) for p in rules])
    tune_gc()  # see detect/gctune.py: a quarter of detection time went to the cyclic GC
    store = open_store(data) if (data and store_events) else None
    ledger = IngestLedger(data) if store is not None and data else None
    bar = ProgressBar()
    try:
        stored_before = ledger.prepare(inputs) if ledger is not None else None
        result = analyze(inputs, engine=engine, store=store, on_progress=bar, stored_before=stored_before)
        if ledger is not None:
            ledger.record(inputs)  # after analyze flushed the store: what it names is committed
    finally:
        bar.close()
        if ledger is not None:
            ledger.close()
        if store is not None:
            store.close()
    if fmt == "json":
        write_json(result.alerts, sys.stdout)
    else:
        write_table(result.alerts, sys.stdout)
    write_summary(result.progress, len(result.alerts), inputs=inputs,
                  already_stored=result.already_stored if store is not None else None)
    return result


@click.command("analyze")
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              help="text: an alert table; json: one JSON object per alert.")
@click.option("--data", default=DEFAULT_DATA, show_default=True, help="Data folder of the embedded store.")
@click.option("--host", default="", help="Host name for records that carry none.")
@click.option("--rules", multiple=True, type=click.Path(exists=True),
              help="Extra rule files or folders (YAML or Sigma), in addition to the built-in packs.")
def analyze_command(paths: tuple[str, ...], fmt: str, data: str, host: str, rules: tuple[str, ...]) -> None:
    """Analyze log files, .gz files, folders (<root>/<host>/<file>) or - (stdin)."""
    try:
        run_analyze(list(paths), data=data, host=host, fmt=fmt, rules=rules)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc
