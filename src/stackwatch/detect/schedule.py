"""Maintenance windows: recurring (cron-like) and one-off intervals per host group and
service. A rule with ``outside_maintenance: true`` fires only when no window covers the
event's host and service; without windows every event fires.

Config shape (YAML or dict)::

    host_groups:
      computes: ["cmp-*", "compute*"]
    windows:
      - name: weekly patching
        cron: "0 2 * * sat"       # minute hour day-of-month month day-of-week
        duration: 2h
        timezone: Europe/Paris     # optional, default UTC
        hosts: ["@computes"]       # globs or @group; empty = every host
        services: ["nova-*"]       # globs; empty = every service
      - name: keystone upgrade
        start: "2026-01-10T20:00:00Z"
        end: "2026-01-10T23:00:00Z"
        hosts: [ctl1]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from fnmatch import fnmatchcase
from typing import Any, Final
from zoneinfo import ZoneInfo

from stackwatch.core.errors import ConfigError
from stackwatch.detect.model import parse_duration

_MONTHS: Final = {n: i for i, n in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}
_DAYS: Final = {n: i for i, n in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_CronRange = tuple[int, int, dict[str, int]]
_RANGES: Final[tuple[_CronRange, ...]] = (
    (0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, _MONTHS), (0, 7, _DAYS))


def _cron_field(text: str, low: int, high: int, names: dict[str, int]) -> tuple[frozenset[int], bool]:
    """Values of one cron field, and whether it is restricted (not ``*``)."""
    values: set[int] = set()
    for part in text.lower().split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"bad step in {part!r}")
        if body == "*":
            first, last = low, high
        else:
            a, _, b = body.partition("-")
            first = names[a] if a in names else int(a)
            last = (names[b] if b in names else int(b)) if b else (high if step_text else first)
        if not low <= first <= last <= high:
            raise ValueError(f"{part!r} out of range {low}-{high}")
        values.update(range(first, last + 1, step))
    return frozenset(values), text != "*"


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        parts = text.split()
        if len(parts) != 5:
            raise ValueError("a cron expression has 5 fields: minute hour day month weekday")
        fields = [_cron_field(p, lo, hi, names) for p, (lo, hi, names) in zip(parts, _RANGES, strict=True)]
        weekdays = frozenset(d % 7 for d in fields[4][0])
        return cls(fields[0][0], fields[1][0], fields[2][0], fields[3][0], weekdays,
                   fields[2][1], fields[4][1])

    def day_matches(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.weekday() + 1) % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow  # cron's rule: either restricted day field may match
        return dom and dow

    def latest_start(self, at: datetime, horizon: timedelta) -> datetime | None:
        """The latest start time <= ``at`` no older than ``horizon`` (None when none)."""
        hours = sorted(self.hours, reverse=True)
        minutes = sorted(self.minutes, reverse=True)
        day = at.replace(hour=0, minute=0, second=0, microsecond=0)
        for _ in range(int(horizon.total_seconds() // 86400) + 2):
            if self.day_matches(day):
                for hour in hours:
                    for minute in minutes:
                        start = day.replace(hour=hour, minute=minute)
                        if start <= at:
                            return start if at - start <= horizon else None
            day -= timedelta(days=1)
            if at - day > horizon + timedelta(days=1):
                break
        return None


@dataclass(frozen=True)
class Window:
    name: str
    hosts: tuple[str, ...] = ()  # globs (groups already expanded); empty = every host
    services: tuple[str, ...] = ()
    cron: Cron | None = None
    duration: timedelta = timedelta(0)
    tz: tzinfo = UTC
    start: datetime | None = None  # one-off interval
    end: datetime | None = None

    def covers(self, when: datetime, host: str, services: Iterable[str]) -> bool:
        if self.hosts and not any(fnmatchcase(host, g) for g in self.hosts):
            return False
        if self.services and not any(fnmatchcase(s, g) for s in services if s for g in self.services):
            return False
        if self.start is not None and self.end is not None:
            return self.start <= when < self.end
        if self.cron is not None:
            local = when.astimezone(self.tz)
            start = self.cron.latest_start(local, self.duration)
            return start is not None and local - start < self.duration
        return False


class MaintenanceSchedule:
    """The set of maintenance windows; ``active`` answers "is this covered now?"."""

    def __init__(self, windows: Iterable[Window] = ()) -> None:
        self.windows = tuple(windows)

    def __bool__(self) -> bool:
        return bool(self.windows)

    def active(self, when: datetime, host: str, services: Iterable[str]) -> str | None:
        """Name of the first window covering (when, host, any of services), else None."""
        services = tuple(services)
        for window in self.windows:
            if window.covers(when, host, services):
                return window.name
        return None

    @classmethod
    def from_config(cls, data: Any, file: str = "") -> MaintenanceSchedule:
        """Build from ``{host_groups: {...}, windows: [...]}`` or a bare list of windows."""
        if data is None:
            return cls()
        if isinstance(data, list):
            data = {"windows": data}
        if not isinstance(data, dict):
            raise ConfigError("maintenance must be a mapping or a list of windows", file)
        groups = data.get("host_groups") or {}
        windows = [_window(item, groups, file, i) for i, item in enumerate(data.get("windows") or [])]
        return cls(windows)


def _when(value: Any, file: str, where: str) -> datetime:
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"bad time {value!r} (ISO 8601 expected)", file, None, where) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _window(item: Any, groups: dict[str, list[str]], file: str, index: int) -> Window:
    where = f"windows[{index}]"
    line = getattr(item, "line", None)
    if not isinstance(item, dict):
        raise ConfigError("a window is a mapping", file, line, where)
    known = {"name", "cron", "duration", "timezone", "start", "end", "hosts", "services"}
    for key in item:
        if key not in known:
            raise ConfigError(f"unknown field {key!r} (known: {', '.join(sorted(known))})", file, line, where)
    hosts: list[str] = []
    for entry in item.get("hosts") or []:
        entry = str(entry)
        name = entry[1:] if entry.startswith("@") else entry
        if name in groups:
            hosts.extend(str(g) for g in groups[name])
        elif entry.startswith("@"):
            raise ConfigError(f"unknown host group {name!r}", file, line, where)
        else:
            hosts.append(entry)
    services = tuple(str(s) for s in item.get("services") or [])
    name = str(item.get("name", where))
    try:
        if "cron" in item:
            if "duration" not in item:
                raise ConfigError("a cron window needs a duration", file, line, where)
            tz = ZoneInfo(str(item["timezone"])) if item.get("timezone") else UTC
            seconds = parse_duration(item["duration"], file, line, "duration")
            return Window(name, tuple(hosts), services, cron=Cron.parse(str(item["cron"])),
                          duration=timedelta(seconds=seconds), tz=tz)
        if "start" in item and "end" in item:
            start, end = _when(item["start"], file, where), _when(item["end"], file, where)
            if end <= start:
                raise ConfigError("end must be after start", file, line, where)
            return Window(name, tuple(hosts), services, start=start, end=end)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"bad window: {exc}", file, line, where) from None
    raise ConfigError("a window needs cron + duration, or start + end", file, line, where)
