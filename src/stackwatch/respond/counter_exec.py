"""Running countermeasures, undoing them, and expiring them: idempotent, recorded, verified.

Each action reads the current state first and changes only what is not yet as wanted, saving
what it found (and each step it completed) in the applied ledger before going on, so a run that
fails halfway reports ``failed`` with what was done (``partial: ...``) and the next run picks
up where it stopped; the state recorded before the first change is never overwritten by a
retry. Every result is verified with a fresh read.

- ``disable_account``: keystone ``enabled=false``. Keystone revokes every token of a user it
  disables (a revocation event by user id), so the user's tokens stop validating at once;
  the result is verified by reading the user back. Undo: ``enabled=true`` (if it was enabled).
- ``quarantine_instance``: the ports holding the address (``fixed_ips=ip_address=...``, owned by
  nova) give the server; each port's security groups are recorded, then replaced by the
  quarantine group of the port's project (created if missing, with its default egress rules
  removed: it lets nothing through); then the server is locked (``lock: true``). Undo
  (``release``): the recorded groups back on each port, unlocked if we locked it.
- ``deny_address``: ``add map`` on HAProxy's admin socket (value ``stackwatch:<expiry>``),
  verified with ``show map``. Undo and expiry: ``del map``. A reload of HAProxy forgets runtime
  entries: every pass adds back those still in force (``restore``).

Results are events in the store, as for the orphan actions (``response.<action>``); an undo is
``response.undo_<action>``, an expiry ``response.expire_<action>``, a refusal (allowlist) has
``attrs.result = refused``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, Final, TextIO

from stackwatch.core.event import replace
from stackwatch.core.types import EventLog
from stackwatch.respond.actions import ActionResult, Executor, RunReport, VerifyError, _brief, _transient
from stackwatch.respond.applied import Applied, AppliedLedger
from stackwatch.respond.countermeasures import (
    ACTIONS,
    CountermeasurePolicy,
    Refusal,
    alert_owner,
    own_addresses,
)
from stackwatch.respond.haproxy import RuntimeApi
from stackwatch.respond.policy import PlannedAction

_KINDS: Final = {"disable_account": "user", "deny_address": "address",
                  "quarantine_instance": "instance_address"}
QUARANTINE_DESCRIPTION: Final = "stackwatch quarantine: no traffic in or out (no rules)"


def is_countermeasure(planned: PlannedAction) -> bool:
    return planned.action in ACTIONS


class CountermeasureExecutor(Executor):
    """The orphan Executor's run/report/record machinery with the countermeasure actions."""

    def __init__(self, cloud: Any, *, ledger: AppliedLedger | None,
                 policy: CountermeasurePolicy | None = None, own: set[str] | None = None,
                 **options: Any) -> None:
        super().__init__(cloud, **options)
        self.ledger = ledger
        self.policy = policy or CountermeasurePolicy()
        self.own = own_addresses() if own is None else own

    # ------------------------------------------------------------------ doing

    def _execute(self, planned: PlannedAction, queue_id: int | None) -> ActionResult:
        if self.ledger is None:
            raise RuntimeError("no applied-state ledger (only a dry run works without one)")
        why = self._refusal(planned)
        if why:
            return ActionResult(planned, "refused", why, 0, queue_id)
        handler: Callable[[PlannedAction, Applied], str] = getattr(self, "_do_" + planned.action)
        attempts = 0
        while True:
            attempts += 1
            item = self.ledger.begin(planned.key, planned.action, planned.resource_type, planned.resource_id,
                                     queue_id)
            try:
                detail = handler(planned, item)
            except _Cancel as exc:
                return ActionResult(planned, "cancelled", str(exc), attempts, queue_id)
            except VerifyError as exc:
                self.ledger.save(item)
                why = _partial(item, f"not verified: {exc}")
                return ActionResult(planned, "failed", why, attempts, queue_id)
            except Exception as exc:  # every API error is reported, never raised
                self.ledger.save(item)
                if _retryable(exc) and attempts <= self.retries:
                    self._say(f"  retry {attempts}/{self.retries} of {planned.action} after: {_brief(exc)}")
                    self.sleep(self.retry_delay * 2 ** (attempts - 1))
                    continue
                return ActionResult(planned, "failed", _partial(item, _brief(exc)), attempts, queue_id)
            self.ledger.complete(item, float(planned.params.get("expiry") or 0))
            return ActionResult(planned, "done", detail, attempts, queue_id)

    def _refusal(self, planned: PlannedAction) -> str:
        """The allowlists, checked again right before acting (the policy may have changed)."""
        rules = self.policy.get(planned.action)
        allowed = {a.lower() for a in rules.allowlist}
        if planned.action == "disable_account" and planned.resource_id.lower() in allowed:
            return f"account {planned.resource_id} is in the allowlist"
        if planned.action == "deny_address":
            import ipaddress

            if planned.resource_id in self.own:
                return f"{planned.resource_id} is the monitor's own address"
            ip = ipaddress.ip_address(planned.resource_id)
            if any(ip in net for net in rules.networks()):
                return f"{planned.resource_id} is in the allowlist"
        return ""

    def _do_disable_account(self, planned: PlannedAction, item: Applied) -> str:
        identity = self._conn().identity
        user = identity.find_user(planned.resource_id, ignore_missing=True)
        if user is None:
            raise _Cancel(f"no keystone user {planned.resource_id}")
        allow = {a.lower() for a in self.policy.get("disable_account").allowlist}
        if user.id.lower() in allow or (user.name or "").lower() in allow:
            raise _Cancel(f"account {user.name} ({user.id}) is in the allowlist")
        item.state.setdefault("user_id", user.id)
        item.state.setdefault("was_enabled", bool(user.is_enabled))
        self.ledger_save(item)
        if user.is_enabled:
            identity.update_user(user, is_enabled=False)
        if identity.get_user(user.id).is_enabled:
            raise VerifyError(f"user {user.id} is still enabled")
        item.state["disabled"] = True
        return f"user {user.name} ({user.id}) disabled; keystone revoked its tokens"

    def _do_quarantine_instance(self, planned: PlannedAction, item: Applied) -> str:
        conn = self._conn()
        network = conn.network
        addresses = [planned.resource_id, *planned.params.get("also", ())]
        ports: list[Any] = []
        for address in addresses:  # the alert's source, then the other addresses it names
            ports = instance_ports(network, address)
            if ports:
                item.state.setdefault("address", address)
                break
        if not ports and not item.state.get("ports"):
            raise _Cancel(f"no instance port has address {' or '.join(addresses)}")
        recorded: dict[str, list[str]] = item.state.setdefault("ports", {})
        server_id = item.state.setdefault("server_id", ports[0].device_id if ports else "")
        group_name = str(planned.params.get("group") or "stackwatch-quarantine")
        done = []
        for port in ports:
            group = self._quarantine_group(group_name, port.project_id, item)
            if port.id not in recorded:  # what it had before our first change, never a retry's view
                recorded[port.id] = list(port.security_group_ids or [])
                self.ledger_save(item)
            if list(port.security_group_ids or []) != [group]:
                network.update_port(port, security_group_ids=[group])
            if list(network.get_port(port.id).security_group_ids or []) != [group]:
                raise VerifyError(f"port {port.id} does not hold only the quarantine group")
            done.append(port.id)
        item.state["quarantined"] = sorted(done)
        self.ledger_save(item)
        locked = ""
        if planned.params.get("lock") and server_id:
            compute = conn.compute
            server = compute.get_server(server_id)
            item.state.setdefault("was_locked", bool(server.is_locked))
            self.ledger_save(item)
            if not server.is_locked:
                compute.lock_server(server)
            if not compute.get_server(server_id).is_locked:
                raise VerifyError(f"server {server_id} is not locked")
            item.state["locked"] = True
            locked = ", server locked"
        return f"server {server_id}: {len(done)} port(s) in {group_name}{locked}"

    def _quarantine_group(self, name: str, project: str, item: Applied) -> str:
        network = self._conn().network
        groups = item.state.setdefault("groups", {})
        if project in groups:
            return str(groups[project])
        found = list(network.security_groups(name=name, project_id=project))
        group = found[0] if found else network.create_security_group(
            name=name, description=QUARANTINE_DESCRIPTION, project_id=project)
        for rule in list(network.security_group_rules(security_group_id=group.id)):
            network.delete_security_group_rule(rule, ignore_missing=True)  # no rule: nothing passes
        groups[project] = group.id
        self.ledger_save(item)
        return str(group.id)

    def _do_deny_address(self, planned: PlannedAction, item: Applied) -> str:
        configured = self.policy.actions.get("deny_address")  # the policy now (it may have been fixed)
        api = RuntimeApi(configured.socket if configured else str(planned.params["socket"]))
        map_name = configured.map if configured else str(planned.params["map"])
        expiry = float(planned.params.get("expiry") or 0)
        until = int(time.time() + expiry) if expiry else 0
        item.state.update({"socket": api.socket_path, "map": map_name})
        api.add_map(map_name, planned.resource_id, f"stackwatch:{until}")
        if planned.resource_id not in api.show_map(map_name):
            raise VerifyError(f"{planned.resource_id} is not in {map_name}")
        until_text = f" for {expiry:g}s" if expiry else ""
        return f"{planned.resource_id} denied by HAProxy ({map_name}){until_text}"

    # ------------------------------------------------------------------ undoing

    def undo(self, item: Applied, *, dry_run: bool = False, why: str = "undo") -> ActionResult:
        """Reverse an applied (or half-applied) action from its recorded state."""
        planned = PlannedAction(item.action, item.resource_type, item.resource_id, None, "undo", why)
        if dry_run:
            self._say(f"would {why} {item.action} {item.resource_type} {item.resource_id}")
            return ActionResult(planned, "planned", queue_id=item.queue_id)
        if item.applied_at is None and not item.state:  # cancelled or never started: nothing changed
            result = ActionResult(planned, "already_done", "nothing was applied", 0, item.queue_id)
            self._say(result.line())
            return result
        try:
            detail = getattr(self, "_undo_" + item.action)(item)
            assert self.ledger is not None
            self.ledger.undone(item)
            result = ActionResult(planned, "done", detail, 1, item.queue_id)
        except Exception as exc:  # reported; the recorded state stays for the next try
            result = ActionResult(planned, "failed", _brief(exc), 1, item.queue_id)
        self._record_undo(result, why)
        self._say(result.line())
        return result

    def _undo_disable_account(self, item: Applied) -> str:
        identity = self._conn().identity
        user_id = item.state.get("user_id")
        if user_id is None:  # stopped before it found the user: it changed nothing
            return "nothing was changed"
        if not item.state.get("was_enabled", True):
            return f"user {user_id} was disabled before: left disabled"
        identity.update_user(user_id, is_enabled=True)
        if not identity.get_user(user_id).is_enabled:
            raise VerifyError(f"user {user_id} is still disabled")
        return f"user {user_id} enabled again"

    def _undo_quarantine_instance(self, item: Applied) -> str:
        conn = self._conn()
        restored = []
        for port_id, groups in item.state.get("ports", {}).items():
            conn.network.update_port(port_id, security_group_ids=groups)
            if sorted(conn.network.get_port(port_id).security_group_ids or []) != sorted(groups):
                raise VerifyError(f"port {port_id} did not get its groups back")
            restored.append(port_id)
        server_id = item.state.get("server_id")
        unlocked = ""
        if item.state.get("locked") and not item.state.get("was_locked") and server_id:
            conn.compute.unlock_server(server_id)
            unlocked = ", server unlocked"
        return f"released: {len(restored)} port(s) have their security groups back{unlocked}"

    def _undo_deny_address(self, item: Applied) -> str:
        api = RuntimeApi(str(item.state.get("socket") or self.policy.get("deny_address").socket))
        map_name = str(item.state.get("map") or self.policy.get("deny_address").map)
        removed = api.del_map(map_name, item.resource_id)
        if item.resource_id in api.show_map(map_name):
            raise VerifyError(f"{item.resource_id} is still in {map_name}")
        return f"{item.resource_id} removed from {map_name}" + ("" if removed else " (was not there)")

    def expire(self, *, dry_run: bool = False, now: float | None = None) -> RunReport:
        """Undo every applied action whose expiry has passed."""
        assert self.ledger is not None
        report = RunReport(dry_run=dry_run)
        for item in self.ledger.expired(now):
            report.results.append(self.undo(item, dry_run=dry_run, why="expire"))
        return report

    def restore(self, *, now: float | None = None) -> list[ActionResult]:
        """Deny entries still in force that HAProxy no longer holds (a reload or restart reads
        the map file again and forgets runtime changes): added back, each an event
        (``response.restore_deny_address``). One ``show map`` per socket and map."""
        assert self.ledger is not None
        now = time.time() if now is None else now
        maps: dict[tuple[str, str], dict[str, str]] = {}
        results = []
        for item in self.ledger.active():
            if item.action != "deny_address" or (item.expires_at is not None and item.expires_at <= now):
                continue
            socket_path = str(item.state.get("socket") or self.policy.get("deny_address").socket)
            map_name = str(item.state.get("map") or self.policy.get("deny_address").map)
            api = RuntimeApi(socket_path)
            planned = PlannedAction(item.action, item.resource_type, item.resource_id, None, "restore",
                                    "HAProxy lost the entry")
            try:
                if (socket_path, map_name) not in maps:
                    maps[socket_path, map_name] = api.show_map(map_name)
                if item.resource_id in maps[socket_path, map_name]:
                    continue
                if not self._still_active(item.key):  # undone by another process since: leave it out
                    continue
                until = int(item.expires_at) if item.expires_at else 0
                api.add_map(map_name, item.resource_id, f"stackwatch:{until}")
                if item.resource_id not in api.show_map(map_name):
                    raise VerifyError(f"{item.resource_id} is not in {map_name}")
                if not self._still_active(item.key):  # an undo ran meanwhile: it wins
                    api.del_map(map_name, item.resource_id)
                    continue
                left = f" until {until}" if until else ""
                result = ActionResult(planned, "done", f"{item.resource_id} denied again by HAProxy"
                                      f" ({map_name}: the entry was lost, HAProxy reloaded?){left}", 1,
                                      item.queue_id)
            except Exception as exc:  # HAProxy down mid-restart: said, and tried again next pass
                result = ActionResult(planned, "failed", _brief(exc), 1, item.queue_id)
            self._record_undo(result, "restore")
            self._say(result.line())
            results.append(result)
        return results

    def _still_active(self, key: str) -> bool:
        assert self.ledger is not None
        fresh = self.ledger.get(key)
        return fresh is not None and fresh.active

    # ------------------------------------------------------------------ recording

    def refuse(self, refusals: Iterable[Refusal]) -> list[ActionResult]:
        """Refusals (allowlisted targets) as results and store events, once per alert and target."""
        out = []
        for refusal in refusals:
            kind = _KINDS[refusal.action]
            planned = PlannedAction(refusal.action, kind, refusal.target, None, "alert",
                                    alert_owner(refusal.alert), {"alert": refusal.alert.category})
            if self.ledger is not None and not self.ledger.refuse_once(planned.key + "@" + planned.owner_id):
                continue
            result = ActionResult(planned, "refused", refusal.reason)
            self._record(result)
            self._say(result.line())
            out.append(result)
        return out

    def _record_undo(self, result: ActionResult, why: str) -> None:
        if self.store is not None:
            event = self.event(result)
            event = replace(event, action=f"response.{why}_{result.planned.action}")
            self.store.append_events([event])
            self.store.flush()

    def ledger_save(self, item: Applied) -> None:
        if self.ledger is not None:
            self.ledger.save(item)

    def _conn(self) -> Any:
        if self.cloud is None:
            raise RuntimeError("no cloud to act on")
        return self.cloud.conn


