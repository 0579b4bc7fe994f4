"""``stackwatch serve --config FILE``: the always-on monitor."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import sys

import click

from stackwatch.cli.startup_warnings import unkeyed_store_warning
from stackwatch.config.loader import load_config
from stackwatch.core.errors import ConfigError, RuleError, StoreError

log = logging.getLogger("stackwatch.serve")


ROLES = ("all", "collector", "analyzer")


async def serve_role(settings: object, role: str, prefer: list[int] | None = None) -> None:
    """``--role collector|analyzer``: one part of a cluster (docs/cluster.md)."""
    from stackwatch.detect.gc_tuning import tune_gc

    # as serve's: a collector allocates per record what parsing and batching drop at once, an
    # analyzer keeps its partitions' window state for minutes; with CPython's default thresholds
    # the cyclic GC traversed that state over and over (measured: README, "Cluster roles")
    tune_gc()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if role == "collector":
        from stackwatch.cluster.collector import serve_collector

        await serve_collector(settings, stop)  # type: ignore[arg-type]
    else:
        from stackwatch.cluster.analyzer import serve_analyzer

        await serve_analyzer(settings, stop, prefer)  # type: ignore[arg-type]


async def serve(settings: object) -> None:
    from stackwatch.pipeline.runner import create_runner

    runner = create_runner(settings)  # type: ignore[arg-type]
    from stackwatch.detect.gc_tuning import tune_gc

    tune_gc()  # rules loaded, engine built: long-lived window state need not be traversed by the GC
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await runner.start()
    listening = []
    for source in runner.sources:
        address = getattr(source, "address", None)
        listening.append(f"{source.name}={address[0]}:{address[1]}" if address else source.name)
    http = runner.selfmon.http_address
    if http:
        listening.append(f"http={http[0]}:{http[1]}")
    log.info("ready: %s", " ".join(listening))
    try:
        await runner.wait(stop)
        log.info("stopping: flushing, committing, acknowledging")
    finally:
        await runner.stop()
    log.info("stopped: %d events stored", runner.stored_events)


@click.command("serve")
@click.option(
    "--config",
    "-c",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="the configuration file (see `stackwatch config sample`)",
)
@click.option(
    "--role",
    default="all",
    type=click.Choice(ROLES),
    help="all: one process does everything (default); collector: read, parse and publish batches to "
    "the cluster's partitions; analyzer: consume partitions, detect, store (docs/cluster.md)",
)
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--prefer", default="", metavar="N,N,...",
              help="analyzer: partitions to take at once; the others are taken as a standby "
                   "(default: all of them; 'none': a standby for every partition)")
@click.option("--data", default=None, metavar="FOLDER|postgresql://...",
              help="the store, instead of the configuration's store.url (e.g. the shared PostgreSQL "
                   "store of a cluster's analyzers; its password stays in store.password)")
def serve_command(config_path: str, role: str, log_level: str, prefer: str, data: str | None) -> None:
    """Collect from every node in real time, detect live, deliver alerts."""
    logging.basicConfig(
        level=log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if data is not None:
        store = dataclasses.replace(settings.store, url=data)
        try:
            store.validate()
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--data") from None
        settings = dataclasses.replace(settings, store=store)
    warning = unkeyed_store_warning(settings.store) if role != "collector" else None
    if warning:
        sys.stderr.write(f"warning: {warning}\n")
    try:
        import uvloop
    except ImportError:  # stdlib asyncio works; UDP intake is about 4x slower
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        runner(serve(settings) if role == "all" else serve_role(settings, role, _partitions(prefer)))
    except (ConfigError, RuleError, StoreError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


def _partitions(prefer: str) -> list[int] | None:
    """``--prefer``: None (every partition), [] (``none``: a standby only) or the numbers."""
    if not prefer:
        return None
    if prefer == "none":
        return []
    try:
        return [int(p) for p in prefer.split(",") if p.strip()]
    except ValueError:
        raise click.BadParameter("a comma-separated list of partition numbers or 'none'",
                                 param_hint="--prefer") from None
