"""One countermeasure pass: open alerts -> plan -> refusals recorded -> queued -> due ones run ->
expired ones undone -> deny entries HAProxy lost in a reload added back. Shared by ``stackwatch
respond plan`` and ``serve`` (on its own cadence, ``respond.countermeasure_interval``; without
``respond.cloud`` only the actions that need no cloud), so both act the same way.

Report-only (the default: no action with ``mode: act``) plans nothing, queues nothing and
changes nothing; the dry run prints the plan and writes nothing at all.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from stackwatch.core.alert import Alert
from stackwatch.core.types import ResponseStore
from stackwatch.respond.actions import ActionResult, Executor, RunReport
from stackwatch.respond.applied import AppliedLedger
from stackwatch.respond.counter_exec import CountermeasureExecutor, is_countermeasure, resolve_instance_side
from stackwatch.respond.countermeasures import NEEDS_CLOUD, CountermeasurePolicy, plan_countermeasures
from stackwatch.respond.policy import PlannedAction

ALERT_PAGE = 1000


@dataclass(slots=True)
class CounterReport:
    planned: list[PlannedAction] = field(default_factory=list)
    refused: list[ActionResult] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)
    run: RunReport | None = None
    expired: RunReport | None = None
    restored: list[ActionResult] = field(default_factory=list)


def open_alerts(store: ResponseStore, policy: CountermeasurePolicy) -> list[Alert]:
    """The open alerts of the categories some countermeasure acts on."""
    from stackwatch.store import AlertQuery

    categories = sorted({c for p in policy.actions.values() if p.mode == "act" for c in p.on})
    out: list[Alert] = []
    for category in categories:
        stored = store.alerts(AlertQuery(status="open", category=category, limit=ALERT_PAGE,
                                         with_evidence=False))
        out.extend(s.alert for s in stored)
    return out


def countermeasure_pass(policy: Any, *, cloud: Any, store: ResponseStore | None, queue: Any,
                        ledger: AppliedLedger | None,
                        alerts: list[Alert] | None = None, dry_run: bool = False,
                        out: TextIO | None = sys.stdout, actor: str = "stackwatch",
                        own: set[str] | None = None, run: bool = True) -> CounterReport:
    """``policy``: the ResponsePolicy (its ``countermeasures``, approval, grace, retries).
    ``run=False``: plan, refuse, queue and expire, but leave the due actions to the caller's
    ``run_due`` (the orphan sweep runs every due action once)."""
    report = CounterReport()
    counter: CountermeasurePolicy = policy.countermeasures or CountermeasurePolicy()
    if counter.report_only:
        _say(out, "countermeasures: report only; no action planned")
        return report
    if alerts is None:
        alerts = open_alerts(store, counter) if store is not None else []
    report.planned, refusals = plan_countermeasures(counter, alerts, own=own)
    if cloud is not None and not dry_run:  # which end of an IDS alert is the instance
        report.planned = resolve_instance_side(report.planned, cloud, out)
    executor = CountermeasureExecutor(cloud, ledger=ledger, policy=counter, own=own, store=store, queue=queue,
                                      out=out, actor=actor, retries=policy.retries,
                                      retry_delay=policy.retry_delay)
    if dry_run:
        for refusal in refusals:
            _say(out, f"would refuse {refusal.action} {refusal.target}: {refusal.reason}")
        report.run = Executor(None, out=out).run(report.planned, dry_run=True)
        return report
    report.refused = executor.refuse(refusals)
    if queue is not None:
        report.queued = queue.enqueue(report.planned, approval=policy.approval, grace=policy.grace)
        pending = [i for i in queue.list_pending() if is_countermeasure(i.planned)]
        if pending:
            _say(out, f"{len(pending)} countermeasure(s) wait for approval: stackwatch respond list")
        if run:
            due = [i for i in queue.due() if is_countermeasure(i.planned)]
            if cloud is None:  # left queued (not failed) until a pass with a cloud runs them
                waiting = [i for i in due if i.planned.action in NEEDS_CLOUD]
                if waiting:
                    _say(out, f"{len(waiting)} due countermeasure(s) need a cloud: left queued")
                due = [i for i in due if i.planned.action not in NEEDS_CLOUD]
            report.run = executor.run(due)
    report.expired = executor.expire()
    report.restored = executor.restore()  # after expiry: what HAProxy lost and is still in force
    return report


def _say(out: TextIO | None, text: str) -> None:
    if out is not None:
        out.write(text + "\n")
