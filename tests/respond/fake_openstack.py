"""A small, stateful OpenStack API on loopback, for driving openstacksdk as in production.

Real HTTP (ThreadingHTTPServer on 127.0.0.1, ephemeral port) serving:

- Keystone v3: version discovery, ``POST /v3/auth/tokens`` (body from keystoneauth1's
  ``fixture.V3Token`` with a catalog for identity, compute, volumev3 and network), and
  projects / users / domains (list, get, 404 once deleted);
- Nova v2.1: version document, ``servers/detail`` (``all_tenants``), server GET/DELETE, the
  ``createImage`` action, ``os-volume_attachments`` (list, detach);
- Cinder v3: version document, ``volumes/detail`` (``all_tenants``), volume GET/DELETE (400 while
  in-use, as cinder refuses), the ``os-detach`` action and ``DELETE /attachments/{id}``;
- Neutron v2.0: floating IPs (list/get/PUT to disassociate/DELETE) and ports (list/get/PUT/DELETE).

Bodies follow the api-ref samples (nova ``servers/detail``, cinder ``volumes/detail``, neutron
``floatingips``...). State is real: a deleted server is gone, its volumes show ``available``
and its ports go with it; a deleted port disassociates its floating IP. ``fail(method, path,
status, times)`` injects errors; ``requests`` records every call (method, path).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from keystoneauth1 import fixture

ADMIN_PROJECT = "a0000000000000000000000000000001"
ADMIN_USER = "u0000000000000000000000000000001"
DEFAULT_DOMAIN = "default"
TOKEN = "gAAAAAfake-token"
REGION = "RegionOne"
CREATED = "2026-03-02T08:00:00Z"

Route = Callable[[re.Match[str], dict[str, list[str]], dict[str, Any] | None], tuple[int, Any]]


def _not_found(kind: str, ident: str) -> tuple[int, Any]:
    return 404, {"error": {"code": 404, "message": f"Could not find {kind}: {ident}.", "title": "Not Found"}}


def _nova_not_found(kind: str, ident: str) -> tuple[int, Any]:
    return 404, {"itemNotFound": {"code": 404, "message": f"{kind} {ident} could not be found."}}


def _neutron_not_found(kind: str, ident: str) -> tuple[int, Any]:
    return 404, {"NeutronError": {"type": f"{kind}NotFound", "message": f"{kind} {ident} could not be found.",
                                  "detail": ""}}


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    times: int
    then: Callable[[], None] | None = None  # run when the fault fires (e.g. a concurrent delete)


@dataclass
class FakeOpenStack:
    """The cloud's state and the HTTP server over it (start with ``start()``, or use as a fixture)."""

    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    domains: dict[str, dict[str, Any]] = field(default_factory=dict)
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)
    floatingips: dict[str, dict[str, Any]] = field(default_factory=dict)
    ports: dict[str, dict[str, Any]] = field(default_factory=dict)
    security_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    security_group_rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.server: ThreadingHTTPServer | None = None
        self.base = ""
        self.add_domain(DEFAULT_DOMAIN, name="Default")
        self.add_project(ADMIN_PROJECT, name="admin")
        self.add_user(ADMIN_USER, name="admin", project=ADMIN_PROJECT)
        self.routes: list[tuple[str, re.Pattern[str], Route]] = [
            (m, re.compile(p + r"/?$"), f) for m, p, f in self._route_table()]

    # ------------------------------------------------------------------ state set-up

    def add_domain(self, ident: str, name: str | None = None) -> str:
        self.domains[ident] = {"id": ident, "name": name or ident, "description": "", "enabled": True,
                               "tags": [], "options": {}, "links": {"self": f"/v3/domains/{ident}"}}
        return ident

    def add_project(self, ident: str, name: str | None = None, domain: str = DEFAULT_DOMAIN) -> str:
        self.projects[ident] = {"id": ident, "name": name or f"project-{ident[:6]}", "domain_id": domain,
                                "description": "", "enabled": True, "is_domain": False, "parent_id": domain,
                                "tags": [], "options": {}, "links": {"self": f"/v3/projects/{ident}"}}
        return ident

    def add_user(self, ident: str, name: str | None = None, domain: str = DEFAULT_DOMAIN,
                 project: str | None = None) -> str:
        self.users[ident] = {"id": ident, "name": name or f"user-{ident[:6]}", "domain_id": domain,
                             "enabled": True, "default_project_id": project, "password_expires_at": None,
                             "options": {}, "links": {"self": f"/v3/users/{ident}"}}
        return ident

    def add_server(self, project: str, user: str, name: str, host: str = "cmp1",
                   ident: str | None = None) -> str:
        ident = ident or str(uuid.uuid4())
        self.servers[ident] = {
            "id": ident, "name": name, "status": "ACTIVE", "tenant_id": project, "user_id": user,
            "metadata": {}, "hostId": uuid.uuid5(uuid.NAMESPACE_DNS, project + host).hex,
            "image": {"id": "70a599e0-31e7-49b7-b260-868f441e862b", "links": []},
            "flavor": {"vcpus": 1, "ram": 512, "disk": 1, "ephemeral": 0, "swap": 0,
                       "original_name": "m1.tiny", "extra_specs": {}},
            "created": CREATED, "updated": CREATED, "addresses": {}, "accessIPv4": "", "accessIPv6": "",
            "links": [{"href": f"{self.base}/compute/v2.1/servers/{ident}", "rel": "self"}],
            "OS-DCF:diskConfig": "AUTO", "OS-EXT-AZ:availability_zone": "nova",
            "OS-EXT-SRV-ATTR:host": host, "OS-EXT-SRV-ATTR:hypervisor_hostname": f"{host}.cloud.example.org",
            "OS-EXT-SRV-ATTR:instance_name": "instance-00000001", "OS-EXT-STS:power_state": 1,
            "OS-EXT-STS:task_state": None, "OS-EXT-STS:vm_state": "active",
            "OS-SRV-USG:launched_at": "2026-03-02T08:00:05.000000", "OS-SRV-USG:terminated_at": None,
            "os-extended-volumes:volumes_attached": [], "security_groups": [{"name": "default"}],
            "key_name": None, "config_drive": "", "progress": 0, "locked": False, "tags": [],
        }
        return ident

    def add_volume(self, project: str, user: str, name: str, size: int = 10, ident: str | None = None) -> str:
        ident = ident or str(uuid.uuid4())
        self.volumes[ident] = {
            "id": ident, "name": name, "status": "available", "size": size, "user_id": user,
            "os-vol-tenant-attr:tenant_id": project, "os-vol-host-attr:host": "ctl1@lvm#lvm",
            "attachments": [], "availability_zone": "nova", "bootable": "false", "encrypted": False,
            "created_at": "2026-03-02T08:00:00.000000", "updated_at": None, "description": None,
            "volume_type": "lvmdriver-1", "multiattach": False, "metadata": {}, "snapshot_id": None,
            "source_volid": None, "migration_status": None, "replication_status": None,
            "consistencygroup_id": None, "group_id": None, "provider_id": None, "service_uuid": None,
            "shared_targets": True, "cluster_name": None, "volume_type_id": str(uuid.uuid4()),
            "links": [{"href": f"{self.base}/volume/v3/{project}/volumes/{ident}", "rel": "self"}],
        }
        return ident

    def attach(self, server: str, volume: str, device: str = "/dev/vdb") -> str:
        attachment = str(uuid.uuid4())
        vol = self.volumes[volume]
        srv = self.servers[server]
        vol["attachments"].append({
            "server_id": server, "attachment_id": attachment, "attached_at": "2026-03-02T08:01:00.000000",
            "host_name": srv["OS-EXT-SRV-ATTR:host"], "volume_id": volume, "device": device, "id": volume})
        vol["status"] = "in-use"
        srv["os-extended-volumes:volumes_attached"].append({"id": volume, "delete_on_termination": False})
        return attachment

    def add_port(self, project: str, device_id: str = "", device_owner: str = "",
                 ident: str | None = None, ip: str = "10.0.0.5") -> str:
        ident = ident or str(uuid.uuid4())
        self.ports[ident] = {
            "id": ident, "name": "", "network_id": "3b8a2c11-5a4d-4a8e-9d2b-1f0e6c7a9b01",
            "project_id": project, "tenant_id": project, "device_id": device_id, "device_owner": device_owner,
            "mac_address": "fa:16:3e:c9:cb:f0", "admin_state_up": True, "status": "ACTIVE",
            "fixed_ips": [{"subnet_id": "a0304c3a-4f08-4c43-88af-d796509c97d2", "ip_address": ip}],
            "binding:host_id": "cmp1" if device_id else "", "binding:vif_type": "ovs",
            "binding:vnic_type": "normal", "security_groups": [], "allowed_address_pairs": [],
            "extra_dhcp_opts": [], "description": "", "tags": [], "port_security_enabled": True,
            "created_at": CREATED, "updated_at": CREATED, "revision_number": 1,
        }
        return ident

    def add_security_group(self, project: str, name: str, ident: str | None = None) -> str:
        """A security group with the two egress rules neutron gives every new group."""
        ident = ident or str(uuid.uuid4())
        self.security_groups[ident] = {
            "id": ident, "name": name, "description": "", "project_id": project, "tenant_id": project,
            "stateful": True, "tags": [], "created_at": CREATED, "updated_at": CREATED, "revision_number": 1,
            "security_group_rules": [],
        }
        for ethertype in ("IPv4", "IPv6"):
            rule = str(uuid.uuid4())
            self.security_group_rules[rule] = {
                "id": rule, "security_group_id": ident, "direction": "egress", "ethertype": ethertype,
                "protocol": None, "port_range_min": None, "port_range_max": None, "remote_ip_prefix": None,
                "remote_group_id": None, "project_id": project, "tenant_id": project, "description": "",
                "created_at": CREATED, "updated_at": CREATED, "revision_number": 1,
            }
        return ident

    def add_floatingip(self, project: str, address: str, port: str | None = None,
                       ident: str | None = None) -> str:
        ident = ident or str(uuid.uuid4())
        fixed = self.ports[port]["fixed_ips"][0]["ip_address"] if port else None
        self.floatingips[ident] = {
            "id": ident, "floating_ip_address": address, "floating_network_id": "376da547-b977-4cfe-9cba",
            "router_id": "d23abc8d-2991-4a55-ba98-2aaea84cc72f" if port else None, "port_id": port,
            "fixed_ip_address": fixed, "status": "ACTIVE" if port else "DOWN", "project_id": project,
            "tenant_id": project, "description": "", "dns_domain": "", "dns_name": "", "tags": [],
            "port_forwardings": [], "qos_policy_id": None, "revision_number": 1,
            "created_at": CREATED, "updated_at": CREATED,
        }
        return ident

    def fail(self, method: str, path: str, status: int = 503, times: int = 1,
             then: Callable[[], None] | None = None) -> None:
        """The next ``times`` requests with ``method`` whose path matches the regex ``path`` get
        ``status`` (and ``then`` runs, under the state lock)."""
        with self.lock:
            self.faults.append(Fault(method.upper(), re.compile(path), status, times, then))

    def mutations(self) -> list[tuple[str, str]]:
        """Requests that could change state (the token request excepted)."""
        return [(m, p) for m, p in self.requests if m != "GET" and not p.endswith("/auth/tokens")]

    # ------------------------------------------------------------------ server

    def start(self) -> FakeOpenStack:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # headers and body go out as two writes: without this, Nagle + delayed ACK
                # add ~40 ms to every request
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _serve(self) -> None:
                fake._handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def auth(self) -> dict[str, Any]:
        """Explicit credentials for ``openstack.connect(**auth)``."""
        return {"auth_url": f"{self.base}/identity/v3", "username": "admin", "password": "secret",
                "project_name": "admin", "user_domain_id": DEFAULT_DOMAIN,
                "project_domain_id": DEFAULT_DOMAIN, "region_name": REGION}

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        path = parts.path
        query = parse_qs(parts.query)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        headers: dict[str, str] = {}
        with self.lock:
            self.requests.append((h.command, path))
            status, payload = self._fault(h.command, path)
            if status == 0:
                authorized = h.headers.get("X-Auth-Token") == TOKEN
                if not (authorized or path.endswith("/auth/tokens") or self._is_version_doc(path)):
                    status, payload = 401, {"error": {"code": 401, "message": "Unauthorized"}}
                else:
                    status, payload = self._dispatch(h.command, path, query, body, headers)
        data = b"" if payload is None else json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.send_header("X-Openstack-Request-Id", "req-" + str(uuid.uuid4()))
        for key, value in headers.items():
            h.send_header(key, value)
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)

    def _fault(self, method: str, path: str) -> tuple[int, Any]:
        for fault in self.faults:
            if fault.times > 0 and fault.method == method and fault.pattern.search(path):
                fault.times -= 1
                if fault.then is not None:
                    fault.then()
                return fault.status, {"computeFault" if "/compute/" in path else "error":
                                      {"code": fault.status, "message": "Service Unavailable (injected)"}}
        return 0, None

    @staticmethod
    def _is_version_doc(path: str) -> bool:
        return bool(re.fullmatch(r"/(identity|compute|volume|network)(/v[0-9.]+)?/?", path))

    def _dispatch(self, method: str, path: str, query: dict[str, list[str]], body: Any,
                  headers: dict[str, str]) -> tuple[int, Any]:
        if method == "POST" and path.rstrip("/").endswith("/identity/v3/auth/tokens"):
            headers["X-Subject-Token"] = TOKEN
            return 201, self._token()
        if self._is_version_doc(path):
            return 200, self._version_doc(path)
        for route_method, pattern, func in self.routes:
            if route_method == method:
                match = pattern.match(path)
                if match:
                    result = func(match, query, body)
                    if method == "POST" and "createImage" in (body or {}):
                        image = result[1]["image_id"]
                        headers["Location"] = f"{self.base}/image/v2/images/{image}"
                    return result
        return 404, {"error": {"code": 404, "message": f"no route for {method} {path}"}}

    # ------------------------------------------------------------------ documents

    def _token(self) -> dict[str, Any]:
        token = fixture.V3Token(user_id=ADMIN_USER, user_name="admin", user_domain_id=DEFAULT_DOMAIN,
                                project_id=ADMIN_PROJECT, project_name="admin",
                                project_domain_id=DEFAULT_DOMAIN)
        token.add_role(name="admin")
        for service_type, url in (("identity", f"{self.base}/identity"),
                                  ("compute", f"{self.base}/compute/v2.1"),
                                  ("volumev3", f"{self.base}/volume/v3/{ADMIN_PROJECT}"),
                                  ("network", f"{self.base}/network")):
            token.add_service(service_type).add_standard_endpoints(public=url, internal=url, region=REGION)
        return dict(token)

    def _version_doc(self, path: str) -> dict[str, Any]:
        service = path.strip("/").split("/")[0]
        docs = {
            "identity": {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
                         "media-types": [{"base": "application/json",
                                          "type": "application/vnd.openstack.identity-v3+json"}],
                         "links": [{"rel": "self", "href": f"{self.base}/identity/v3/"}]},
            "compute": {"id": "v2.1", "status": "CURRENT", "version": "2.95", "min_version": "2.1",
                        "updated": "2013-07-23T11:33:21Z",
                        "links": [{"rel": "self", "href": f"{self.base}/compute/v2.1/"}]},
            "volume": {"id": "v3.0", "status": "CURRENT", "version": "3.70", "min_version": "3.0",
                       "updated": "2023-08-31T00:00:00Z",
                       "links": [{"rel": "self", "href": f"{self.base}/volume/v3/"}]},
            "network": {"id": "v2.0", "status": "CURRENT",
                        "links": [{"rel": "self", "href": f"{self.base}/network/v2.0/"}]},
        }
        doc = docs[service]
        if re.search(r"/v[0-9.]+/?$", path):
            return {"version": doc}
        if service == "identity":
            return {"versions": {"values": [doc]}}
        return {"versions": [doc]}

    # ------------------------------------------------------------------ routes

    def _route_table(self) -> list[tuple[str, str, Route]]:
        k, c, v, n = "/identity/v3", "/compute/v2.1", r"/volume/v3/[^/]+", "/network/v2.0"
        return [
            ("GET", k + r"/(projects|users|domains)", self._keystone_list),
            ("GET", k + r"/(projects|users|domains)/([^/]+)", self._keystone_get),
            ("GET", c + r"/servers(/detail)?", self._servers_list),
            ("GET", c + r"/servers/([^/]+)", self._server_get),
            ("DELETE", c + r"/servers/([^/]+)", self._server_delete),
            ("POST", c + r"/servers/([^/]+)/action", self._server_action),
            ("GET", c + r"/servers/([^/]+)/os-volume_attachments", self._attachments_list),
            ("DELETE", c + r"/servers/([^/]+)/os-volume_attachments/([^/]+)", self._nova_detach),
            ("GET", v + r"/volumes(/detail)?", self._volumes_list),
            ("GET", v + r"/volumes/([^/]+)", self._volume_get),
            ("DELETE", v + r"/volumes/([^/]+)", self._volume_delete),
            ("POST", v + r"/volumes/([^/]+)/action", self._volume_action),
            ("DELETE", v + r"/attachments/([^/]+)", self._attachment_delete),
            ("GET", n + r"/(floatingips|ports)", self._neutron_list),
            ("GET", n + r"/(floatingips|ports)/([^/]+)", self._neutron_get),
            ("PUT", n + r"/(floatingips|ports)/([^/]+)", self._neutron_update),
            ("DELETE", n + r"/(floatingips|ports)/([^/]+)", self._neutron_delete),
            ("GET", n + r"/security-groups", self._groups_list),
            ("GET", n + r"/security-groups/([^/]+)", self._group_get),
            ("POST", n + r"/security-groups", self._group_create),
            ("GET", n + r"/security-group-rules", self._rules_list),
            ("DELETE", n + r"/security-group-rules/([^/]+)", self._rule_delete),
        ]

    def _keystone_list(self, m: re.Match[str], q: dict[str, list[str]], _: Any) -> tuple[int, Any]:
        kind = m.group(1)
        items = list(getattr(self, kind).values())
        if "domain_id" in q:
            items = [i for i in items if i.get("domain_id") == q["domain_id"][0]]
        return 200, {kind: items, "links": {"self": f"{self.base}/identity/v3/{kind}", "next": None,
                                            "previous": None}}

    def _keystone_get(self, m: re.Match[str], _q: Any, _b: Any) -> tuple[int, Any]:
        kind, ident = m.group(1), m.group(2)
        item = getattr(self, kind).get(ident)
        if item is None:
            return _not_found(kind[:-1], ident)
        return 200, {kind[:-1]: item}

    @staticmethod
    def _filter(items: list[dict[str, Any]], q: dict[str, list[str]], keys: dict[str, str]) -> list[Any]:
        for param, key in keys.items():
            if param in q:
                items = [i for i in items if str(i.get(key)) == q[param][0]]
        return items

    def _servers_list(self, _m: re.Match[str], q: dict[str, list[str]], _b: Any) -> tuple[int, Any]:
        items = self._filter(list(self.servers.values()), q,
                             {"project_id": "tenant_id", "tenant_id": "tenant_id", "user_id": "user_id"})
        return 200, {"servers": items}

    def _server_get(self, m: re.Match[str], _q: Any, _b: Any) -> tuple[int, Any]:
        server = self.servers.get(m.group(1))
        return (200, {"server": server}) if server else _nova_not_found("Instance", m.group(1))

    def _server_delete(self, m: re.Match[str], _q: Any, _b: Any) -> tuple[int, Any]:
        ident = m.group(1)
        if self.servers.pop(ident, None) is None:
            return _nova_not_found("Instance", ident)
        for volume in self.volumes.values():  # nova detaches the volumes first
            self._drop_attachments(volume, lambda a: a["server_id"] == ident)
        for port_id in [p["id"] for p in self.ports.values() if p["device_id"] == ident
                        and p["device_owner"].startswith("compute:")]:
            self._delete_port(port_id)  # the ports nova created for it go with it
        return 204, None

    def _server_action(self, m: re.Match[str], _q: Any, body: Any) -> tuple[int, Any]:
        server = self.servers.get(m.group(1))
        if server is None:
            return _nova_not_found("Instance", m.group(1))
        if "createImage" in (body or {}):
            image = str(uuid.uuid4())
            self.images[image] = {"id": image, "name": body["createImage"].get("name"),
                                  "server": server["id"], "owner": server["tenant_id"]}
            return 202, {"image_id": image}
        if "lock" in (body or {}) or "unlock" in (body or {}):
            server["locked"] = "lock" in body
            return 202, None
        return 400, {"badRequest": {"code": 400, "message": "unsupported action"}}

    def _attachments_list(self, m: re.Match[str], _q: Any, _b: Any) -> tuple[int, Any]:
        server = m.group(1)
        if server not in self.servers:
            return _nova_not_found("Instance", server)
        out = [{"id": a["volume_id"], "volumeId": a["volume_id"], "serverId": server, "device": a["device"],
                "tag": None, "delete_on_termination": False, "attachment_id": a["attachment_id"],
                "bdm_uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, a["attachment_id"]))}
               for v in self.volumes.values() for a in v["attachments"] if a["server_id"] == server]
        return 200, {"volumeAttachments": out}

    def _nova_detach(self, m: re.Match[str], _q: Any, _b: Any) -> tuple[int, Any]:
        server, volume_id = m.group(1), m.group(2)
        volume = self.volumes.get(volume_id)
        if server not in self.servers:
            return _nova_not_found("Instance", server)
        if volume is None or not any(a["server_id"] == server for a in volume["attachments"]):
            return _nova_not_found("Volume attachment", volume_id)
        self._drop_attachments(volume, lambda a: a["server_id"] == server)
        return 202, None

    def _drop_attachments(self, volume: dict[str, Any], which: Callable[[dict[str, Any]], bool]) -> None:
        gone = [a for a in volume["attachments"] if which(a)]
        volume["attachments"] = [a for a in volume["attachments"] if not which(a)]
        for att in gone:
            server = self.servers.get(att["server_id"])
            if server is not None:
                server["os-extended-volumes:volumes_attached"] = [
                    v for v in server["os-extended-volumes:volumes_attached"] if v["id"] != volume["id"]]
        if not volume["attachments"]:
            volume["status"] = "available"

    def _volumes_list(self, _m: re.Match[str], q: dict[str, list[str]], _b: Any) -> tuple[int, Any]:
        items = self._filter(list(self.volumes.values()), q, {"project_id": "os-vol-tenant-attr:tenant_id"})
        return 200, {"volumes": items}

    def _volume_get(self, m: re.Match[str], _q: Any, _b: Any) -> tuple[int, Any]:
        volume = self.volumes.get(m.group(1))
        if volume is None:
            return 404, {"itemNotFound": {"code": 404, "message": f"Volume {m.group(1)} could not be found."}}
        return 200, {"volume": volume}

    def _volume_delete(self, m: re.Match[str], _q: Any, _b: Any) -> tuple[int, Any]:
        volume = self.volumes.get(m.group(1))
        if volume is None:
            return 404, {"itemNotFound": {"code": 404, "message": f"Volume {m.group(1)} could not be found."}}
        if volume["status"] == "in-use" or volume["attachments"]:
            return 400, {"badRequest": {"code": 400, "message": "Invalid volume: Volume status must be "
                                        "available or error or error_restoring or error_extending or "
                                        "error_managing and must not be migrating, attached, belong to a "
                                        "group, have snapshots, awaiting a transfer, or be disassociated "
                                        "from snapshots after volume transfer."}}
        del self.volumes[m.group(1)]
        return 202, None

    def _volume_action(self, m: re.Match[str], _q: Any, body: Any) -> tuple[int, Any]:
        volume = self.volumes.get(m.group(1))
        if volume is None:
            return 404, {"itemNotFound": {"code": 404, "message": f"Volume {m.group(1)} could not be found."}}
        action = (body or {}).get("os-detach") or (body or {}).get("os-force_detach")
        if action is None:
            return 400, {"badRequest": {"code": 400, "message": "unsupported action"}}
        attachment = action.get("attachment_id")
        if not any(a["attachment_id"] == attachment for a in volume["attachments"]):
            return 400, {"badRequest": {"code": 400, "message": "Invalid volume: not attached"}}
        self._drop_attachments(volume, lambda a: a["attachment_id"] == attachment)
        return 202, None

    def _attachment_delete(self, m: re.Match[str], _q: Any, _b: Any) -> tuple[int, Any]:
        for volume in self.volumes.values():
            if any(a["attachment_id"] == m.group(1) for a in volume["attachments"]):
                self._drop_attachments(volume, lambda a: a["attachment_id"] == m.group(1))
                return 200, {"attachments": []}
        return 404, {"itemNotFound": {"code": 404, "message": f"Attachment {m.group(1)} could not be found."}}

    def _neutron_list(self, m: re.Match[str], q: dict[str, list[str]], _b: Any) -> tuple[int, Any]:
        kind = m.group(1)
        items = self._filter(list(getattr(self, kind).values()), q,
                             {"project_id": "project_id", "tenant_id": "project_id", "port_id": "port_id",
                              "device_id": "device_id"})
        for wanted in q.get("fixed_ips", []):  # neutron's fixed_ips=ip_address=10.0.0.5 filter
            key, _, value = wanted.partition("=")
            items = [i for i in items if any(str(f.get(key)) == value for f in i.get("fixed_ips", []))]
        return 200, {kind: items}

    def _groups_list(self, _m: re.Match[str], q: dict[str, list[str]], _b: Any) -> tuple[int, Any]:
        items = self._filter(list(self.security_groups.values()), q,
                             {"project_id": "project_id", "tenant_id": "project_id", "name": "name"})
        return 200, {"security_groups": [self._group_view(g) for g in items]}

    def _group_view(self, group: dict[str, Any]) -> dict[str, Any]:
        rules = [r for r in self.security_group_rules.values() if r["security_group_id"] == group["id"]]
        return {**group, "security_group_rules": rules}

    def _group_get(self, m: re.Match[str], _q: Any, _b: Any) -> tuple[int, Any]:
        group = self.security_groups.get(m.group(1))
        if group is None:
            return _neutron_not_found("SecurityGroup", m.group(1))
        return 200, {"security_group": self._group_view(group)}

    def _group_create(self, _m: re.Match[str], _q: Any, body: Any) -> tuple[int, Any]:
        spec = (body or {}).get("security_group", {})
        project = spec.get("project_id") or spec.get("tenant_id") or ADMIN_PROJECT
        ident = self.add_security_group(project, spec.get("name", ""))
        self.security_groups[ident]["description"] = spec.get("description", "")
        return 201, {"security_group": self._group_view(self.security_groups[ident])}

    def _rules_list(self, _m: re.Match[str], q: dict[str, list[str]], _b: Any) -> tuple[int, Any]:
        items = self._filter(list(self.security_group_rules.values()), q,
                             {"security_group_id": "security_group_id", "project_id": "project_id"})
        return 200, {"security_group_rules": items}

    def _rule_delete(self, m: re.Match[str], _q: Any, _b: Any) -> tuple[int, Any]:
        if self.security_group_rules.pop(m.group(1), None) is None:
            return _neutron_not_found("SecurityGroupRule", m.group(1))
        return 204, None

    def _neutron_get(self, m: re.Match[str], _q: Any, _b: Any) -> tuple[int, Any]:
        kind, ident = m.group(1), m.group(2)
        item = getattr(self, kind).get(ident)
        if item is None:
            return _neutron_not_found("FloatingIP" if kind == "floatingips" else "Port", ident)
        return 200, {kind[:-1]: item}

    def _neutron_update(self, m: re.Match[str], _q: Any, body: Any) -> tuple[int, Any]:
        kind, ident = m.group(1), m.group(2)
        item = getattr(self, kind).get(ident)
        if item is None:
            return _neutron_not_found("FloatingIP" if kind == "floatingips" else "Port", ident)
        changes = (body or {}).get(kind[:-1], {})
        unknown = [g for g in changes.get("security_groups", []) if g not in self.security_groups]
        if unknown:  # neutron checks the groups exist (and would check they are the port's project's)
            return _neutron_not_found("SecurityGroup", unknown[0])
        item.update(changes)
        if kind == "floatingips" and "port_id" in changes and changes["port_id"] is None:
            item.update({"fixed_ip_address": None, "router_id": None, "status": "DOWN"})
        item["revision_number"] += 1
        return 200, {kind[:-1]: item}

    def _neutron_delete(self, m: re.Match[str], _q: Any, _b: Any) -> tuple[int, Any]:
        kind, ident = m.group(1), m.group(2)
        if ident not in getattr(self, kind):
            return _neutron_not_found("FloatingIP" if kind == "floatingips" else "Port", ident)
        if kind == "ports":
            self._delete_port(ident)
        else:
            del self.floatingips[ident]
        return 204, None

    def _delete_port(self, ident: str) -> None:
        self.ports.pop(ident, None)
        for fip in self.floatingips.values():  # neutron disassociates a deleted port's floating IP
            if fip["port_id"] == ident:
                fip.update({"port_id": None, "fixed_ip_address": None, "router_id": None, "status": "DOWN"})
