"""Benign OpenStack traffic: keystone tokens, nova/neutron APIs, compute periodic tasks,
instance lifecycles with their notifications, neutron agents.

Message texts follow the real services (loghub OpenStack_2k templates for nova; keystone
``keystone.common.wsgi``; neutron's WSGI line with its two spaces before ``len``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from stackwatch.scenario import formats
from stackwatch.scenario.streams import Episode, arrivals, ticks
from stackwatch.scenario.world import (
    AGENTS,
    COMPUTES,
    CONTROLLERS,
    HOST_IP,
    OPS_TEAM,
    SERVICE_AGENT,
    VIP,
    Scene,
    hex32,
    mac,
    req_id,
    uuid4,
)

MIDDLEWARE_AGENT = "keystonemiddleware.auth_token/10.7.0 " + SERVICE_AGENT
FLAVORS = (("m1.small", 2048, 20, 1), ("m1.medium", 4096, 40, 2), ("m1.large", 8192, 80, 4))


def _client(sc: Scene, rng: random.Random) -> tuple[str, str, str, str]:
    """(source ip, user id, project id, user agent) of a keystone client."""
    w = sc.world
    r = rng.random()
    if r < 0.55:
        svc = rng.choice(list(w.service_ids))
        return (
            HOST_IP[rng.choice(CONTROLLERS + COMPUTES)],
            w.service_ids[svc],
            w.service_project,
            SERVICE_AGENT,
        )
    if r < 0.7:
        op = rng.choice(list(OPS_TEAM))
        return OPS_TEAM[op], w.ops_ids[op], w.admin_project, AGENTS[0]
    p = rng.choice(w.projects)
    _, uid = rng.choice(p.users)
    return f"172.16.{rng.randrange(4, 40)}.{rng.randrange(2, 250)}", uid, p.id, rng.choice(AGENTS)


def keystone_requests(sc: Scene, host: str, rng: random.Random, count: float) -> Iterator[Episode]:
    """Token issues (POST 201), token validations (GET 200) and a few reads."""
    access, ks = f"{host}/keystone_access.log", f"{host}/keystone.log"
    pid = sc.pid(host, "keystone")
    old = not sc.new(host)
    for t in arrivals(rng, sc.start, sc.end, count):
        ip, uid, pid_proj, agent = _client(sc, rng)
        req = req_id(rng)
        r = rng.random()
        if r < 0.45:
            method, path, status, size = "POST", "/v3/auth/tokens", 201, rng.randrange(5200, 9800)
            ctx = sc.ctx(host, req)
        elif r < 0.85:
            method, path, status, size = "GET", "/v3/auth/tokens", 200, rng.randrange(5200, 9800)
            ip, agent = HOST_IP[rng.choice(CONTROLLERS + COMPUTES)], MIDDLEWARE_AGENT
            ctx = sc.ctx(host, req, sc.world.service_ids["nova"], sc.world.service_project)
        else:
            method, status = "GET", 200
            path = rng.choice(
                (
                    f"/v3/users/{uid}/projects",
                    "/v3/projects",
                    f"/v3/projects/{pid_proj}",
                    "/v3/auth/catalog",
                    "/v3/role_assignments?user.id=" + uid,
                )
            )
            size = rng.randrange(400, 4000)
            ctx = sc.ctx(host, req, uid, pid_proj)
        micros = rng.randrange(9_000, 240_000)
        ep: Episode = [(t, access, formats.apache(t, ip, method, path, status, size, agent, micros))]
        if old:  # keystone.common.wsgi logs every request at INFO
            ep.append(
                (
                    t + micros // 3000,
                    ks,
                    formats.oslo(
                        t + micros // 3000,
                        pid,
                        "INFO",
                        "keystone.common.wsgi",
                        ctx,
                        f"{method} http://{VIP}:5000{path}",
                    ),
                )
            )
        yield ep


def nova_api_line(
    sc: Scene,
    host: str,
    t: int,
    req: str,
    user: str,
    project: str,
    ip: str,
    method: str,
    path: str,
    status: int,
    size: int,
    secs: float,
) -> tuple[int, str, str]:
    msg = f'{ip} "{method} {path} HTTP/1.1" status: {status} len: {size} time: {secs:.7f}'
    return (
        t,
        f"{host}/nova-api.log",
        formats.oslo(
            t,
            sc.pid(host, "nova-api"),
            "INFO",
            "nova.osapi_compute.wsgi.server",
            sc.ctx(host, req, user, project),
            msg,
        ),
    )


def nova_api_reads(sc: Scene, host: str, rng: random.Random, count: float) -> Iterator[Episode]:
    w = sc.world
    for t in arrivals(rng, sc.start, sc.end, count):
        if rng.random() < 0.3:
            op = rng.choice(list(OPS_TEAM))
            user, project, ip = w.ops_ids[op], w.admin_project, OPS_TEAM[op]
        else:
            p = rng.choice(w.projects)
            user, project = rng.choice(p.users)[1], p.id
            ip = f"172.16.{rng.randrange(4, 40)}.{rng.randrange(2, 250)}"
        path, size = rng.choice(
            (
                ("/v2.1/servers/detail", 1893),
                ("/v2.1/flavors/detail", 2650),
                ("/v2.1/limits", 640),
                ("/v2.1/os-availability-zone", 290),
                ("/v2.1/servers/detail?all_tenants=True", 15230),
            )
        )
        secs = rng.uniform(0.04, 0.45)
        yield [
            nova_api_line(
                sc,
                host,
                t,
                req_id(rng),
                user,
                project,
                ip,
                "GET",
                path,
                200,
                size + rng.randrange(0, 300),
                secs,
            )
        ]


NEUTRON_WARNINGS = (
    (
        "oslo_messaging._drivers.amqpdriver",
        "Number of call queues is 21, greater than warning "
        "threshold: 20. There could be a leak. Increasing threshold to: 40",
    ),
    (
        "neutron.api.rpc.agentnotifiers.dhcp_rpc_agent_api",
        "Unable to schedule network {net}: no agents "
        "available; will retry on subsequent port and subnet creation events.",
    ),
    ("neutron.db.l3_hamode_db", "Router {net} has no active HA agent bound; it will be rescheduled"),
)


def neutron_server(
    sc: Scene, host: str, rng: random.Random, count: float, level_drop_at: int | None = None
) -> Iterator[Episode]:
    """neutron-server API lines and ML2 chatter; ~6% WARNING, a few ERROR. After
    ``level_drop_at`` only WARNING/ERROR lines are written (log level raised)."""
    path = f"{host}/neutron-server.log"
    pid = sc.pid(host, "neutron-server")
    w = sc.world
    for t in arrivals(rng, sc.start, sc.end, count):
        req = req_id(rng)
        r = rng.random()
        if r < 0.06:
            logger, msg = rng.choice(NEUTRON_WARNINGS)
            level, msg = "WARNING", msg.format(net=uuid4(rng))
            ctx = sc.ctx(host, req)
        elif r < 0.065:
            level, logger = "ERROR", "neutron.plugins.ml2.managers"
            msg = (
                f"Failed to bind port {uuid4(rng)} on host {rng.choice(COMPUTES)} for vnic_type normal "
                "using segments [{'id': '" + uuid4(rng) + "', 'network_type': 'vxlan'}]"
            )
            ctx = sc.ctx(host, req)
        elif r < 0.8:
            level, logger = "INFO", "neutron.wsgi"
            ip = HOST_IP[rng.choice(CONTROLLERS + COMPUTES)]
            api = rng.choice(
                (
                    f"/v2.0/ports?device_id={uuid4(rng)}",
                    "/v2.0/networks?shared=True",
                    f"/v2.0/floatingips?port_id={uuid4(rng)}",
                    "/v2.0/security-groups",
                    f"/v2.0/subnets?network_id={uuid4(rng)}",
                )
            )
            msg = (
                f'{ip} "GET {api} HTTP/1.1" status: 200  len: {rng.randrange(200, 6000)} '
                f"time: {rng.uniform(0.01, 0.3):.7f}"
            )
            ctx = sc.ctx(host, req, w.service_ids["nova"], w.service_project)
        else:
            level = "INFO"
            logger, msg = rng.choice(
                (
                    ("neutron.plugins.ml2.plugin", "Port {p} changed owner from  to compute:nova"),
                    (
                        "neutron.notifiers.nova",
                        "Nova event matching ['req-{r}'] response: {{'server_uuid': "
                        "'{i}', 'name': 'network-vif-plugged', 'status': 'completed', 'tag': '{p}', "
                        "'code': 200}}",
                    ),
                    ("neutron.db.agents_db", "Agent healthcheck: found 0 dead agents out of 14:"),
                )
            )
            msg = msg.format(p=uuid4(rng), r=uuid4(rng), i=uuid4(rng))
            ctx = sc.ctx(host, req)
        if level_drop_at is not None and t >= level_drop_at and level == "INFO":
            continue
        yield [(t, path, formats.oslo(t, pid, level, logger, ctx, msg))]


def compute_periodic(sc: Scene, host: str, rng: random.Random, count: float) -> Iterator[Episode]:
    """nova-compute's resource audit (4 lines per tick) and, now and then, the image cache."""
    path = f"{host}/nova-compute.log"
    pid = sc.pid(host, "nova-compute")
    base = f"{rng.getrandbits(160):040x}"
    node = f"{host}.cloud.example.org"
    for t in ticks(rng, sc.start, sc.end, count, jitter_ms=900):
        req = req_id(rng)
        ctx = sc.ctx(host, req)
        used = rng.randrange(4, 40)
        ep: Episode = []
        for i, msg in enumerate(
            (
                f"Auditing locally available compute resources for node {node}",
                f"Total usable vcpus: 48, total allocated vcpus: {used}",
                f"Final resource view: name={node} phys_ram=257842MB used_ram={used * 2048 + 512}MB "
                f"phys_disk=1787GB used_disk={used * 20}GB total_vcpus=48 used_vcpus={used} pci_stats=[]",
                f"Compute_service record updated for {host}:{node}",
            )
        ):
            tt = t + i * 90 + rng.randrange(60)
            ep.append((tt, path, formats.oslo(tt, pid, "INFO", "nova.compute.resource_tracker", ctx, msg)))
        if rng.random() < 0.08:
            tt = t + 2000
            img = sc.world.image_id
            for i, msg in enumerate(
                (
                    f"image {img} at (/var/lib/nova/instances/_base/{base}): checking",
                    f"image {img} at (/var/lib/nova/instances/_base/{base}): in use: on this node "
                    f"{used // 3 + 1} local, 0 on other nodes sharing this instance storage",
                    f"Active base files: /var/lib/nova/instances/_base/{base}",
                )
            ):
                ep.append(
                    (
                        tt + i,
                        path,
                        formats.oslo(tt + i, pid, "INFO", "nova.virt.libvirt.imagecache", ctx, msg),
                    )
                )
        yield ep


