"""Tenants' own instances sending their security logs: syslog over TLS (RFC 5425) where the
client certificate names the project.

The security team issues each project a client certificate from a CA of its own (the
``tls.client_ca`` here), with the keystone project id as its common name. A project's
instances (rsyslog, syslog-ng, fluent-bit...) forward their IDS, antivirus and auth logs with
it. Every event read on a connection is tagged with the certificate's project, whatever the
record says: ``initiator.project`` is set to it (so the project's view shows it, through the
store's tenant scope), ``attrs.tenant_project`` too, and the host becomes
``tenant/<project>/<host>`` so that a tenant cannot pass its records off as a node's.

One tenant cannot starve the others: each project has its own token bucket
(``project_rate_limit`` records per second: its connections are slowed down, the others are
not) and its own connection limit (``project_max_connections``); each record is cut at
``max_message_bytes`` and flagged as every source's are.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
import time
from dataclasses import dataclass
from typing import Any

from stackwatch.config.schema import setting
from stackwatch.core.event import Event, replace
from stackwatch.sources.base import Record, SourceContext, TokenBucket
from stackwatch.sources.syslog_tcp import TcpSettings, TcpSyslogSource
from stackwatch.store.scope import TENANT_ATTR, TENANT_HOST_PREFIX

_PROJECT_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_CONNECTION_PROJECT: contextvars.ContextVar[str] = contextvars.ContextVar("tenant_project")


@dataclass(frozen=True, kw_only=True)
class TenantSyslogSettings(TcpSettings):
    project_rate_limit: float = setting(100.0, "records per second each project may send (0: no limit)")
    project_burst: int = setting(0, "records a project may send above its rate in a burst "
                                    "(default: one second's worth)")
    project_max_connections: int = setting(16, "connections one project may hold at once")
    projects: list[str] = setting([], "project ids allowed to send (empty: any the client CA certified)")

    def validate(self) -> None:
        super().validate()
        if self.tls is None or not self.tls.require_client_cert:
            raise ValueError("tenant_syslog needs tls with client_ca and require_client_cert: true "
                             "(the client certificate names the project)")
        if self.project_rate_limit < 0 or self.project_burst < 0 or self.project_max_connections < 1:
            raise ValueError("project_rate_limit and project_burst must not be negative, "
                             "project_max_connections at least 1")
        for project in self.projects:
            if not _PROJECT_ID.match(project):
                raise ValueError(f"not a project id: {project!r}")


def certificate_project(peercert: dict[str, Any] | None) -> str | None:
    """The project a verified client certificate names (its common name), None if it names
    none that looks like a keystone project id."""
    if not peercert:
        return None
    names = [value for rdn in peercert.get("subject", ()) for key, value in rdn if key == "commonName"]
    if len(names) != 1 or not _PROJECT_ID.match(names[0]):
        return None
    return str(names[0])


class TenantSyslogSource(TcpSyslogSource):
    Settings = TenantSyslogSettings

    def __init__(self, settings: TenantSyslogSettings, context: SourceContext) -> None:
        super().__init__(settings, context)
        self.allowed = frozenset(settings.projects)
        self.buckets: dict[str, TokenBucket] = {}
        self.connections: dict[str, int] = {}
        self.refused = 0  # connections whose certificate names no allowed project, or over the limit
        self.per_project: dict[str, int] = {}  # records received per project

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        project = certificate_project(writer.get_extra_info("peercert"))
        settings = self.settings
        if (project is None or (self.allowed and project not in self.allowed)
                or self.connections.get(project, 0) >= settings.project_max_connections):
            self.refused += 1
            writer.close()
            return
        self.connections[project] = self.connections.get(project, 0) + 1
        token = _CONNECTION_PROJECT.set(project)
        try:
            await super()._serve(reader, writer)
        finally:
            _CONNECTION_PROJECT.reset(token)
            self.connections[project] -= 1

    async def _queue(self, frames: list[tuple[bytes, int]], peer: str, size: int) -> None:
        project = _CONNECTION_PROJECT.get()
        bucket = self.buckets.get(project)
        if bucket is None:
            bucket = self.buckets[project] = TokenBucket(self.settings.project_rate_limit,
                                                         self.settings.project_burst)
        # In slices no larger than the bucket holds (a read can bring more frames than a burst).
        step = max(1, int(bucket.capacity)) if bucket.rate else len(frames)
        for start in range(0, len(frames), step):
            chunk = frames[start:start + step]
            await bucket.wait(len(chunk))  # this project's connections wait; the others' do not
            await self.bucket.wait(len(chunk))
            now = time.time()
            records = []
            for data, original in chunk:
                if original:
                    self.counters.truncated += 1
                records.append(Record(data[:self.max_bytes].decode("utf-8", "surrogateescape"), now, peer,
                                      project, original))
            await self.queue.put_many(records)
            self.counters.received += len(records)
            self.per_project[project] = self.per_project.get(project, 0) + len(records)
        self.counters.bytes += size

    def decode(self, records: list[Record]) -> list[Event]:
        out: list[Event] = []
        for record in records:
            project = str(record.meta)
            for event in self.decoder.decode(record):
                out.append(tag(event, project))
        self.counters.unparsed = self.decoder.unparsed
        return out


def tag(event: Event, project: str) -> Event:
    """``event`` as the project's: its initiator's project, the tenant attribute and the host
    are the certificate's, never what the record claims."""
    import msgspec

    return replace(
        event,
        host=f"{TENANT_HOST_PREFIX}{project}/{event.host}"[:255],
        initiator=msgspec.structs.replace(event.initiator, project=project),
        attrs={**event.attrs, TENANT_ATTR: project},
    )
