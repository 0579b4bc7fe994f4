"""``stackwatch respond list|approve|reject|run``: the queue of response actions."""

from __future__ import annotations

import json
import sys

import click

from stackwatch.cli.analyze import DEFAULT_DATA
from stackwatch.cli.orphans import actor_name
from stackwatch.core.errors import StackwatchError

_data_option = click.option("--data", default=DEFAULT_DATA, show_default=True,
                            help="Data folder (store and action queue).")


@click.group("respond")
def respond_group() -> None:
    """Review, approve, reject and run the planned responses to orphaned resources."""


@respond_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Every queued action, not only those pending approval.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@_data_option
def list_command(show_all: bool, fmt: str, data: str) -> None:
    """List the actions waiting for approval (or all of them)."""
    from stackwatch.respond.approvals import ApprovalQueue

    with ApprovalQueue.open(data) as queue:
        items = queue.actions() if show_all else queue.list_pending()
    if fmt == "json":
        for item in items:
            sys.stdout.write(json.dumps(item.to_dict(), sort_keys=True) + "\n")
        return
    if not items:
        sys.stdout.write("nothing queued\n" if show_all else "nothing waits for approval\n")
    for item in items:
        due = item.due.strftime("%Y-%m-%d %H:%M")
        who = f" by {item.decided_by}" if item.decided_by else ""
        sys.stdout.write(f"{item.id:>5} {item.status:<9} due {due}  {item.planned.describe()}{who}\n")


def _decide(ids: tuple[int, ...], data: str, decide: str, actor: str, reason: str | None) -> None:
    from stackwatch.respond.approvals import ApprovalQueue
    from stackwatch.store import open_store

    failed = False
    with open_store(data) as store, ApprovalQueue.open(data, store=store) as queue:
        for action_id in ids:
            try:
                item = (queue.approve(action_id, actor) if decide == "approve"
                        else queue.reject(action_id, actor, reason or ""))
            except StackwatchError as exc:
                sys.stderr.write(f"{action_id}: {exc}\n")
                failed = True
                continue
            sys.stdout.write(f"{item.id} {item.status}: {item.planned.describe()}\n")
    if failed:
        sys.exit(1)


@respond_group.command("approve")
@click.argument("ids", nargs=-1, type=int, required=True)
@click.option("--actor", default=None, help="Who approves (default: the OS user).")
@_data_option
def approve_command(ids: tuple[int, ...], actor: str | None, data: str) -> None:
    """Approve pending actions; they run at the next `respond run` (or sweep) once due."""
    _decide(ids, data, "approve", actor or actor_name(), None)


@respond_group.command("reject")
@click.argument("ids", nargs=-1, type=int, required=True)
@click.option("--reason", required=True, help="Why (recorded with the decision).")
@click.option("--actor", default=None, help="Who rejects (default: the OS user).")
@_data_option
def reject_command(ids: tuple[int, ...], reason: str, actor: str | None, data: str) -> None:
    """Reject pending actions; they are never run."""
    _decide(ids, data, "reject", actor or actor_name(), reason)


@respond_group.command("run")
@click.option("--cloud", default=None, help="clouds.yaml entry to use (default: $OS_CLOUD).")
@click.option("--dry-run", is_flag=True, help="Print what would run; change nothing.")
@click.option("--config", "config", type=click.Path(exists=True, dir_okay=False),
              help="YAML file with the response policy (retries, retry_delay).")
@_data_option
def run_command(cloud: str | None, dry_run: bool, config: str | None, data: str) -> None:
    """Run the approved actions whose grace period is over (failed ones are retried)."""
    from stackwatch.respond.approvals import ApprovalQueue
    from stackwatch.respond.openstack import Cloud
    from stackwatch.respond.policy import load_policy
    from stackwatch.respond.reconcile import run_due
    from stackwatch.store import open_store

    try:
        policy = load_policy(config)
        connection = None if dry_run else Cloud.connect(cloud)
        with open_store(data) as store, ApprovalQueue.open(data, store=store) as queue:
            if dry_run:
                from stackwatch.respond.actions import Executor

                report = Executor(None, out=sys.stdout).run(queue.due(), dry_run=True)
            else:
                assert connection is not None
                report = run_due(connection, policy, queue, store=store, out=sys.stdout, actor=actor_name())
    except StackwatchError as exc:
        raise click.ClickException(str(exc)) from exc
    if not report.dry_run and not report.complete:
        sys.exit(1)