def notification(
    t: int,
    rng: random.Random,
    publisher: str,
    event_type: str,
    payload: dict[str, Any],
    req: str | None = None,
    user: str | None = None,
    project: str | None = None,
) -> str:
    """One oslo.messaging notification as it travels on the bus (v2 envelope)."""
    msg: dict[str, Any] = {
        "message_id": uuid4(rng),
        "publisher_id": publisher,
        "event_type": event_type,
        "priority": "INFO",
        "payload": payload,
        "timestamp": formats.notif_ts(t, rng.randrange(1000)),
    }
    if req is not None:
        msg["_context_request_id"] = req
        msg["_context_user_id"] = user
        msg["_context_project_id"] = project
    msg["_unique_id"] = hex32(rng)
    return formats.envelope(msg)


def instance_payload(
    t: int,
    inst: str,
    name: str,
    host: str,
    user: str,
    project: str,
    flavor: tuple[str, int, int, int],
    state: str,
    launched: int | None,
) -> dict[str, Any]:
    return {
        "tenant_id": project,
        "user_id": user,
        "instance_id": inst,
        "display_name": name,
        "reservation_id": "r-" + inst[:8],
        "hostname": name,
        "host": host,
        "node": f"{host}.cloud.example.org",
        "instance_type": flavor[0],
        "memory_mb": flavor[1],
        "root_gb": flavor[2],
        "disk_gb": flavor[2],
        "vcpus": flavor[3],
        "state": state,
        "state_description": "",
        "availability_zone": "nova",
        "created_at": formats.iso_sec(t // 1000) + "+00:00",
        "launched_at": (formats.iso_sec(launched // 1000) + ".000000") if launched else "",
        "image_ref_url": f"http://{VIP}:9292/images/" + "{image}",
    }


class Lifecycle:
    """Instances created, sometimes given a volume, and deleted: nova-api on a controller,
    nova-compute and ovs on a compute node, notifications on the bus (ctl1/notifications.json).

    Also used by the orphaned-resources incident, with a fixed project and no delete.
    """

    def __init__(self, sc: Scene, rng: random.Random) -> None:
        self.sc, self.rng = sc, rng
        self.notif = "ctl1/notifications.json"

    def build(
        self,
        t: int,
        project: str,
        user: str,
        compute: str,
        api_host: str,
        volume: bool,
        delete_after: int | None,
        name: str | None = None,
    ) -> tuple[Episode, str, str | None]:
        """One instance's episode; returns (lines, instance uuid, volume uuid or None)."""
        sc, rng = self.sc, self.rng
        inst, req = uuid4(rng), req_id(rng)
        flavor = rng.choice(FLAVORS)
        name = name or f"vm-{inst[:6]}"
        client_ip = f"172.16.{rng.randrange(4, 40)}.{rng.randrange(2, 250)}"
        ep: Episode = [
            nova_api_line(
                sc,
                api_host,
                t,
                req,
                user,
                project,
                client_ip,
                "POST",
                "/v2.1/servers",
                202,
                894 + rng.randrange(40),
                rng.uniform(0.6, 1.4),
            )
        ]
        cpath = f"{compute}/nova-compute.log"
        cpid = sc.pid(compute, "nova-compute")
        ctx = sc.ctx(compute, req, user, project)
        lctx = sc.ctx(compute, req_id(rng))  # lifecycle events run outside the request
        pre = f"[instance: {inst}] "
        tc = t + rng.randrange(1500, 4000)
        payload = instance_payload(t, inst, name, compute, user, project, flavor, "building", None)
        payload["image_ref_url"] = payload["image_ref_url"].format(image=sc.world.image_id)
        ep.append(
            (
                tc,
                self.notif,
                notification(
                    tc,
                    rng,
                    f"compute.{compute}",
                    "compute.instance.create.start",
                    payload,
                    req,
                    user,
                    project,
                ),
            )
        )
        claims = (
            f"Attempting claim: memory {flavor[1]} MB, disk {flavor[2]} GB, vcpus {flavor[3]} CPU",
            "Total memory: 257842 MB, used: 24576.00 MB",
            "memory limit: 386763.00 MB, free: 362187.00 MB",
            "Total disk: 1787 GB, used: 240.00 GB",
            "disk limit not specified, defaulting to unlimited",
            "Total vcpu: 48 VCPU, used: 12.00 VCPU",
            "vcpu limit not specified, defaulting to unlimited",
            "Claim successful",
        )
        for i, msg in enumerate(claims):
            ep.append(
                (tc + i, cpath, formats.oslo(tc + i, cpid, "INFO", "nova.compute.claims", ctx, pre + msg))
            )
        tc += 400
        ep.append(
            (
                tc,
                cpath,
                formats.oslo(tc, cpid, "INFO", "nova.virt.libvirt.driver", ctx, pre + "Creating image"),
            )
        )
        tap = "tap" + uuid4(rng)[:11]
        port_no = rng.randrange(3, 90)
        tv = tc + rng.randrange(3000, 9000)
        ep.append(
            (
                tv,
                f"{compute}/syslog",
                formats.syslog(
                    tv,
                    compute,
                    f"ovs-vswitchd[{sc.pid(compute, 'ovs-vswitchd')}]",
                    f"ovs|{rng.randrange(10000, 99999):05d}|bridge|INFO|bridge br-int: added interface {tap} "
                    f"on port {port_no}",
                ),
            )
        )
        tv += 800
        ep.append(
            (
                tv,
                f"{api_host}/nova-api.log",
                formats.oslo(
                    tv,
                    sc.pid(api_host, "nova-api"),
                    "INFO",
                    "nova.api.openstack.compute.server_external_events",
                    sc.ctx(api_host, req_id(rng), sc.world.service_ids["neutron"], sc.world.service_project),
                    f"Creating event network-vif-plugged:{uuid4(rng)} for instance {inst} on {compute}",
                ),
            )
        )
        spawn = rng.uniform(8, 25)
        ts = tc + int(spawn * 1000)
        for i, (logger, c, msg) in enumerate(
            (
                ("nova.compute.manager", lctx, "VM Started (Lifecycle Event)"),
                ("nova.compute.manager", lctx, "VM Paused (Lifecycle Event)"),
                (
                    "nova.compute.manager",
                    lctx,
                    "During sync_power_state the instance has a pending task (spawning). Skip.",
                ),
                ("nova.compute.manager", lctx, "VM Resumed (Lifecycle Event)"),
                ("nova.virt.libvirt.driver", ctx, "Instance spawned successfully."),
                (
                    "nova.compute.manager",
                    ctx,
                    f"Took {spawn:.2f} seconds to spawn the instance on the hypervisor.",
                ),
                ("nova.compute.manager", ctx, f"Took {spawn + 2.1:.2f} seconds to build instance."),
            )
        ):
            ep.append((ts + i * 60, cpath, formats.oslo(ts + i * 60, cpid, "INFO", logger, c, pre + msg)))
        te = ts + 500
        payload = instance_payload(t, inst, name, compute, user, project, flavor, "active", te)
        payload["image_ref_url"] = payload["image_ref_url"].format(image=sc.world.image_id)
        ep.append(
            (
                te,
                self.notif,
                notification(
                    te, rng, f"compute.{compute}", "compute.instance.create.end", payload, req, user, project
                ),
            )
        )
        vol = None
        vpayload: dict[str, Any] | None = None
        if volume:
            vol = uuid4(rng)
            ta = te + rng.randrange(30_000, 200_000)
            vreq = req_id(rng)
            ep.append(
                nova_api_line(
                    sc,
                    api_host,
                    ta,
                    vreq,
                    user,
                    project,
                    client_ip,
                    "POST",
                    f"/v2.1/servers/{inst}/os-volume_attachments",
                    200,
                    194,
                    rng.uniform(0.3, 0.9),
                )
            )
            tb = ta + rng.randrange(800, 3000)
            ep.append(
                (
                    tb,
                    cpath,
                    formats.oslo(
                        tb,
                        cpid,
                        "INFO",
                        "nova.compute.manager",
                        sc.ctx(compute, vreq, user, project),
                        f"{pre}Attaching volume {vol} to /dev/vdb",
                    ),
                )
            )
            vpayload = {
                "tenant_id": project,
                "user_id": user,
                "volume_id": vol,
                "display_name": f"{name}-data",
                "size": rng.choice((10, 20, 50, 100)),
                "status": "in-use",
                "availability_zone": "nova",
                "host": "ctl1@lvm#lvm",
                "created_at": formats.iso_sec(ta // 1000) + "+00:00",
                "volume_attachment": [
                    {
                        "id": uuid4(rng),
                        "volume_id": vol,
                        "instance_uuid": inst,
                        "attached_host": compute,
                        "mountpoint": "/dev/vdb",
                        "attach_status": "attached",
                        "attach_mode": "rw",
                    }
                ],
            }
            tn = tb + rng.randrange(900, 2500)
            ep.append(
                (
                    tn,
                    self.notif,
                    notification(tn, rng, "volume.ctl1", "volume.attach.end", vpayload, vreq, user, project),
                )
            )
        if delete_after is not None:
            td = te + delete_after
            dreq = req_id(rng)
            dctx = sc.ctx(compute, dreq, user, project)
            ep.append(
                nova_api_line(
                    sc,
                    api_host,
                    td,
                    dreq,
                    user,
                    project,
                    client_ip,
                    "DELETE",
                    f"/v2.1/servers/{inst}",
                    204,
                    203,
                    rng.uniform(0.1, 0.4),
                )
            )
            if vpayload is not None:  # nova detaches the volume before the instance goes
                dpay = {**vpayload, "status": "available", "volume_attachment": []}
                tdv = td + 150
                ep.append(
                    (
                        tdv,
                        self.notif,
                        notification(tdv, rng, "volume.ctl1", "volume.detach.end", dpay, dreq, user, project),
                    )
                )
            tk = td + rng.randrange(300, 1200)
            payload = instance_payload(t, inst, name, compute, user, project, flavor, "active", te)
            payload["image_ref_url"] = payload["image_ref_url"].format(image=sc.world.image_id)
            ep.append(
                (
                    tk,
                    self.notif,
                    notification(
                        tk,
                        rng,
                        f"compute.{compute}",
                        "compute.instance.delete.start",
                        payload,
                        dreq,
                        user,
                        project,
                    ),
                )
            )
            destroy, dealloc = rng.uniform(0.4, 2.5), rng.uniform(0.3, 1.5)
            for i, (logger, c, msg) in enumerate(
                (
                    ("nova.compute.manager", dctx, "Terminating instance"),
                    ("nova.compute.manager", lctx, "VM Stopped (Lifecycle Event)"),
                    ("nova.virt.libvirt.driver", dctx, "Instance destroyed successfully."),
                    (
                        "nova.virt.libvirt.driver",
                        dctx,
                        f"Deleting instance files /var/lib/nova/instances/{inst}_del",
                    ),
                    (
                        "nova.virt.libvirt.driver",
                        dctx,
                        f"Deletion of /var/lib/nova/instances/{inst}_del complete",
                    ),
                    (
                        "nova.compute.manager",
                        dctx,
                        f"Took {destroy:.2f} seconds to destroy the instance on the hypervisor.",
                    ),
                    (
                        "nova.compute.manager",
                        dctx,
                        f"Took {dealloc:.2f} seconds to deallocate network for instance.",
                    ),
                )
            ):
                tt = tk + 100 + i * 150
                ep.append((tt, cpath, formats.oslo(tt, cpid, "INFO", logger, c, pre + msg)))
            tt = tk + 400
            ep.append(
                (
                    tt,
                    f"{compute}/syslog",
                    formats.syslog(
                        tt,
                        compute,
                        f"ovs-vswitchd[{sc.pid(compute, 'ovs-vswitchd')}]",
                        f"ovs|{rng.randrange(10000, 99999):05d}|bridge|INFO|bridge br-int: "
                        f"deleted interface {tap} "
                        f"on port {port_no}",
                    ),
                )
            )
            tt = tk + 2500
            payload["state"] = "deleted"
            ep.append(
                (
                    tt,
                    self.notif,
                    notification(
                        tt,
                        rng,
                        f"compute.{compute}",
                        "compute.instance.delete.end",
                        payload,
                        dreq,
                        user,
                        project,
                    ),
                )
            )
        return ep, inst, vol


def instances(sc: Scene, rng: random.Random, count: float) -> Iterator[Episode]:
    """Background instance churn across the cloud."""
    life = Lifecycle(sc, rng)
    for t in arrivals(rng, sc.start, sc.end, count):
        p = rng.choice(sc.world.projects)
        user = rng.choice(p.users)[1]
        ep, _, _ = life.build(
            t,
            p.id,
            user,
            rng.choice(COMPUTES),
            rng.choice(CONTROLLERS),
            volume=rng.random() < 0.3,
            delete_after=rng.randrange(300_000, 3_600_000) if rng.random() < 0.7 else None,
        )
        yield ep


def neutron_agents(sc: Scene, host: str, rng: random.Random, count: float) -> Iterator[Episode]:
    """ovs / l3 / dhcp / metadata agent chatter on the network node."""
    pids = {a: sc.pid(host, a) for a in ("ovs", "l3", "dhcp", "meta")}
    for t in arrivals(rng, sc.start, sc.end, count):
        r = rng.random()
        req = req_id(rng)
        if r < 0.35:
            path, pid, logger = (
                f"{host}/neutron-openvswitch-agent.log",
                pids["ovs"],
                "neutron.plugins.ml2.drivers.openvswitch.agent.ovs_neutron_agent",
            )
            port = uuid4(rng)
            msg = rng.choice(
                (
                    f"Port {port} updated. Details: {{'device': '{port}', 'network_id': '{uuid4(rng)}', "
                    f"'admin_state_up': True, 'network_type': 'vxlan', "
                    f"'segmentation_id': {rng.randrange(1, 4000)}, "
                    f"'mac_address': '{mac(rng)}', 'device_owner': 'network:router_interface'}}",
                    f"Configuration for devices up ['{port}'] and devices down [] completed.",
                )
            )
            if rng.random() < 0.3:
                logger, msg = (
                    "neutron.agent.securitygroups_rpc",
                    f"Security group member updated ['{uuid4(rng)}']",
                )
        elif r < 0.6:
            path, pid, logger = f"{host}/neutron-l3-agent.log", pids["l3"], "neutron.agent.l3.agent"
            msg = (
                f"Finished a router update for {uuid4(rng)}, update_id {uuid4(rng)}. "
                f"Time elapsed: {rng.uniform(0.2, 3.0):.3f}"
            )
        elif r < 0.8:
            path, pid, logger = f"{host}/neutron-dhcp-agent.log", pids["dhcp"], "neutron.agent.dhcp.agent"
            msg = f"DHCP configuration for ports {{'{uuid4(rng)}'}} is completed"
        else:
            path, pid, logger = f"{host}/neutron-metadata-agent.log", pids["meta"], "eventlet.wsgi.server"
            ip = f"192.168.{rng.randrange(0, 20)}.{rng.randrange(3, 250)}"
            res = rng.choice(("instance-id", "hostname", "public-keys/", "local-ipv4", "placement/"))
            msg = (
                f'{ip},<local> "GET /latest/meta-data/{res} HTTP/1.1" status: 200  len: '
                f"{rng.randrange(130, 400)} time: {rng.uniform(0.05, 0.4):.7f}"
            )
            yield [(t, path, formats.oslo(t, pid, "INFO", logger, "-", msg))]
            continue
        yield [(t, path, formats.oslo(t, pid, "INFO", logger, sc.ctx(host, req), msg))]
