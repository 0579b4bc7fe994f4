"""The executor: runs planned actions against the cloud, safely and repeatably.

For every action, right before acting: the owner must still be gone (a GET answering 404) and
the resource must still exist and still belong to it; otherwise nothing is done (``cancelled``,
or ``already_done`` when the resource is gone). Calls pass ``ignore_missing=False`` (openstacksdk
would otherwise hide a 404), and a 404 on a delete of an already-gone resource counts as done,
explicitly. Each result is verified with a fresh GET. API errors that may pass (5xx, connection
failures) are retried with backoff; other errors fail the action. A failed step skips the later
steps on the same resource (no delete after a failed detach, no terminate after a failed
snapshot), the rest of the plan goes on, and the report says what was and was not done; run
again to finish (done actions are not repeated, failed ones are retried).

Every action and its result is appended to the store as an event: kind ``response``, service
``stackwatch``, action ``response.<action>`` (e.g. ``response.terminate_instance``), outcome
``success`` (done / already done), ``failure`` or ``unknown`` (skipped / cancelled), target the
resource, ``attrs.result`` / ``attrs.detail`` / ``attrs.owner``.

Dry-run prints the exact plan and makes no call at all.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from stackwatch.core.event import Event, Initiator, Target
from stackwatch.core.types import EventLog
from stackwatch.respond.approvals import ApprovalQueue, QueuedAction
from stackwatch.respond.ledger import Resource
from stackwatch.respond.openstack import Cloud, not_found_error, still_owned
from stackwatch.respond.policy import PlannedAction

RESULTS: Final = ("done", "already_done", "failed", "skipped", "cancelled", "refused", "planned")
_OUTCOMES: Final = {"done": "success", "already_done": "success", "failed": "failure"}
_GONE_STATUSES: Final = ("deleted", "deleting", "soft_deleted")


class VerifyError(Exception):
    """The API accepted the action but the resource is not in the expected state afterwards."""


@dataclass(slots=True)
class ActionResult:
    planned: PlannedAction
    status: str  # one of RESULTS
    detail: str = ""
    attempts: int = 0
    queue_id: int | None = None

    def line(self) -> str:
        detail = f": {self.detail}" if self.detail else ""
        return f"[{self.status}] {self.planned.describe()}{detail}"


@dataclass(slots=True)
class RunReport:
    results: list[ActionResult] = field(default_factory=list)
    dry_run: bool = False

    def count(self, *statuses: str) -> int:
        return sum(1 for r in self.results if r.status in statuses)

    @property
    def complete(self) -> bool:
        return all(r.status in ("done", "already_done", "cancelled", "refused") for r in self.results)

    @property
    def partial(self) -> bool:
        """Some actions were done and some were not (failed or skipped)."""
        return not self.complete and self.count("done", "already_done") > 0

    def summary(self) -> str:
        if self.dry_run:
            return f"dry run: {len(self.results)} action(s) planned, nothing changed"
        state = "complete" if self.complete else ("PARTIAL" if self.partial else "FAILED")
        if not self.results:
            state = "nothing to do"
        return (f"{state}: {self.count('done')} done, {self.count('already_done')} already done, "
                f"{self.count('failed')} failed, {self.count('skipped')} skipped, "
                f"{self.count('cancelled')} cancelled" + (f", {self.count('refused')} refused"
                                                          if self.count("refused") else ""))


def _transient(exc: BaseException) -> bool:
    """Errors worth retrying: server-side (5xx) and connection failures."""
    from keystoneauth1 import exceptions as ksa
    from openstack import exceptions as sdk

    if isinstance(exc, sdk.HttpException):
        return exc.status_code is None or exc.status_code >= 500
    return isinstance(exc, ksa.ConnectFailure | ksa.RetriableConnectionFailure | ksa.ConnectionError)


class Executor:
    """Runs planned (or queued) actions through a Cloud."""

    def __init__(self, cloud: Cloud | None, *, store: EventLog | None = None,
                 queue: ApprovalQueue | None = None,
                 retries: int = 3, retry_delay: float = 2.0, sleep: Callable[[float], None] = time.sleep,
                 out: TextIO | None = sys.stdout, actor: str = "stackwatch") -> None:
        self.cloud = cloud
        self.store = store
        self.queue = queue
        self.retries = retries
        self.retry_delay = retry_delay
        self.sleep = sleep
        self.out = out
        self.actor = actor
        self.host = socket.gethostname()

    def run(self, items: Sequence[PlannedAction | QueuedAction], *, dry_run: bool = False) -> RunReport:
        report = RunReport(dry_run=dry_run)
        ordered = sorted(((i.planned, i.id) if isinstance(i, QueuedAction) else (i, None) for i in items),
                         key=lambda pair: (pair[0].owner_kind, pair[0].owner_id, pair[0].step))
        blocked: dict[tuple[str, str], str] = {}  # resource -> the step that did not complete
        for planned, queue_id in ordered:
            if dry_run:
                result = ActionResult(planned, "planned", queue_id=queue_id)
                self._say(f"would {planned.describe()}")
            else:
                resource = (planned.resource_type, planned.resource_id)
                if resource in blocked:
                    result = ActionResult(planned, "skipped", f"{blocked[resource]} did not complete",
                                          queue_id=queue_id)
                else:
                    result = self._execute(planned, queue_id)
                if result.status in ("failed", "skipped", "cancelled"):
                    blocked.setdefault(resource, planned.action)
                self._record(result)
                self._say(result.line())
            report.results.append(result)
        if not dry_run or report.results:
            self._say(report.summary())
        return report

    # ------------------------------------------------------------------ one action

    def _execute(self, planned: PlannedAction, queue_id: int | None) -> ActionResult:
        if self.cloud is None:
            raise RuntimeError("no cloud to act on (only a dry run works without one)")
        handler = getattr(self, "_" + planned.action)
        attempts = 0
        while True:
            attempts += 1
            try:
                if self.cloud.owner_exists(planned.owner_kind, planned.owner_id):
                    why = f"{planned.owner_kind} {planned.owner_id} exists: never touching its resources"
                    return ActionResult(planned, "cancelled", why, attempts, queue_id)
                current = self.cloud.get_resource(planned.resource_type, planned.resource_id)
                if current is None:
                    return ActionResult(planned, "already_done", f"{planned.resource_type} is already gone",
                                        attempts, queue_id)
                seen = Resource(type=planned.resource_type, id=planned.resource_id,
                                project=planned.params.get("project"))
                if not still_owned(current, planned.owner_kind, planned.owner_id, seen):
                    return ActionResult(planned, "cancelled", f"now owned by project {current.project}",
                                        attempts, queue_id)
                status, detail = handler(planned, current)
                return ActionResult(planned, status, detail, attempts, queue_id)
            except VerifyError as exc:
                return ActionResult(planned, "failed", f"not verified: {exc}", attempts, queue_id)
            except Exception as exc:  # every API error is reported, never raised
                if _transient(exc) and attempts <= self.retries:
                    self._say(f"  retry {attempts}/{self.retries} of {planned.action} after: {_brief(exc)}")
                    self.sleep(self.retry_delay * 2 ** (attempts - 1))
                    continue
                return ActionResult(planned, "failed", _brief(exc), attempts, queue_id)

    def _gone_or_raise(self, planned: PlannedAction, verb: str) -> tuple[str, str]:
        assert self.cloud is not None
        current = self.cloud.get_resource(planned.resource_type, planned.resource_id)
        if current is None:
            return "done", f"{verb}; verified gone"
        if (current.status or "").lower() in _GONE_STATUSES:
            return "done", f"{verb}; status {current.status}"
        raise VerifyError(f"{planned.resource_type} still exists (status {current.status})")

    def _delete(self, planned: PlannedAction, call: Callable[[], Any], verb: str) -> tuple[str, str]:
        try:
            call()
        except not_found_error():  # deleted by someone else since our GET: done, once verified
            assert self.cloud is not None
            if self.cloud.get_resource(planned.resource_type, planned.resource_id) is not None:
                raise VerifyError(f"404 on delete, yet the {planned.resource_type} is still there") from None
            return "already_done", f"{planned.resource_type} already gone (404 on delete)"
        return self._gone_or_raise(planned, verb)

    def _snapshot_instance(self, planned: PlannedAction, _current: Any) -> tuple[str, str]:
        assert self.cloud is not None
        compute = self.cloud.conn.compute
        server = compute.get_server(planned.resource_id)
        image_id = server.create_image(compute, planned.params.get("image_name")
                                       or f"stackwatch-orphan-{planned.resource_id}")
        if not image_id:
            raise VerifyError("the API returned no image id")
        return "done", f"snapshot image {image_id}"

    def _terminate_instance(self, planned: PlannedAction, _current: Any) -> tuple[str, str]:
        assert self.cloud is not None
        compute = self.cloud.conn.compute
        return self._delete(planned, lambda: compute.delete_server(planned.resource_id, ignore_missing=False),
                            "terminated")

    def _detach_volume(self, planned: PlannedAction, current: Any) -> tuple[str, str]:
        assert self.cloud is not None
        if not current.attachments:
            return "already_done", "not attached"
        conn, detached = self.cloud.conn, []
        for att in current.attachments:
            server = att.get("server", "")
            try:
                if server and self.cloud.get_resource("instance", server) is not None:
                    conn.compute.delete_volume_attachment(server, planned.resource_id, ignore_missing=False)
                elif att.get("attachment"):  # the server is gone: clear cinder's stale attachment
                    conn.block_storage.detach_volume(planned.resource_id, att["attachment"])
            except not_found_error():
                pass  # that attachment is already gone
            detached.append(server or att.get("attachment", "?"))
        after = self.cloud.get_resource("volume", planned.resource_id)
        if after is not None and after.attachments and (after.status or "") != "detaching":
            servers = ", ".join(a.get("server", "?") for a in after.attachments)
            raise VerifyError(f"volume still attached to {servers}")
        return "done", f"detached from {', '.join(detached)}"

    def _delete_volume(self, planned: PlannedAction, current: Any) -> tuple[str, str]:
        assert self.cloud is not None
        if current.attachments:
            raise VerifyError("volume is still attached; not deleting it")
        storage = self.cloud.conn.block_storage
        return self._delete(planned, lambda: storage.delete_volume(planned.resource_id, ignore_missing=False),
                            "deleted")

    def _disassociate_floating_ip(self, planned: PlannedAction, current: Any) -> tuple[str, str]:
        assert self.cloud is not None
        if not current.extra.get("port_id"):
            return "already_done", "not associated"
        self.cloud.conn.network.update_ip(planned.resource_id, port_id=None)
        after = self.cloud.get_resource("floatingip", planned.resource_id)
        if after is not None and after.extra.get("port_id"):
            raise VerifyError(f"still associated with port {after.extra['port_id']}")
        return "done", f"disassociated from port {current.extra['port_id']}"

    def _release_floating_ip(self, planned: PlannedAction, _current: Any) -> tuple[str, str]:
        assert self.cloud is not None
        network = self.cloud.conn.network
        return self._delete(planned, lambda: network.delete_ip(planned.resource_id, ignore_missing=False),
                            "released")

    def _delete_port(self, planned: PlannedAction, _current: Any) -> tuple[str, str]:
        assert self.cloud is not None
        network = self.cloud.conn.network
        return self._delete(planned, lambda: network.delete_port(planned.resource_id, ignore_missing=False),
                            "deleted")

    # ------------------------------------------------------------------ reporting

    def _record(self, result: ActionResult) -> None:
        if self.queue is not None and result.queue_id is not None:
            status = {"already_done": "done", "skipped": "failed", "refused": "cancelled"}.get(
                result.status, result.status)
            self.queue.mark(result.queue_id, status, result.detail, result.attempts)
        if self.store is not None:
            self.store.append_events([self.event(result)])
            self.store.flush()

    def event(self, result: ActionResult) -> Event:
        """The store event for one action's result."""
        p = result.planned
        now = datetime.now(UTC)
        attrs: dict[str, Any] = {"result": result.status, "detail": result.detail,
                                 "attempts": result.attempts, "owner": f"{p.owner_kind}:{p.owner_id}"}
        if p.params:
            attrs["params"] = dict(p.params)
        if result.queue_id is not None:
            attrs["queue_id"] = result.queue_id
        return Event(time=now, received=now, host=self.host, service="stackwatch",
                     severity="warning" if result.status == "failed" else "notice",
                     message=result.line(), kind="response", action=f"response.{p.action}",
                     outcome=_OUTCOMES.get(result.status, "unknown"),
                     initiator=Initiator(name=self.actor,
                                         project=p.owner_id if p.owner_kind == "project" else None),
                     target=Target(type=p.resource_type, id=p.resource_id, name=p.resource_name),
                     attrs=attrs, origin="stackwatch:respond", ref=f"respond:{p.key}")

    def _say(self, text: str) -> None:
        if self.out is not None:
            self.out.write(text + "\n")


def _brief(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"HTTP {status}: {text}" if status else text
