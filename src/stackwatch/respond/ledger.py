"""The resource ledger: what each project, user and domain owns, followed from notifications.

Instances (legacy ``compute.instance.*`` and versioned ``instance.*``), volumes and their
attachments (cinder ``volume.*``, nova ``instance.volume_attach/detach.end``), ports and
floating IPs (neutron), and images (glance) are added on create, updated on attach/update and
removed on delete. Projects' domains are learned from ``created.project`` events when they
carry one (``set_project_domain`` lets the API sweep fill in the rest).

Bounded: past ``cap`` resources the least recently touched is evicted and counted, so a
flood of creations cannot exhaust memory. Persistable: ``save``/``load`` write a JSON snapshot
(atomically) so the live service keeps its view across restarts.

Cheap on the hot path: one dict lookup on ``event.action`` for events that are not about a
tracked resource.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import msgspec

from stackwatch.core.atomic import atomic_json_write
from stackwatch.core.event import Event

DEFAULT_CAP: Final = 500_000
"""Most resources held; past it the least recently touched one is evicted."""
DOMAIN_CAP: Final = 200_000
"""Most project -> domain entries held."""
OWNER_KINDS: Final = ("project", "user", "domain")
RESOURCE_TYPES: Final = ("instance", "volume", "floatingip", "port", "image")
SNAPSHOT_VERSION: Final = 1


class Resource(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One cloud resource and who owns it. ``attachments``: for a volume, the servers it is
    attached to (``server``, ``device``, ``host``); for an instance, its volumes (``volume``,
    ``device``), filled in when an inventory is built."""

    type: str
    id: str
    name: str | None = None
    project: str | None = None
    user: str | None = None
    host: str | None = None
    status: str | None = None
    since: datetime | None = None  # when it was created (or first seen)
    attachments: list[dict[str, str]] = msgspec.field(default_factory=list)
    extra: dict[str, Any] = msgspec.field(default_factory=dict)  # port_id, floating_ip_address...

    @property
    def key(self) -> tuple[str, str]:
        return (self.type, self.id)

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]


class _Snapshot(msgspec.Struct):
    version: int
    resources: list[Resource]
    domains: dict[str, str]
    evicted: int = 0


def _text(value: Any) -> str | None:
    if value is None or value == "" or isinstance(value, dict | list):
        return None
    return str(value)


def _payload(event: Event) -> dict[str, Any]:
    payload = event.attrs.get("payload")
    return payload if isinstance(payload, dict) else {}


