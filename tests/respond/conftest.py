"""Fixtures for the response tests: the local OpenStack API and notification builders."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from stackwatch.core.event import Event
from stackwatch.parsers.framing import parse_text
from stackwatch.respond.openstack import Cloud
from tests.respond.fake_openstack import FakeOpenStack

CADF = "http://schemas.dmtf.org/cloud/audit/1.0/event"
TYPE_URIS = {"project": "data/security/project", "user": "data/security/account/user",
             "domain": "data/security/domain"}


@pytest.fixture
def api() -> Iterator[FakeOpenStack]:
    fake = FakeOpenStack().start()
    yield fake
    fake.stop()


@pytest.fixture
def cloud(api: FakeOpenStack) -> Cloud:
    return Cloud.connect(**api.auth())


def notify(event_type: str, payload: dict[str, Any], publisher: str = "compute.cmp1",
           timestamp: str = "2026-03-02 09:00:00.000000", **context: str) -> Event:
    """One oslo.messaging v2 envelope, parsed by the real parser."""
    msg: dict[str, Any] = {"message_id": "m-" + event_type, "publisher_id": publisher,
                           "event_type": event_type, "priority": "INFO", "payload": payload,
                           "timestamp": timestamp}
    msg.update({f"_context_{key}": value for key, value in context.items()})
    line = json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(msg)})
    events = parse_text(line)
    assert len(events) == 1 and events[0].kind == "notification", events
    return events[0]


def keystone_cadf(operation: str, kind: str, ident: str, outcome: str = "success",
                  timestamp: str = "2026-03-02 10:00:00.000000") -> Event:
    """A keystone CADF notification (``deleted.project``...), shaped after the keystone docs."""
    payload = {"typeURI": CADF, "eventType": "activity", "id": "e-" + ident, "action": f"{operation}.{kind}",
               "eventTime": "2026-03-02T10:00:00.000000+0000", "outcome": outcome,
               "observer": {"id": "openstack:obs", "typeURI": "service/security"},
               "initiator": {"id": "admin-id", "typeURI": "service/security/account/user", "username": "bob",
                             "user_id": "admin-id", "host": {"address": "10.10.0.22", "agent": "osc"}},
               "target": {"id": ident, "typeURI": TYPE_URIS[kind]}, "resource_info": ident}
    return notify(f"identity.{kind}.{operation}", payload, publisher="identity.ctl2", timestamp=timestamp)


def keystone_basic(operation: str, kind: str, ident: str) -> Event:
    """Keystone's basic notification format: ``{"resource_info": id}``."""
    return notify(f"identity.{kind}.{operation}", {"resource_info": ident}, publisher="identity.ctl2",
                  timestamp="2026-03-02 10:00:00.000000")


def instance_created(inst: str, project: str, user: str, name: str = "vm", host: str = "cmp1") -> Event:
    return notify("compute.instance.create.end",
                  {"tenant_id": project, "user_id": user, "instance_id": inst, "display_name": name,
                   "host": host, "node": f"{host}.example.org", "state": "active"},
                  publisher=f"compute.{host}", timestamp="2026-03-02 08:00:00.000000")


def instance_deleted(inst: str, project: str, user: str) -> Event:
    return notify("compute.instance.delete.end",
                  {"tenant_id": project, "user_id": user, "instance_id": inst, "state": "deleted"},
                  timestamp="2026-03-02 08:30:00.000000")


def volume_attached(vol: str, inst: str, project: str, user: str, host: str = "cmp1") -> Event:
    return notify("volume.attach.end",
                  {"tenant_id": project, "user_id": user, "volume_id": vol, "display_name": "data",
                   "size": 10, "status": "in-use", "host": "ctl1@lvm#lvm",
                   "volume_attachment": [{"id": "att-1", "volume_id": vol, "instance_uuid": inst,
                                          "attached_host": host, "mountpoint": "/dev/vdb",
                                          "attach_status": "attached"}]},
                  publisher="volume.ctl1", timestamp="2026-03-02 08:05:00.000000")


def floatingip_created(fip: str, project: str, address: str, port: str | None = None) -> Event:
    return notify("floatingip.create.end",
                  {"floatingip": {"id": fip, "project_id": project, "tenant_id": project,
                                  "floating_ip_address": address, "port_id": port, "status": "DOWN",
                                  "router_id": None, "fixed_ip_address": None}},
                  publisher="network.ctl1", timestamp="2026-03-02 08:06:00.000000", user_id="user-1")


@dataclass
class World:
    """A doomed project with two running instances (one with an attached volume), their
    ports, a floating IP on the first and a spare one, a router port; and a live project
    with an instance that must never be touched."""

    project: str
    user: str
    servers: list[str]
    volume: str
    ports: list[str]
    fips: list[str]
    router_port: str
    live_project: str
    live_server: str
    live_fip: str


def build_world(api: FakeOpenStack) -> World:
    project = api.add_project("d" * 32, name="legacy")
    user = api.add_user("e" * 32, name="leaver", project=project)
    servers = [api.add_server(project, user, f"legacy-app-{i}", host=f"cmp{i}") for i in (1, 2)]
    volume = api.add_volume(project, user, "legacy-app-1-data", size=50)
    api.attach(servers[0], volume)
    ports = [api.add_port(project, device_id=s, device_owner="compute:nova", ip=f"10.0.0.{i + 5}")
             for i, s in enumerate(servers)]
    fips = [api.add_floatingip(project, "172.24.4.10", port=ports[0]),
            api.add_floatingip(project, "172.24.4.11")]
    router_port = api.add_port(project, device_id="router-1", device_owner="network:router_interface")
    live_project = api.add_project("f" * 32, name="alive")
    live_user = api.add_user("c" * 32, project=live_project)
    live_server = api.add_server(live_project, live_user, "keep-me")
    live_port = api.add_port(live_project, device_id=live_server, device_owner="compute:nova")
    live_fip = api.add_floatingip(live_project, "172.24.4.99", port=live_port)
    return World(project, user, servers, volume, ports, fips, router_port, live_project, live_server,
                 live_fip)
