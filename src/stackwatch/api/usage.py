"""Cloud usage per project: what each project created (instances, volumes, snapshots, images,
floating IPs, ports) over time, what it still has, and which projects moved most.

The creation and deletion notifications of the range are read from the store (bounded per
action) and replayed, in time order, through the orphan detector's resource ledger
(``respond.ledger.Ledger``): the same per-project tracking that names what a deleted project
left behind gives the inventory here ("alive" = created in the range and not deleted since).
Creations are counted per project, resource type and time bucket.

Top movers: each project's creations in the last quarter of the range against its own rate
over the three quarters before (both + 1, so a project that never created anything and now
creates 30 ranks high, one that goes from 200 to 210 does not).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from stackwatch.core.event import Event
from stackwatch.respond.ledger import Ledger
from stackwatch.store.base import MAX_LIMIT, AlertQuery, EventQuery, Store

CREATIONS: Final = {
    "compute.instance.create.end": "instance",
    "instance.create.end": "instance",
    "volume.create.end": "volume",
    "snapshot.create.end": "snapshot",
    "image.create": "image",
    "floatingip.create.end": "floatingip",
    "port.create.end": "port",
}
"""Creation notifications counted, and the resource type each creates."""
DELETIONS: Final = ("compute.instance.delete.end", "instance.delete.end", "volume.delete.end",
                    "floatingip.delete.end", "port.delete.end", "image.delete")
TYPES: Final = ("instance", "volume", "snapshot", "image", "floatingip", "port")
MAX_EVENTS: Final = 200_000
"""Most notifications of one action a report reads (the API)."""
PAGE_EVENTS: Final = 20_000
"""Most the dashboard page reads per action (the newest are kept when there are more)."""
TARGET_BUCKETS: Final = 48
BUCKET_STEPS: Final = (300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
TOP_MOVERS: Final = 10
UNKNOWN: Final = "(unknown)"


@dataclass(slots=True)
class ProjectUsage:
    project: str
    created: Counter[str] = field(default_factory=Counter)  # per type, in the range
    alive: Counter[str] = field(default_factory=Counter)  # per type, at the end of the range
    buckets: list[int] = field(default_factory=list)  # creations of every type per bucket
    by_type: dict[str, list[int]] = field(default_factory=dict)  # type -> creations per bucket
    recent: int = 0  # creations in the last quarter of the range
    earlier_rate: float = 0.0  # creations per quarter before it
    alerts: int = 0  # usage.anomaly alerts naming the project

    @property
    def total(self) -> int:
        return sum(self.created.values())

    @property
    def ratio(self) -> float:
        return (self.recent + 1) / (self.earlier_rate + 1)


@dataclass(slots=True)
class UsageReport:
    start: datetime | None
    step: int  # seconds per bucket
    times: list[datetime]
    projects: list[ProjectUsage]
    movers: list[ProjectUsage]
    totals: dict[str, list[int]]  # type -> creations per bucket, every project
    events: int  # notifications read
    truncated: bool  # some action had more than the limit

    def project(self, project: str) -> ProjectUsage | None:
        return next((p for p in self.projects if p.project == project), None)


def _read(store: Store, action: str, since: datetime | None, until: datetime | None,
          limit: int) -> tuple[list[Event], bool]:
    """The newest ``limit`` events of ``action`` in the range, oldest first; True when cut."""
    out: list[Event] = []
    offset = 0
    while len(out) < limit:
        size = min(MAX_LIMIT, limit - len(out))
        page = store.search_events(EventQuery(action=action, since=since, until=until, limit=size,
                                              offset=offset, newest_first=True))
        out.extend(stored.event for stored in page)
        if len(page) < size:
            out.reverse()
            return out, False
        offset += len(page)
    out.reverse()
    return out, True


def _step(span: float) -> int:
    for step in BUCKET_STEPS:
        if span / step <= TARGET_BUCKETS:
            return step
    return BUCKET_STEPS[-1]


def usage_report(store: Store, *, since: datetime | None = None, until: datetime | None = None,
                 max_events: int = MAX_EVENTS) -> UsageReport:
    streams: list[list[Event]] = []
    truncated = False
    for action in (*CREATIONS, *DELETIONS):
        events, cut = _read(store, action, since, until, max_events)
        truncated = truncated or cut
        if events:
            streams.append(events)
    merged: Iterator[Event] = heapq.merge(*streams, key=lambda e: e.time)
    ledger = Ledger()
    created: list[tuple[datetime, str, str]] = []  # (time, project, type)
    count = 0
    for event in merged:
        count += 1
        ledger.apply(event)
        kind = CREATIONS.get(event.action or "")
        if kind is not None and event.outcome != "failure":
            created.append((event.time, _project(event), kind))
    return _summarise(created, ledger, since, until, count, truncated, store)


def _project(event: Event) -> str:
    if event.initiator.project:
        return event.initiator.project
    payload = event.attrs.get("payload")
    owner = payload.get("owner") or payload.get("project_id") if isinstance(payload, dict) else None
    return str(owner) if owner else UNKNOWN


def _summarise(created: Sequence[tuple[datetime, str, str]], ledger: Ledger, since: datetime | None,
               until: datetime | None, count: int, truncated: bool, store: Store) -> UsageReport:
    first = since or (created[0][0] if created else None)
    last = until or (created[-1][0] if created else None)
    if first is None or last is None:
        return UsageReport(None, 3600, [], [], [], {t: [] for t in TYPES}, count, truncated)
    step = _step(max((last - first).total_seconds(), 1.0))
    origin = datetime.fromtimestamp(first.timestamp() // step * step, first.tzinfo)
    size = int((last - origin).total_seconds() // step) + 1
    times = [origin + timedelta(seconds=i * step) for i in range(size)]
    projects: dict[str, ProjectUsage] = {}
    totals = {t: [0] * size for t in TYPES}
    quarter = first + (last - first) * 0.75
    for when, project, kind in created:
        usage = projects.get(project)
        if usage is None:
            usage = projects[project] = ProjectUsage(project, buckets=[0] * size)
        index = min(size - 1, max(0, int((when - origin).total_seconds() // step)))
        usage.created[kind] += 1
        usage.buckets[index] += 1
        usage.by_type.setdefault(kind, [0] * size)[index] += 1
        totals[kind][index] += 1
        if when >= quarter:
            usage.recent += 1
    for resource in ledger:
        usage = projects.get(resource.project or UNKNOWN)
        if usage is not None:
            usage.alive[resource.type] += 1
    for usage in projects.values():
        usage.earlier_rate = (usage.total - usage.recent) / 3
    for stored in store.alerts(AlertQuery(category="usage.anomaly", since=since, until=until, limit=1000,
                                          with_evidence=False)):
        usage = projects.get(stored.alert.project or "")
        if usage is not None:
            usage.alerts += 1
    ranked = sorted(projects.values(), key=lambda p: (-p.total, p.project))
    movers = sorted((p for p in ranked if p.recent), key=lambda p: (-p.ratio, -p.recent, p.project))
    return UsageReport(origin, step, times, ranked, movers[:TOP_MOVERS], totals, count, truncated)


def project_row(usage: ProjectUsage) -> dict[str, Any]:
    return {"project": usage.project, "created": dict(usage.created), "alive": dict(usage.alive),
            "total": usage.total, "recent": usage.recent, "earlier_per_quarter": round(usage.earlier_rate, 2),
            "ratio": round(usage.ratio, 2), "alerts": usage.alerts}


def report_dict(report: UsageReport, timelines: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "start": report.start.isoformat() if report.start else None,
        "bucket_seconds": report.step,
        "events": report.events,
        "truncated": report.truncated,
        "movers": [project_row(p) for p in report.movers],
        "projects": [project_row(p) for p in report.projects],
    }
    if timelines:
        out["timeline"] = {"times": [t.isoformat() for t in report.times], "created": report.totals}
    return out