class Ledger:
    """Resources alive per owner. Not thread-safe: one per engine."""

    def __init__(self, cap: int = DEFAULT_CAP) -> None:
        self.cap = cap
        self.evicted = 0
        self._resources: OrderedDict[tuple[str, str], Resource] = OrderedDict()
        self._domains: OrderedDict[str, str] = OrderedDict()  # project id -> domain id
        # server id -> keys of the volumes whose attachments may name it, so that deleting an
        # instance touches its volumes instead of scanning the ledger (quadratic over a long run).
        # A superset: detaches and removals leave stale keys behind, which cost one lookup.
        self._attached: dict[str, set[tuple[str, str]]] = {}
        self._attached_limit = cap
        self._handlers: dict[str, Callable[[Event], None]] = {
            "compute.instance.create.end": self._instance_created,
            "instance.create.end": self._instance_created,
            "compute.instance.delete.end": self._instance_deleted,
            "instance.delete.end": self._instance_deleted,
            "volume.create.end": self._volume_seen,
            "volume.attach.end": self._volume_seen,
            "volume.detach.end": self._volume_seen,
            "volume.update.end": self._volume_seen,
            "volume.delete.end": self._volume_deleted,
            "instance.volume_attach.end": self._nova_volume_attached,
            "instance.volume_detach.end": self._nova_volume_detached,
            "port.create.end": self._port_seen,
            "port.update.end": self._port_seen,
            "port.delete.end": self._port_deleted,
            "floatingip.create.end": self._floatingip_seen,
            "floatingip.update.end": self._floatingip_seen,
            "floatingip.delete.end": self._floatingip_deleted,
            "image.create": self._image_seen,
            "image.update": self._image_seen,
            "image.delete": self._image_deleted,
            "created.project": self._project_created,
        }
        self.actions: frozenset[str] = frozenset(self._handlers)
        """The actions ``apply`` acts on (any other event leaves the ledger as it is)."""

    # ------------------------------------------------------------------ public API

    def apply(self, event: Event) -> bool:
        """Update the ledger from one event; True when the event was about a tracked resource."""
        handler = self._handlers.get(event.action or "")
        if handler is None or event.outcome == "failure":
            return False
        handler(event)
        return True

    def __len__(self) -> int:
        return len(self._resources)

    def __iter__(self) -> Iterator[Resource]:
        return iter(list(self._resources.values()))

    def get(self, type_: str, id_: str) -> Resource | None:
        return self._resources.get((type_, id_))

    def add(self, resource: Resource) -> None:
        """Add or replace a resource (most recently touched)."""
        key = resource.key
        self._resources[key] = resource
        self._resources.move_to_end(key)
        while len(self._resources) > self.cap:
            self._resources.popitem(last=False)
            self.evicted += 1
        if resource.attachments and resource.type == "volume":
            self._index_attachments(resource)

    def remove(self, type_: str, id_: str) -> Resource | None:
        return self._resources.pop((type_, id_), None)

    def set_project_domain(self, project: str, domain: str) -> None:
        self._domains[project] = domain
        self._domains.move_to_end(project)
        if len(self._domains) > DOMAIN_CAP:
            self._domains.popitem(last=False)

    def project_domain(self, project: str) -> str | None:
        return self._domains.get(project)

    def resources(self) -> list[Resource]:
        """Every resource held, least recently touched first (the tenant view reads them all
        once per snapshot)."""
        return list(self._resources.values())

    def owned_by(self, kind: str, owner: str) -> list[Resource]:
        """Resources alive for a project, user or domain, instances first, each with its
        attachments filled in both directions. Deletions are rare, so a scan is fine here and
        keeps the hot path free of index upkeep."""
        if kind == "project":
            found = [r for r in self._resources.values() if r.project == owner]
        elif kind == "user":
            found = [r for r in self._resources.values() if r.user == owner]
        elif kind == "domain":
            projects = {p for p, d in self._domains.items() if d == owner}
            found = [r for r in self._resources.values() if r.project in projects]
        else:
            raise ValueError(f"unknown owner kind {kind!r}; expected one of {OWNER_KINDS}")
        order = {name: i for i, name in enumerate(RESOURCE_TYPES)}
        found.sort(key=lambda r: (order.get(r.type, 99), r.since.timestamp() if r.since else 0.0, r.id))
        links = self._volume_links() if any(r.type == "instance" for r in found) else {}
        return [self._with_links(r, links) for r in found]

    # ------------------------------------------------------------------ persistence

    def snapshot(self) -> bytes:
        """The ledger encoded as a snapshot file's bytes. Encoded here, on the thread that
        changes the ledger (its resources are mutable): the bytes can then be written by
        another thread (``core.atomic.atomic_write``) without blocking it."""
        return msgspec.json.encode(self._snapshot())

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a snapshot atomically (core.atomic: temp file, fsync, rename)."""
        atomic_json_write(path, self._snapshot())

    def state(self) -> tuple[Any, ...]:
        """What events changed, as live objects for a partition's checkpoint (one pickle with
        the engine's: detect/snapshot.py), unlike ``snapshot``'s self-contained file."""
        return (self._resources, self._domains, self._attached, self.evicted)

    def load_state(self, state: tuple[Any, ...]) -> None:
        """Take back ``state`` (this ledger freshly made, with the same cap)."""
        self._resources, self._domains, self._attached, self.evicted = state

    def _snapshot(self) -> _Snapshot:
        return _Snapshot(SNAPSHOT_VERSION, list(self._resources.values()), dict(self._domains), self.evicted)

    @classmethod
    def load(cls, path: str | os.PathLike[str], cap: int = DEFAULT_CAP) -> Ledger:
        """A ledger from a snapshot; an empty one when the file does not exist."""
        ledger = cls(cap)
        target = Path(path)
        if not target.exists():
            return ledger
        snapshot = msgspec.json.decode(target.read_bytes(), type=_Snapshot)
        if snapshot.version != SNAPSHOT_VERSION:
            raise ValueError(f"{target}: ledger snapshot version {snapshot.version} is not supported")
        for resource in snapshot.resources:
            ledger.add(resource)
        for project, domain in snapshot.domains.items():
            ledger.set_project_domain(project, domain)
        ledger.evicted += snapshot.evicted
        return ledger

    # ------------------------------------------------------------------ internals

    def _volume_links(self) -> dict[str, list[dict[str, str]]]:
        """server id -> its volumes as an instance's attachments, in ledger order: one pass for
        a whole inventory (not one per instance, which is quadratic for a big project)."""
        links: dict[str, list[dict[str, str]]] = {}
        for volume in self._resources.values():
            if volume.type == "volume":
                for att in volume.attachments:
                    links.setdefault(att.get("server"), []).append(  # type: ignore[arg-type]
                        {"volume": volume.id, "device": att.get("device", "")})
        return links

    @staticmethod
    def _with_links(resource: Resource, links: dict[str, list[dict[str, str]]]) -> Resource:
        """A copy with the cross references an inventory needs (an instance's volumes)."""
        copy = msgspec.structs.replace(resource, attachments=list(resource.attachments),
                                       extra=dict(resource.extra))
        if resource.type == "instance":
            copy.attachments.extend(links.get(resource.id, ()))
        return copy

    def _index_attachments(self, volume: Resource) -> None:
        """Note the servers ``volume``'s attachments name (see ``_attached``)."""
        self._note_servers(volume)
        if len(self._attached) > self._attached_limit:  # stale servers piled up: rebuild exactly
            self._attached = {}
            for resource in self._resources.values():
                if resource.type == "volume":
                    self._note_servers(resource)
            self._attached_limit = max(self.cap, 2 * len(self._attached))

    def _note_servers(self, volume: Resource) -> None:
        for att in volume.attachments:
            if server := att.get("server"):
                self._attached.setdefault(server, set()).add(volume.key)

    def _touch(self, type_: str, id_: str | None, event: Event) -> Resource | None:
        """The resource to update (created on first sight), or None without an id."""
        if not id_:
            return None
        resource = self._resources.get((type_, id_))
        if resource is None:
            resource = Resource(type=type_, id=id_, since=event.time)
        self.add(resource)
        return resource

    def _owner(self, resource: Resource, event: Event, project: Any = None, user: Any = None) -> None:
        resource.project = _text(project) or event.initiator.project or resource.project
        resource.user = _text(user) or event.initiator.id or resource.user

    def _instance_created(self, event: Event) -> None:
        payload = _payload(event)
        resource = self._touch("instance", event.target.id, event)
        if resource is None:
            return
        resource.name = event.target.name or resource.name
        self._owner(resource, event, payload.get("tenant_id") or payload.get("project_id"),
                    payload.get("user_id"))
        resource.host = _text(payload.get("host")) or resource.host
        resource.status = _text(payload.get("state")) or resource.status
        if payload.get("node"):
            resource.extra["node"] = str(payload["node"])
        for device in payload.get("block_devices") or ():  # versioned: volumes booted/attached
            if isinstance(device, dict) and device.get("volume_id"):
                self._attach(str(device["volume_id"]), resource, _text(device.get("device_name")), event)

    def _instance_deleted(self, event: Event) -> None:
        server = event.target.id
        if not server:
            return
        self.remove("instance", server)
        for key in self._attached.pop(server, ()):  # nova detaches volumes before it deletes
            volume = self._resources.get(key)
            if volume is not None and volume.attachments:
                volume.attachments = [a for a in volume.attachments if a.get("server") != server]

    def _volume_seen(self, event: Event) -> None:
        payload = _payload(event)
        resource = self._touch("volume", event.target.id, event)
        if resource is None:
            return
        resource.name = event.target.name or resource.name
        self._owner(resource, event, payload.get("tenant_id") or payload.get("project_id"),
                    payload.get("user_id"))
        resource.status = _text(payload.get("status")) or resource.status
        resource.host = _text(payload.get("host")) or resource.host
        if payload.get("size") is not None:
            resource.extra["size"] = payload["size"]
        attachments = payload.get("volume_attachment")
        if isinstance(attachments, list):  # cinder sends the full list: it replaces ours
            resource.attachments = [
                {k: v for k, v in (("server", _text(a.get("instance_uuid"))),
                                   ("device", _text(a.get("mountpoint"))),
                                   ("host", _text(a.get("attached_host"))),
                                   ("attachment", _text(a.get("id")))) if v}
                for a in attachments if isinstance(a, dict) and a.get("instance_uuid")
            ]
            self._index_attachments(resource)

    def _volume_deleted(self, event: Event) -> None:
        if event.target.id:
            self.remove("volume", event.target.id)

    def _attach(self, volume_id: str, instance: Resource, device: str | None, event: Event) -> None:
        volume = self._touch("volume", volume_id, event)
        if volume is None:
            return
        volume.project = volume.project or instance.project
        volume.user = volume.user or instance.user
        volume.status = "in-use"
        if not any(a.get("server") == instance.id for a in volume.attachments):
            att = {"server": instance.id}
            if device:
                att["device"] = device
            if instance.host:
                att["host"] = instance.host
            volume.attachments.append(att)
            self._index_attachments(volume)

    def _nova_volume_attached(self, event: Event) -> None:
        payload = _payload(event)
        volume_id = _text(payload.get("volume_id"))
        instance = self._touch("instance", event.target.id, event)
        if instance is None or volume_id is None:
            return
        instance.name = instance.name or event.target.name
        self._owner(instance, event, payload.get("tenant_id"), payload.get("user_id"))
        instance.host = instance.host or _text(payload.get("host"))
        self._attach(volume_id, instance, None, event)

    def _nova_volume_detached(self, event: Event) -> None:
        volume_id = _text(_payload(event).get("volume_id"))
        volume = self._resources.get(("volume", volume_id or ""))
        if volume is not None:
            volume.attachments = [a for a in volume.attachments if a.get("server") != event.target.id]
            volume.status = "in-use" if volume.attachments else "available"

    def _port_seen(self, event: Event) -> None:
        body = _payload(event).get("port")
        body = body if isinstance(body, dict) else {}
        resource = self._touch("port", event.target.id, event)
        if resource is None:
            return
        resource.name = event.target.name or resource.name
        self._owner(resource, event, body.get("project_id") or body.get("tenant_id"))
        resource.host = _text(body.get("binding:host_id")) or resource.host
        resource.status = _text(body.get("status")) or resource.status
        for key in ("device_id", "device_owner", "network_id", "mac_address"):
            if key in body:
                resource.extra[key] = _text(body.get(key)) or ""

    def _port_deleted(self, event: Event) -> None:
        if event.target.id:
            self.remove("port", event.target.id)

    def _floatingip_seen(self, event: Event) -> None:
        body = _payload(event).get("floatingip")
        body = body if isinstance(body, dict) else {}
        resource = self._touch("floatingip", event.target.id, event)
        if resource is None:
            return
        resource.name = _text(body.get("floating_ip_address")) or resource.name
        self._owner(resource, event, body.get("project_id") or body.get("tenant_id"))
        resource.status = _text(body.get("status")) or resource.status
        for key in ("floating_ip_address", "port_id", "fixed_ip_address", "router_id"):
            if key in body:
                resource.extra[key] = _text(body.get(key)) or ""

    def _floatingip_deleted(self, event: Event) -> None:
        if event.target.id:
            self.remove("floatingip", event.target.id)

    def _image_seen(self, event: Event) -> None:
        payload = _payload(event)
        resource = self._touch("image", event.target.id, event)
        if resource is None:
            return
        resource.name = event.target.name or resource.name
        resource.project = _text(payload.get("owner")) or resource.project
        resource.user = resource.user or event.initiator.id
        resource.status = _text(payload.get("status")) or resource.status
        if payload.get("visibility"):
            resource.extra["visibility"] = str(payload["visibility"])

    def _image_deleted(self, event: Event) -> None:
        if event.target.id:
            self.remove("image", event.target.id)

    def _project_created(self, event: Event) -> None:
        project = event.target.id
        attrs = event.attrs
        domain = _text(attrs.get("domain_id") or attrs.get("domain") or _payload(event).get("domain_id"))
        if project and domain:
            self.set_project_domain(project, domain)
