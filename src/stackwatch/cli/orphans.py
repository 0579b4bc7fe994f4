"""``stackwatch orphans [--cloud NAME] [--dry-run] [--config FILE]``: the reconciliation sweep on demand."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from stackwatch.cli.analyze import DEFAULT_DATA
from stackwatch.core.errors import StackwatchError


def actor_name() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "operator"


@click.command("orphans")
@click.option("--cloud", default=None, help="clouds.yaml entry to use (default: $OS_CLOUD).")
@click.option("--dry-run", is_flag=True, help="Print the exact plan; change nothing, write nothing.")
@click.option("--config", "config", type=click.Path(exists=True, dir_okay=False),
              help="YAML file with the response policy (its respond: section). Default: report only.")
@click.option("--data", default=DEFAULT_DATA, show_default=True, help="Data folder (store and action queue).")
def orphans_command(cloud: str | None, dry_run: bool, config: str | None, data: str) -> None:
    """Find resources whose project, user or domain no longer exists, and act on them by policy."""
    from stackwatch.respond.approvals import ApprovalQueue
    from stackwatch.respond.openstack import Cloud
    from stackwatch.respond.policy import load_policy
    from stackwatch.respond.reconcile import open_orphan_alerts, reconcile
    from stackwatch.store import open_store

    try:
        policy = load_policy(config)
        connection = Cloud.connect(cloud)
        have_data = Path(data).exists()
        store = open_store(data) if (have_data or not dry_run) else None
        try:
            alerts = open_orphan_alerts(store) if store is not None else []
            queue = None if dry_run else ApprovalQueue.open(data, store=store)
            try:
                report = reconcile(connection, policy, queue=queue, store=store, alerts=alerts,
                                   dry_run=dry_run, out=sys.stdout, actor=actor_name())
            finally:
                if queue is not None:
                    queue.close()
        finally:
            if store is not None:
                store.close()
    except StackwatchError as exc:
        raise click.ClickException(str(exc)) from exc
    if report.run is not None and not report.run.dry_run and not report.run.complete:
        sys.exit(1)
