"""Countermeasures: responses to an alert (not to an orphan), by policy, and the plan they give.

The ``countermeasures:`` part of the response policy (``respond:`` section) names, per action,
the alert categories that trigger it and whether it acts (``mode: act``) or only reports
(``mode: report``, the default: nothing is queued, nothing changes)::

    respond:
      approval: true              # as for orphans: every action waits for `respond approve`
      grace: 0                    # ... and runs this long after it was planned
      countermeasures:
        disable_account:          # keystone: enabled=false (which revokes the user's tokens)
          mode: act
          on: [auth.success_after_failures, auth.targeted_account]
          allowlist: [admin, nova, neutron, glance, cinder, placement]   # names or ids: never
          expiry: 0               # 0: disabled until `respond undo`
        quarantine_instance:      # neutron: the instance's ports get only the quarantine group
          mode: act
          on: [malware.detected, ids.alert]
          group: stackwatch-quarantine
          lock: true              # nova lock, so the owner cannot undo it
          side: instance          # or source / destination (see SIDES)
        deny_address:             # HAProxy's deny map in front of the APIs
          mode: act
          on: [auth.bruteforce, auth.spraying]
          socket: /run/haproxy/admin.sock
          map: /etc/haproxy/stackwatch-deny.map
          expiry: 1h
          allowlist: [10.0.0.0/8]  # management networks; the monitor's own addresses always

A planned countermeasure is a ``PlannedAction`` whose owner is the alert (``alert``, its rule
and key), so it goes through the same approval queue, CLI, API and dashboard as the orphan
actions. An alert whose target is allowlisted gives a *refusal* instead (an event in the store).
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from stackwatch.core.alert import Alert
from stackwatch.core.errors import ConfigError

ACTIONS: Final = ("disable_account", "quarantine_instance", "deny_address")
NEEDS_CLOUD: Final = ("disable_account", "quarantine_instance")
"""The actions that act through the OpenStack APIs (deny_address needs only HAProxy's socket)."""
MODES: Final = ("report", "act")
OWNER_KIND: Final = "alert"
DEFAULT_ACCOUNT_ALLOWLIST: Final = (
    "admin", "keystone", "nova", "neutron", "glance", "cinder", "placement", "swift", "heat", "octavia",
    "barbican", "designate", "manila", "ironic", "aodh", "gnocchi", "ceilometer", "stackwatch",
)
"""Service users and the admin break-glass account: a policy that lists its own allowlist
replaces this one (that is how it says the admin account may be disabled)."""
_COMMON_KEYS: Final = ("mode", "on", "expiry")
_KEYS: Final = {
    "disable_account": (*_COMMON_KEYS, "allowlist"),
    "quarantine_instance": (*_COMMON_KEYS, "group", "lock", "side"),
    "deny_address": (*_COMMON_KEYS, "socket", "map", "allowlist"),
}
_DEFAULT_ON: Final = {
    "disable_account": ("auth.success_after_failures", "auth.targeted_account"),
    "quarantine_instance": ("malware.detected", "ids.alert"),
    "deny_address": ("auth.bruteforce", "auth.spraying"),
}
_ADDRESS_DETAILS: Final = ("dest_ip", "address", "instance_ip")
SIDES: Final = ("instance", "source", "destination")
"""Which address of an alert quarantine_instance targets: ``instance`` (default) the one an
instance's port holds (source first, then the destination and other addresses in the details,
looked up in the cloud when the pass has one); ``source`` the alert's source only;
``destination`` its ``details.dest_ip`` only (the victim of an inbound attack)."""


@dataclass(frozen=True, slots=True)
class ActionPolicy:
    action: str
    mode: str = "report"
    on: tuple[str, ...] = ()
    expiry: float = 0.0  # seconds; 0: until undone
    allowlist: tuple[str, ...] = ()
    group: str = "stackwatch-quarantine"
    lock: bool = True
    side: str = "instance"
    socket: str = "/run/haproxy/admin.sock"
    map: str = "/etc/haproxy/stackwatch-deny.map"

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(item, strict=False) for item in self.allowlist]


