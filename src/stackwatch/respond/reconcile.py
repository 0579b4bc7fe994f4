"""One reconciliation pass, shared by ``stackwatch orphans`` and the live service.

1. Orphans: the sweep through the API (deletions whose notification was missed) plus the open
   ``identity.orphaned_resources`` alerts (from notifications), each confirmed against the API.
2. Sweep finds become alerts in the store (same rule and key as the detector's, so they fold).
3. The policy turns confirmed orphans into a plan. Dry-run: print it and stop, nothing written.
4. The plan is queued (pending approval, or approved; due after the grace period) and every
   due action runs through the Executor.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TextIO

from stackwatch.core.alert import Alert
from stackwatch.core.types import EventLog, ResponseStore, SweepStore
from stackwatch.respond.actions import Executor, RunReport
from stackwatch.respond.approvals import ApprovalQueue
from stackwatch.respond.openstack import Cloud
from stackwatch.respond.orphans import CATEGORY, RULE_ID, Orphan
from stackwatch.respond.policy import PlannedAction, ResponsePolicy


@dataclass(slots=True)
class ReconcileReport:
    orphans: list[Orphan] = field(default_factory=list)  # confirmed, with resources
    dismissed: list[Orphan] = field(default_factory=list)  # owner exists, or nothing left
    planned: list[PlannedAction] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)
    run: RunReport | None = None
    alerts: list[Alert] = field(default_factory=list)  # raised for sweep finds


def orphans_from_alerts(alerts: Iterable[Alert]) -> list[Orphan]:
    out = []
    for alert in alerts:
        if alert.category == CATEGORY and alert.status == "open":
            orphan = Orphan.from_alert(alert)
            if orphan is not None:
                out.append(orphan)
    return out


def open_orphan_alerts(store: ResponseStore) -> list[Alert]:
    """The open orphaned-resources alerts of a store that carry an inventory (the detector's and
    the sweep's; the identity rule pack's deletion records have none)."""
    from stackwatch.store import AlertQuery

    query = AlertQuery(rule=RULE_ID, category=CATEGORY, status="open", limit=10_000)
    return [s.alert for s in store.alerts(query)]


def reconcile(cloud: Cloud, policy: ResponsePolicy, *, queue: ApprovalQueue | None = None,
              store: SweepStore | None = None,
              alerts: Iterable[Alert] = (), sweep: bool = True, dry_run: bool = False,
              out: TextIO | None = sys.stdout, sleep: Callable[[float], None] = time.sleep,
              actor: str = "stackwatch", countermeasures: bool = True) -> ReconcileReport:
    """Find, confirm, plan, queue and run (see the module docstring). ``countermeasures=False``:
    the orphan actions only (serve runs the countermeasure pass on its own cadence)."""
    report = ReconcileReport()
    found: dict[str, Orphan] = {}
    for orphan in orphans_from_alerts(alerts):
        confirmed = cloud.confirm(orphan)
        if confirmed.confirmed and confirmed.resources:
            found[orphan.key] = confirmed
        else:
            report.dismissed.append(confirmed)
    if sweep:
        for orphan in cloud.sweep():
            known = found.get(orphan.key)
            if known is None:
                found[orphan.key] = orphan
            else:  # the API's listing is the fuller one; keep what the ledger alone knew (images)
                ids = {r.key for r in orphan.resources}
                known.resources = orphan.resources + [r for r in known.resources if r.key not in ids]
    report.orphans = list(found.values())
    now = datetime.now(UTC)
    report.alerts = [o.to_alert(now) for o in report.orphans if o.source == "sweep"]
    _say(out, _describe_orphans(report))
    for orphan in report.orphans:
        report.planned.extend(policy.plan(orphan))
    if policy.report_only:
        _say(out, "policy: report only; no action planned")
    if dry_run:
        report.run = Executor(None, out=out).run(report.planned, dry_run=True)
        if policy.countermeasures is not None and countermeasures:
            from stackwatch.respond.counter_run import countermeasure_pass

            countermeasure_pass(policy, cloud=cloud, store=store, queue=None, ledger=None, out=out,
                                dry_run=True)
        return report
    if store is not None and report.alerts:
        store.upsert_alerts(report.alerts)
        store.flush()
    if queue is None:
        return report
    report.queued = queue.enqueue(report.planned, approval=policy.approval, grace=policy.grace)
    if policy.countermeasures is not None and countermeasures:  # responses to open alerts: planned, queued,
        from stackwatch.respond.applied import AppliedLedger
        from stackwatch.respond.counter_run import countermeasure_pass

        with AppliedLedger.open(queue.path.parent.parent) as ledger:
            countermeasure_pass(policy, cloud=cloud, store=store, queue=queue, ledger=ledger, out=out,
                                actor=actor, run=False)  # ... expired here; run below with the others
    pending = len(queue.list_pending())
    if pending:
        _say(out, f"{pending} action(s) wait for approval: stackwatch respond list")
    report.run = run_due(cloud, policy, queue, store=store, out=out, sleep=sleep, actor=actor,
                         countermeasures=countermeasures)
    return report


def run_due(cloud: Cloud | None, policy: ResponsePolicy, queue: ApprovalQueue, *,
            store: EventLog | None = None,
            out: TextIO | None = sys.stdout, sleep: Callable[[float], None] = time.sleep,
            actor: str = "stackwatch", dry_run: bool = False, countermeasures: bool = True) -> RunReport:
    """Run the queued actions that are approved (or failed before) and due (``countermeasures=False``:
    the orphan actions only)."""
    from stackwatch.respond.applied import AppliedLedger
    from stackwatch.respond.counter_exec import CountermeasureExecutor, is_countermeasure

    due = queue.due()
    executor = Executor(cloud, store=store, queue=queue, retries=policy.retries,
                        retry_delay=policy.retry_delay, sleep=sleep, out=out, actor=actor)
    report = executor.run([i for i in due if not is_countermeasure(i.planned)], dry_run=dry_run)
    counter_due = [i for i in due if is_countermeasure(i.planned)] if countermeasures else []
    if counter_due:  # responses to alerts: their own executor, their applied-state ledger
        with AppliedLedger.open(queue.path.parent.parent) as ledger:
            more = CountermeasureExecutor(
                cloud, ledger=ledger, policy=policy.countermeasures, store=store, queue=queue,
                retries=policy.retries, retry_delay=policy.retry_delay, sleep=sleep, out=out, actor=actor,
            ).run(counter_due, dry_run=dry_run)
        report.results.extend(more.results)
    return report


def _describe_orphans(report: ReconcileReport) -> str:
    if not report.orphans:
        return "no orphaned resources found"
    lines = []
    for orphan in report.orphans:
        lines.append(f"{orphan.owner_kind} {orphan.owner_id} is gone ({orphan.source}); still alive:")
        for r in orphan.resources:
            where = f" on {r.host}" if r.host else ""
            links = "".join(f" [attached {a.get('server') or a.get('volume')}]" for a in r.attachments)
            lines.append(f"  {r.type} {r.id} {r.name or ''}{where}{links}".rstrip())
    return "\n".join(lines)


def _say(out: TextIO | None, text: str) -> None:
    if out is not None:
        out.write(text + "\n")
