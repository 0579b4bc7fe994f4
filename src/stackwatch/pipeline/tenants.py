"""Detection partitioned by tenant: events from tenants' own instances (sources/tenant_syslog.py,
``attrs.tenant_project``) run through an engine of their project's own, never through the
infrastructure's, so one project's records and another's (or the nodes') never share a
window, and every alert they raise is the project's: ``project`` set, the key and host under
``tenant/<project>``, which keeps it out of the infrastructure's views and in the project's.

Same interface as the engine it wraps (``process``, ``tick``, ``finish``, ``alerts``, ``created``;
anything else is the infrastructure engine's). Bounded: past ``max_projects`` engines the least recently
used project's is dropped (its open windows start again on its next record).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from stackwatch.core.alert import Alert
from stackwatch.core.event import Event
from stackwatch.core.types import DetectionEngine
from stackwatch.store.scope import TENANT_ATTR, TENANT_HOST_PREFIX

if TYPE_CHECKING:
    from stackwatch.detect.engine import EngineStats

MAX_PROJECTS: Final = 1000


class TenantPartitionedEngine:
    def __init__(self, main: DetectionEngine, make_engine: Callable[[], DetectionEngine], *,
                 max_projects: int = MAX_PROJECTS) -> None:
        self.main = main
        self.make_engine = make_engine
        self.max_projects = max_projects
        self.engines: OrderedDict[str, DetectionEngine] = OrderedDict()
        self.dropped = 0

    def process(self, event: Event) -> list[Alert]:
        project = event.attrs.get(TENANT_ATTR) if event.attrs else None
        if not project:
            return self.main.process(event)
        return claim(self._engine(str(project)).process(event), str(project))

    def tick(self, now: datetime | None = None) -> list[Alert]:
        out: list[Alert] = list(self.main.tick(now))
        for project, engine in self.engines.items():
            out += claim(engine.tick(now), project)
        return out

    def finish(self) -> list[Alert]:
        out: list[Alert] = list(self.main.finish())
        for project, engine in self.engines.items():
            out += claim(engine.finish(), project)
        return out

    def alerts(self) -> list[Alert]:
        out: list[Alert] = list(self.main.alerts())
        for project, engine in self.engines.items():
            out += claim(engine.alerts(), project)
        return out

    def created(self, alert: Alert) -> bool:
        # asked of the engine that returned it (``claim`` marked a project's): its last call
        # was this one's (``tick`` and ``finish`` call every engine, ``process`` one)
        project = alert.details.get(TENANT_ATTR)
        engine = self.engines.get(project) if isinstance(project, str) else None
        return (self.main if engine is None else engine).created(alert)

    # the rest of core/types.DetectionEngine is the infrastructure engine's, spelt out for the
    # type checker (which does not look through __getattr__)
    def live_from(self, start: datetime) -> None:
        self.main.live_from(start)

    def detectors(self) -> Sequence[tuple[Any, Any]]:
        return self.main.detectors()

    @property
    def stats(self) -> EngineStats:
        return self.main.stats

    def __getattr__(self, name: str) -> Any:
        return getattr(self.main, name)

    def _engine(self, project: str) -> DetectionEngine:
        engine = self.engines.get(project)
        if engine is None:
            engine = self.engines[project] = self.make_engine()
            if len(self.engines) > self.max_projects:
                self.engines.popitem(last=False)
                self.dropped += 1
        else:
            self.engines.move_to_end(project)
        return engine


def claim(alerts: list[Alert], project: str) -> list[Alert]:
    """Mark a project engine's alerts as the project's (once per alert: the engine keeps
    updating the same object)."""
    for alert in alerts:
        if alert.details.get(TENANT_ATTR) != project:
            alert.details[TENANT_ATTR] = project
            alert.project = project
            alert.key = f"{TENANT_HOST_PREFIX}{project}|{alert.key}"
            if not (alert.host or "").startswith(TENANT_HOST_PREFIX):
                alert.host = f"{TENANT_HOST_PREFIX}{project}/{alert.host or ''}"
    return alerts
