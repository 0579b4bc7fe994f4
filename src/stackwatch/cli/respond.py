"""``stackwatch respond list|approve|reject|run``: the queue of response actions."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from stackwatch.cli.analyze import DEFAULT_DATA
from stackwatch.cli.orphans import actor_name
from stackwatch.core.errors import StackwatchError

_data_option = click.option("--data", default=DEFAULT_DATA, show_default=True,
                            help="Data folder (store and action queue).")


@click.group("respond")
def respond_group() -> None:
    """Review, approve, reject and run the planned responses (orphaned resources, countermeasures)."""


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
    from stackwatch.respond.recorder import SpoolingRecorder

    failed = False
    store = SpoolingRecorder(data)  # appends, or spools while serve holds the store
    with ApprovalQueue.open(data, store=store) as queue:
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
    from stackwatch.respond.counter_exec import is_countermeasure
    from stackwatch.respond.countermeasures import NEEDS_CLOUD
    from stackwatch.respond.openstack import Cloud
    from stackwatch.respond.policy import load_policy
    from stackwatch.respond.reconcile import run_due
    from stackwatch.respond.recorder import SpoolingRecorder

    try:
        policy = load_policy(config)
        store = SpoolingRecorder(data)  # appends, or spools while serve holds the store
        with ApprovalQueue.open(data, store=store) as queue:
            # HAProxy's deny map needs no cloud: connect only when a due action does
            needs_cloud = any(not is_countermeasure(i.planned) or i.planned.action in NEEDS_CLOUD
                              for i in queue.due())
            connection = Cloud.connect(cloud) if needs_cloud and not dry_run else None
            if dry_run:
                from stackwatch.respond.actions import Executor

                report = Executor(None, out=sys.stdout).run(queue.due(), dry_run=True)
            else:
                report = run_due(connection, policy, queue, store=store, out=sys.stdout, actor=actor_name())
    except StackwatchError as exc:
        raise click.ClickException(str(exc)) from exc
    if not report.dry_run and not report.complete:
        sys.exit(1)


# ---------------------------------------------------------------------------- countermeasures



def _cloud_for(actions: list[str], cloud: str | None) -> object:
    """A cloud connection only when an action needs one (HAProxy's deny map does not)."""
    from stackwatch.respond.countermeasures import NEEDS_CLOUD
    from stackwatch.respond.openstack import Cloud

    return Cloud.connect(cloud) if any(a in NEEDS_CLOUD for a in actions) else None


@respond_group.command("plan")
@click.option("--config", "config", type=click.Path(exists=True, dir_okay=False),
              help="YAML file with the response policy (its respond: section). Default: report only.")
@click.option("--cloud", default=None, help="clouds.yaml entry to use (default: $OS_CLOUD).")
@click.option("--dry-run", is_flag=True, help="Print the exact plan; change nothing, write nothing.")
@_data_option
def plan_command(config: str | None, cloud: str | None, dry_run: bool, data: str) -> None:
    """Countermeasures for the open alerts: plan by policy, queue (for approval), run what is due,
    undo what has expired."""
    from stackwatch.respond.applied import AppliedLedger
    from stackwatch.respond.approvals import ApprovalQueue
    from stackwatch.respond.counter_run import countermeasure_pass
    from stackwatch.respond.policy import load_policy
    from stackwatch.respond.recorder import SpoolingRecorder

    try:
        policy = load_policy(config)
        counter = policy.countermeasures
        acting = [a for a, p in (counter.actions.items() if counter else ()) if p.mode == "act"]
        connection = None if dry_run else _cloud_for(acting, cloud)
        store = SpoolingRecorder(data)  # appends, or spools while serve holds the store
        if dry_run:
            report = countermeasure_pass(policy, cloud=None, store=store, queue=None, ledger=None,
                                         dry_run=True, out=sys.stdout)
        else:
            with ApprovalQueue.open(data, store=store) as queue, AppliedLedger.open(data) as ledger:
                report = countermeasure_pass(policy, cloud=connection, store=store, queue=queue,
                                             ledger=ledger, actor=actor_name(), out=sys.stdout)
    except StackwatchError as exc:
        raise click.ClickException(str(exc)) from exc
    runs = [r for r in (report.run, report.expired) if r is not None and not r.dry_run]
    if any(not r.complete for r in runs):
        sys.exit(1)


def _undo(queue_id: int, dry_run: bool, cloud: str | None, config: str | None, data: str, want: str) -> None:
    from stackwatch.respond.applied import AppliedLedger
    from stackwatch.respond.counter_exec import CountermeasureExecutor
    from stackwatch.respond.policy import load_policy
    from stackwatch.respond.recorder import SpoolingRecorder

    try:
        policy = load_policy(config)
        with AppliedLedger.open(data) as ledger:
            item = ledger.find(queue_id)
            if item is None:
                raise StackwatchError(f"no applied countermeasure for queued action {queue_id}")
            if want and item.action != want:
                raise StackwatchError(f"action {queue_id} is {item.action}, not {want}")
            if item.undone_at is not None:
                sys.stdout.write(f"{queue_id}: {item.action} {item.resource_id} is already undone\n")
                return
            connection = None if dry_run else _cloud_for([item.action], cloud)
            store = None if dry_run else SpoolingRecorder(data)  # appends, or spools while serve runs
            result = CountermeasureExecutor(connection, ledger=ledger, policy=policy.countermeasures,
                                            store=store, out=sys.stdout,
                                            actor=actor_name()).undo(item, dry_run=dry_run)
    except StackwatchError as exc:
        raise click.ClickException(str(exc)) from exc
    if result.status == "failed":
        sys.exit(1)


F = TypeVar("F", bound=Callable[..., Any])

_undo_options = [
    click.argument("queue_id", type=int),
    click.option("--dry-run", is_flag=True, help="Print what would be undone; change nothing."),
    click.option("--cloud", default=None, help="clouds.yaml entry to use (default: $OS_CLOUD)."),
    click.option("--config", "config", type=click.Path(exists=True, dir_okay=False),
                 help="YAML file with the response policy (HAProxy socket and map defaults)."),
    _data_option,
]


def _with_undo_options(func: F) -> F:
    for option in reversed(_undo_options):
        func = option(func)
    return func


@respond_group.command("undo")
@_with_undo_options
def undo_command(queue_id: int, dry_run: bool, cloud: str | None, config: str | None, data: str) -> None:
    """Undo a countermeasure (by its id in `respond list --all`): enable the account again,
    release the instance, remove the address from the deny map."""
    _undo(queue_id, dry_run, cloud, config, data, "")


@respond_group.command("release")
@_with_undo_options
def release_command(queue_id: int, dry_run: bool, cloud: str | None, config: str | None, data: str) -> None:
    """Release a quarantined instance: its recorded security groups back, unlocked if we locked it."""
    _undo(queue_id, dry_run, cloud, config, data, "quarantine_instance")


@respond_group.command("expire")
@click.option("--dry-run", is_flag=True, help="Print what has expired; change nothing.")
@click.option("--cloud", default=None, help="clouds.yaml entry to use (default: $OS_CLOUD).")
@click.option("--config", "config", type=click.Path(exists=True, dir_okay=False),
              help="YAML file with the response policy.")
@_data_option
def expire_command(dry_run: bool, cloud: str | None, config: str | None, data: str) -> None:
    """Undo the countermeasures whose expiry has passed (`respond plan` does it too)."""
    from stackwatch.respond.applied import AppliedLedger
    from stackwatch.respond.counter_exec import CountermeasureExecutor
    from stackwatch.respond.policy import load_policy
    from stackwatch.respond.recorder import SpoolingRecorder

    try:
        policy = load_policy(config)
        store = None if dry_run else SpoolingRecorder(data)  # appends, or spools while serve runs
        with AppliedLedger.open(data) as ledger:
            expired = ledger.expired()
            connection = None if dry_run else _cloud_for([i.action for i in expired], cloud)
            report = CountermeasureExecutor(connection, ledger=ledger, policy=policy.countermeasures,
                                            store=store, out=sys.stdout,
                                            actor=actor_name()).expire(dry_run=dry_run)
    except StackwatchError as exc:
        raise click.ClickException(str(exc)) from exc
    if not report.results:
        sys.stdout.write("nothing has expired\n")
    if not dry_run and not report.complete:
        sys.exit(1)