def instance_ports(network: Any, address: str) -> list[Any]:
    """The ports of instances (owned by nova) that hold ``address``."""
    return [p for p in network.ports(fixed_ips=f"ip_address={address}")
            if (p.device_owner or "").startswith("compute:") and p.device_id]


def resolve_instance_side(planned: list[PlannedAction], cloud: Any,
                          out: TextIO | None = None) -> list[PlannedAction]:
    """quarantine_instance actions with several candidate addresses (an IDS alert's source and
    destination) get the one an instance's port holds as their target, so each victim of one
    attacker is its own action (its own key, approval and undo). One port lookup per address;
    when none holds it, or the API fails, the action stays as planned (the run cancels it)."""
    seen: dict[str, bool] = {}
    resolved = []
    for item in planned:
        also = list(item.params.get("also") or ())
        if item.action != "quarantine_instance" or not also:
            resolved.append(item)
            continue
        found = None
        for address in [item.resource_id, *also]:
            if address not in seen:
                try:
                    seen[address] = bool(instance_ports(cloud.conn.network, address))
                except Exception as exc:  # the API may be down: the run tries each address itself
                    if out is not None:
                        out.write(f"cannot look up the instance of {address}: {_brief(exc)}\n")
                    break
            if seen[address]:
                found = address
                break
        if found is None:
            resolved.append(item)
            continue
        params = {k: v for k, v in item.params.items() if k != "also"}
        resolved.append(PlannedAction(item.action, item.resource_type, found, item.resource_name,
                                      item.owner_kind, item.owner_id, params))
    unique: dict[str, PlannedAction] = {}
    for item in resolved:  # two alerts resolved to one victim: one action
        unique.setdefault(item.key, item)
    return list(unique.values())


class _Cancel(Exception):
    """Nothing to act on (the target is gone or allowlisted): cancelled, not failed."""


def _retryable(exc: BaseException) -> bool:
    try:
        return _transient(exc)
    except ImportError:  # no openstacksdk: only HAProxy actions, not retried within a run
        return False


def _partial(item: Applied, why: str) -> str:
    steps = [k for k in ("disabled", "quarantined", "locked") if item.state.get(k)]
    ports = item.state.get("ports") or {}
    if steps or ports:
        return f"partial ({', '.join(steps) or f'{len(ports)} port(s) recorded'}): {why}"
    return why


def make_executor(cloud: Any, policy: CountermeasurePolicy, ledger: AppliedLedger | None, *,
                  store: EventLog | None = None, queue: Any = None, out: TextIO | None = sys.stdout,
                  actor: str = "stackwatch", retries: int = 3, retry_delay: float = 2.0,
                  own: set[str] | None = None,
                  sleep: Callable[[float], None] = time.sleep) -> CountermeasureExecutor:
    return CountermeasureExecutor(cloud, ledger=ledger, policy=policy, own=own, store=store, queue=queue,
                                  out=out, actor=actor, retries=retries, retry_delay=retry_delay, sleep=sleep)