@dataclass(frozen=True, slots=True)
class Refusal:
    """A countermeasure the policy asked for but an allowlist forbids."""

    action: str
    target: str
    alert: Alert
    reason: str


@dataclass(frozen=True, slots=True)
class CountermeasurePolicy:
    actions: dict[str, ActionPolicy] = field(default_factory=dict)

    @property
    def report_only(self) -> bool:
        return all(p.mode == "report" for p in self.actions.values())

    def without_cloud(self) -> tuple[CountermeasurePolicy, list[str]]:
        """This policy with the acting cloud actions turned to report, and their names: what
        runs where no cloud is configured (serve without ``respond.cloud``)."""
        skipped = sorted(a for a, p in self.actions.items() if p.mode == "act" and a in NEEDS_CLOUD)
        actions = {a: dataclasses.replace(p, mode="report") if a in skipped else p
                   for a, p in self.actions.items()}
        return CountermeasurePolicy(actions), skipped

    def get(self, action: str) -> ActionPolicy:
        return self.actions.get(action) or default_action_policy(action)

    @classmethod
    def from_mapping(cls, data: Any, path: str | None = None) -> CountermeasurePolicy:
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError("respond.countermeasures must be a mapping of actions", path)
        actions = {}
        for action, settings in data.items():
            where = f"respond.countermeasures.{action}"
            if action not in ACTIONS:
                raise ConfigError(f"unknown countermeasure {action!r}; expected one of {', '.join(ACTIONS)}",
                                  path, _key_line(data, action), where)
            actions[action] = _action_policy(action, settings or {}, path, where)
        return cls(actions)


def default_action_policy(action: str) -> ActionPolicy:
    allow = DEFAULT_ACCOUNT_ALLOWLIST if action == "disable_account" else ()
    return ActionPolicy(action, on=_DEFAULT_ON[action], allowlist=allow)


def _action_policy(action: str, data: Any, path: str | None, where: str) -> ActionPolicy:
    from stackwatch.respond.policy import parse_duration

    if not isinstance(data, Mapping):
        raise ConfigError("must be a mapping", path, None, where)
    base = default_action_policy(action)
    values: dict[str, Any] = {}
    for raw_key, value in data.items():
        line = _key_line(data, raw_key)
        # YAML 1.1 reads a bare `on:` key as true (the loader turns it into "True")
        key = "on" if raw_key is True or raw_key == "True" else raw_key
        if key not in _KEYS[action]:
            raise ConfigError(f"unknown setting {key!r}; expected one of {', '.join(_KEYS[action])}",
                              path, line, f"{where}.{key}")
        try:
            values[key] = _value(action, key, value, parse_duration)
        except ValueError as exc:
            raise ConfigError(str(exc), path, line, f"{where}.{key}") from None
    return ActionPolicy(action, **{**_fields(base), **values})


def _key_line(data: Any, key: str) -> int | None:
    """The line of ``key`` when the mapping comes from the YAML loader (a LocDict)."""
    key_line = getattr(data, "key_line", None)
    return (key_line(key) or None) if callable(key_line) else None


def _fields(policy: ActionPolicy) -> dict[str, Any]:
    return {name: getattr(policy, name) for name in policy.__slots__ if name != "action"}  # type: ignore[attr-defined]


def _value(action: str, key: str, value: Any, parse_duration: Any) -> Any:
    if key == "mode":
        if value not in MODES:
            raise ValueError(f"must be one of {', '.join(MODES)}, got {value!r}")
        return value
    if key in ("on", "allowlist"):
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() for i in items):
            raise ValueError(f"must be a list of names, got {value!r}")
        if key == "allowlist" and action == "deny_address":
            for item in items:
                ipaddress.ip_network(item, strict=False)  # ValueError names the bad one
        return tuple(i.strip() for i in items)
    if key == "expiry":
        return parse_duration(value)
    if key == "side":
        if value not in SIDES:
            raise ValueError(f"must be one of {', '.join(SIDES)}, got {value!r}")
        return value
    if key == "lock":
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {value!r}")
        return value
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value.strip()):
        raise ValueError(f"must be a name without spaces, got {value!r}")
    return value.strip()


