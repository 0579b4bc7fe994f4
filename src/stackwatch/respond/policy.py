"""What to do about orphaned resources, per resource type, and the plan it gives.

The default is to report only. A policy (the ``respond:`` section of the config, or a file of
its own) may instead::

    respond:
      instances: terminate        # report | terminate
      snapshot: true              # snapshot an instance before terminating it
      volumes: delete             # report | detach (= keep: detach, keep the volume) | delete
      floating_ips: release       # report | disassociate | release
      ports: delete               # report | delete
      grace: 24h                  # wait this long after an orphan is found (s, m, h, d)
      approval: true              # every action waits for `stackwatch respond approve`
      owners: [project, domain]   # which deletions lead to actions (add `user` to include them)
      retries: 3                  # API errors (5xx, connection) retried per action
      retry_delay: 2              # seconds, doubled per retry

A plan is ordered so that it never fights itself: snapshot, terminate, floating IPs, volumes
(detach, then delete), ports.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from stackwatch.core.errors import ConfigError, LocatedError
from stackwatch.respond.orphans import Orphan

CHOICES: Final = {
    "instances": ("report", "terminate"),
    "volumes": ("report", "detach", "keep", "delete"),
    "floating_ips": ("report", "disassociate", "release"),
    "ports": ("report", "delete"),
}
OWNER_KINDS: Final = ("project", "user", "domain")
STEPS: Final = {
    "snapshot_instance": 10,
    "terminate_instance": 20,
    "disassociate_floating_ip": 30,
    "release_floating_ip": 35,
    "detach_volume": 40,
    "delete_volume": 50,
    "delete_port": 60,
    # countermeasures (respond/countermeasures.py): one step each, owned by the alert
    "disable_account": 70,
    "quarantine_instance": 80,
    "deny_address": 90,
}
"""Every action the executor knows, with its place in a plan."""
_KEYS: Final = (*CHOICES, "snapshot", "grace", "approval", "owners", "retries", "retry_delay", "cloud",
                "sweep_interval", "countermeasures", "countermeasure_interval")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class PlannedAction:
    """One step of a plan: an action on one resource of one gone owner."""

    action: str  # a key of STEPS
    resource_type: str
    resource_id: str
    resource_name: str | None
    owner_kind: str
    owner_id: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def step(self) -> int:
        return STEPS[self.action]

    @property
    def key(self) -> str:
        """Identity of the action: planning the same thing twice gives the same key."""
        return f"{self.action}:{self.resource_type}:{self.resource_id}"

    def describe(self) -> str:
        name = f" ({self.resource_name})" if self.resource_name else ""
        extra = "".join(f" {k}={v}" for k, v in sorted(self.params.items()))
        why = f"{self.owner_kind} {self.owner_id}" + (" is gone" if self.owner_kind in OWNER_KINDS else "")
        return f"{self.action} {self.resource_type} {self.resource_id}{name}{extra} [{why}]"


@dataclass(frozen=True, slots=True)
class ResponsePolicy:
    instances: str = "report"
    snapshot: bool = False
    volumes: str = "report"
    floating_ips: str = "report"
    ports: str = "report"
    grace: float = 86400.0
    approval: bool = True
    owners: tuple[str, ...] = ("project", "domain")
    retries: int = 3
    retry_delay: float = 2.0
    cloud: str | None = None  # clouds.yaml entry `serve` sweeps with; None: no periodic sweep in serve
    sweep_interval: float = 3600.0  # how often `serve` reconciles (catches missed deletions)
    countermeasures: Any = None  # CountermeasurePolicy (respond/countermeasures.py); None: report only
    countermeasure_interval: float = 60.0  # how often `serve` runs the countermeasure pass (no cloud needed)

    @property
    def report_only(self) -> bool:
        return all(getattr(self, name) == "report" for name in CHOICES)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, path: str | None = None) -> ResponsePolicy:
        """A policy from a config mapping (a LocDict from the YAML loader gives line numbers).
        A mapping with a ``respond`` key is taken as the whole config file."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError("the response policy must be a mapping", path, _line(data))
        if "respond" in data:
            return cls.from_mapping(data["respond"], path)
        values: dict[str, Any] = {}
        for key, value in data.items():
            line = _key_line(data, key)
            if key not in _KEYS:
                raise ConfigError(f"unknown setting {key!r}; expected one of {', '.join(_KEYS)}", path, line,
                                  f"respond.{key}")
            values[key] = _value(key, value, path, line)
        return cls(**values)

    def plan(self, orphan: Orphan) -> list[PlannedAction]:
        """The ordered actions for one confirmed orphan (empty when reporting only, or when this
        kind of owner does not lead to actions)."""
        if orphan.owner_kind not in self.owners:
            return []
        out: list[PlannedAction] = []

        def add(action: str, resource: Any, **params: Any) -> None:
            if orphan.owner_kind != "project" and resource.project:
                params["project"] = resource.project  # re-checked before acting
            out.append(PlannedAction(action, resource.type, resource.id, resource.name, orphan.owner_kind,
                                     orphan.owner_id, params))

        for r in orphan.resources:
            if r.type == "instance" and self.instances == "terminate":
                if self.snapshot:
                    add("snapshot_instance", r, image_name=f"stackwatch-orphan-{r.id}")
                add("terminate_instance", r)
            elif r.type == "floatingip" and self.floating_ips != "report":
                add("disassociate_floating_ip" if self.floating_ips == "disassociate" else
                    "release_floating_ip", r)
            elif r.type == "volume" and self.volumes != "report":
                add("detach_volume", r)
                if self.volumes == "delete":
                    add("delete_volume", r)
            elif r.type == "port" and self.ports == "delete":
                if str(r.extra.get("device_owner", "")).startswith("network:"):
                    continue  # router/DHCP ports belong to neutron's own lifecycle
                add("delete_port", r)
        out.sort(key=lambda a: a.step)
        return out


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"90s"``, ``"30m"``, ``"24h"``, ``"2d"``."""
    if isinstance(value, bool):
        raise ValueError("a duration, not a boolean")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"not a duration: {value!r} (use e.g. 90, 30m, 24h, 2d)")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def _value(key: str, value: Any, path: str | None, line: int | None) -> Any:
    where = f"respond.{key}"
    if key in CHOICES:
        if value not in CHOICES[key]:
            raise ConfigError(f"must be one of {', '.join(CHOICES[key])}, got {value!r}", path, line, where)
        return "detach" if value == "keep" else value
    if key in ("snapshot", "approval"):
        if not isinstance(value, bool):
            raise ConfigError(f"must be true or false, got {value!r}", path, line, where)
        return value
    if key == "countermeasures":
        from stackwatch.respond.countermeasures import CountermeasurePolicy

        return CountermeasurePolicy.from_mapping(value, path)
    if key == "cloud":
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"must name a clouds.yaml entry, got {value!r}", path, line, where)
        return value.strip()
    if key == "sweep_interval":
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise ConfigError(str(exc), path, line, where) from None
        if seconds < 60:
            raise ConfigError("must be at least 60s (each sweep lists every project, user and domain)",
                              path, line, where)
        return seconds
    if key == "countermeasure_interval":
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise ConfigError(str(exc), path, line, where) from None
        if seconds < 1:
            raise ConfigError("must be at least 1s", path, line, where)
        return seconds
    if key in ("grace", "retry_delay"):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ConfigError(str(exc), path, line, where) from None
    if key == "retries":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 20:
            raise ConfigError(f"must be a whole number from 0 to 20, got {value!r}", path, line, where)
        return value
    # owners
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or any(item not in OWNER_KINDS for item in items):
        raise ConfigError(f"must list some of {', '.join(OWNER_KINDS)}, got {value!r}", path, line, where)
    return tuple(dict.fromkeys(items))


def _line(value: Any) -> int | None:
    return getattr(value, "line", None) or None


def _key_line(data: Mapping[str, Any], key: str) -> int | None:
    key_line = getattr(data, "key_line", None)
    return (key_line(key) or None) if callable(key_line) else None


def load_policy(path: str | None) -> ResponsePolicy:
    """The policy in a YAML file (its ``respond:`` section, or the whole file); the default
    (report only) without a file. Errors carry file:line."""
    if path is None:
        return ResponsePolicy()
    from stackwatch.detect.yaml_locations import load_yaml

    try:
        with open(path, encoding="utf-8") as handle:
            data = load_yaml(handle.read(), path)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path) from None
    except LocatedError as exc:
        raise ConfigError(exc.reason, path, exc.line, exc.field) from None
    return ResponsePolicy.from_mapping(data, path)
