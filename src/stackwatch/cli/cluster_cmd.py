"""``stackwatch cluster status``: collectors, analyzers and partitions, read from the broker."""

from __future__ import annotations

import asyncio
import sys

import click
import orjson

from stackwatch.config.loader import load_config
from stackwatch.core.errors import ConfigError


@click.group("cluster")
def cluster_group() -> None:
    """The cluster roles on RabbitMQ (docs/cluster.md)."""


@cluster_group.command("status")
@click.option("--config", "-c", "config_path", required=True, type=click.Path(dir_okay=False),
              help="the configuration file (its cluster section says where the broker is)")
@click.option("--json", "as_json", is_flag=True, help="one JSON document instead of tables")
@click.option("--listen", "seconds", type=click.FloatRange(0.5, 60.0), default=None,
              help="seconds to listen for heartbeats (default: one beat interval and a half second)")
def status_command(config_path: str, as_json: bool, seconds: float | None) -> None:
    """Collectors, analyzers and partitions (owner, depth, lag, standbys); exit status 1 when a
    partition has no consumer or no analyzer is alive, 2 when the broker cannot be reached."""
    from stackwatch.cluster.membership import BEAT_INTERVAL
    from stackwatch.cluster.status import read_status, render_text
    from stackwatch.cluster.topology import Topology

    try:
        settings = load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    cluster = settings.cluster
    topology = Topology(cluster.name, cluster.partitions)
    wait = seconds if seconds is not None else BEAT_INTERVAL + 0.5
    try:
        status = asyncio.run(read_status(cluster.connect_url(), topology, wait))
    except Exception as exc:  # the broker down, refused credentials, the control exchange missing
        click.echo(f"error: cannot read the cluster {cluster.name!r} from the broker: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(orjson.dumps(status.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(render_text(status), nl=False)
    if status.problems:
        sys.exit(1)