# ---------------------------------------------------------------------------- planning


def own_addresses() -> set[str]:
    """The monitor's own addresses (never denied): loopback and what its host name resolves to."""
    found = {"127.0.0.1", "::1"}
    with contextlib.suppress(OSError):
        found.update(socket.gethostbyname_ex(socket.gethostname())[2])
    return found


def alert_owner(alert: Alert) -> str:
    """The owner id of a countermeasure: the alert's identity (rule and grouping key)."""
    return f"{alert.rule}:{alert.key or alert.time.isoformat()}"


def alert_addresses(alert: Alert) -> list[str]:
    """The addresses an alert names: its source first, then those in its details."""
    found: list[str] = []
    for value in (alert.source_ip, *(alert.details.get(k) for k in _ADDRESS_DETAILS)):
        if isinstance(value, str) and _is_address(value) and value not in found:
            found.append(value)
    return found


def quarantine_candidates(alert: Alert, side: str = "instance") -> list[str]:
    """The addresses quarantine_instance may target, in the order they are tried (see SIDES)."""
    if side == "source":
        chosen: Any = alert.source_ip
    elif side == "destination":
        chosen = alert.details.get("dest_ip")
    else:
        return alert_addresses(alert)
    return [chosen] if isinstance(chosen, str) and _is_address(chosen) else []


def alert_address(alert: Alert) -> str | None:
    addresses = alert_addresses(alert)
    return addresses[0] if addresses else None


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def plan_countermeasures(policy: CountermeasurePolicy, alerts: Iterable[Alert], *,
                         own: set[str] | None = None) -> tuple[list[Any], list[Refusal]]:
    """Planned actions (``mode: act`` only) and refusals for the open alerts given."""
    from stackwatch.respond.policy import PlannedAction

    own = own_addresses() if own is None else own
    planned: dict[str, PlannedAction] = {}
    refused: list[Refusal] = []
    for alert in alerts:
        if alert.status != "open":
            continue
        for action, rules in policy.actions.items():
            if rules.mode != "act" or alert.category not in rules.on:
                continue
            target, kind, params, why = _target(action, rules, alert, own)
            if target is None:
                continue
            if why:
                refused.append(Refusal(action, target, alert, why))
                continue
            params["alert"] = alert.category
            if rules.expiry:
                params["expiry"] = rules.expiry
            item = PlannedAction(action, kind, target, None, OWNER_KIND, alert_owner(alert), params)
            # candidates of a quarantine count too: one attacker, two victims are two actions
            # once the pass finds which address is the instance (counter_exec.resolve_instance_side)
            planned.setdefault("|".join([item.key, *params.get("also", ())]), item)
    return list(planned.values()), refused


def _target(action: str, rules: ActionPolicy, alert: Alert,
            own: set[str]) -> tuple[str | None, str, dict[str, Any], str]:
    """(target, resource type, params, refusal reason or "")."""
    if action == "disable_account":
        user = alert.user
        if not user:
            return None, "user", {}, ""
        allowed = {a.lower() for a in rules.allowlist}
        why = f"account {user} is in the allowlist" if user.lower() in allowed else ""
        return user, "user", {}, why
    if action == "quarantine_instance":
        candidates = quarantine_candidates(alert, rules.side)
        if not candidates:
            return None, "", {}, ""
        params: dict[str, Any] = {"group": rules.group, "lock": rules.lock}
        if candidates[1:]:  # the instance may be either end: each address is tried
            params["also"] = candidates[1:]
        return candidates[0], "instance_address", params, ""
    address = alert_address(alert)
    if address is None:
        return None, "", {}, ""
    ip = ipaddress.ip_address(address)
    why = ""
    if address in own:
        why = f"{address} is the monitor's own address"
    elif any(ip in net for net in rules.networks()):
        why = f"{address} is in the allowlist"
    return address, "address", {"socket": rules.socket, "map": rules.map}, why
