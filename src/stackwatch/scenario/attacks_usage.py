"""Cloud-usage and hardware incidents: a leaked credential launching GPU instances, a steady
CI project that must stay quiet, and a disk failing on a compute node.

Shapes: nova's legacy ``compute.instance.create.end`` payload (as ``bg_openstack`` writes it),
keystone's CADF ``identity.application_credential.created``, ``identity.user.created`` (target
``data/security/account/user``: the new user) and ``identity.authenticate`` success, nova-api's
access line and its
"Quota exceeded for instances" refusal (nova/api/openstack/wsgi.py logs ``HTTP exception
thrown: %s`` at INFO), and the kernel / smartd lines of parsers/vectors/hardware.yaml.
"""

from __future__ import annotations

import random

from stackwatch.scenario import formats
from stackwatch.scenario.bg_openstack import instance_payload, notification, nova_api_line
from stackwatch.scenario.streams import Episode, ticks
from stackwatch.scenario.world import VIP, Project, Scene, hex32, req_id, uuid4

NOTIF = "ctl1/notifications.json"
ATTACKER_IP = "185.220.101.47"
GPU_FLAVOR = ("g1.gpu.xlarge", 131_072, 200, 32)
CI_FLAVOR = ("m1.small", 2048, 20, 1)
CI_PER_DAY = 200
LAUNCHES = 32
NEW_USER_LAUNCHES = 3
QUOTA_REFUSALS = 6


def _create_end(sc: Scene, rng: random.Random, t: int, compute: str, user: str, project: str,
                flavor: tuple[str, int, int, int], image: str, name: str, req: str) -> tuple[str, str]:
    """(instance id, the compute.instance.create.end envelope)."""
    inst = uuid4(rng)
    payload = instance_payload(t, inst, name, compute, user, project, flavor, "active", t)
    payload["image_ref_url"] = f"http://{VIP}:9292/images/{image}"
    return inst, notification(t, rng, f"compute.{compute}", "compute.instance.create.end", payload, req, user,
                              project)


def ci_runners(sc: Scene, rng: random.Random, project: Project) -> Episode:
    """A CI project creating and deleting CI_PER_DAY instances a day, evenly (notifications only):
    a busy baseline that no usage rule may flag."""
    ep: Episode = []
    user = project.users[0][1]
    count = CI_PER_DAY * (sc.end - sc.start) / 86_400_000
    for t in ticks(rng, sc.start, sc.end, count, jitter_ms=20_000):
        req = req_id(rng)
        compute = rng.choice(("cmp1", "cmp2", "cmp4"))
        inst, line = _create_end(sc, rng, t, compute, user, project.id, CI_FLAVOR, sc.world.image_id,
                                 f"ci-job-{rng.randrange(10**6)}", req)
        ep.append((t, NOTIF, line))
        gone = t + rng.randrange(180_000, 420_000)
        payload = {"tenant_id": project.id, "user_id": user, "instance_id": inst, "state": "deleted",
                   "host": compute}
        ep.append((gone, NOTIF, notification(gone, rng, f"compute.{compute}", "compute.instance.delete.end",
                                             payload, req_id(rng), user, project.id)))
    return ep


def leaked_credential(sc: Scene, rng: random.Random, t: int, project: Project) -> tuple[str, Episode]:
    """A user's password leaked: the intruder mints an application credential, then launches
    GPU instances from their own address until the quota refuses. Returns (user id, lines)."""
    name, user = project.users[1]
    cred = hex32(rng)
    payload = {
        "typeURI": "http://schemas.dmtf.org/cloud/audit/1.0/event", "eventType": "activity", "id": uuid4(rng),
        "eventTime": formats.iso_utc(t, rng.randrange(1000)), "action": "created.application_credential",
        "outcome": "success", "observer": {"id": sc.world.observer_id, "typeURI": "service/security"},
        "initiator": {"id": user, "typeURI": "service/security/account/user",
                      "host": {"address": ATTACKER_IP, "agent": "python-openstackclient/6.6.0"},
                      "user_id": user, "project_id": project.id, "request_id": req_id(rng), "username": name},
        "target": {"id": cred, "typeURI": "data/security/account/user/application_credential"},
        "resource_info": cred,
    }
    ep: Episode = [(t, NOTIF, notification(t, rng, "identity.ctl2", "identity.application_credential.created",
                                           payload))]
    image = uuid4(rng)  # their own image, never booted in the project
    at = t + 90_000
    for i in range(LAUNCHES):
        req = req_id(rng)
        ep.append(nova_api_line(sc, "ctl1", at, req, user, project.id, ATTACKER_IP, "POST", "/v2.1/servers",
                                 202, 1024 + rng.randrange(40), rng.uniform(0.8, 1.6)))
        done = at + rng.randrange(20_000, 40_000)
        _, line = _create_end(sc, rng, done, rng.choice(("cmp1", "cmp2", "cmp4")), user, project.id,
                              GPU_FLAVOR, image, f"worker-{i:02d}", req)
        ep.append((done, NOTIF, line))
        at += rng.randrange(8_000, 16_000)
    for _ in range(QUOTA_REFUSALS):
        req = req_id(rng)
        refusal = ("HTTP exception thrown: Quota exceeded for instances: Requested 1, but already used "
                   f"{LAUNCHES} of {LAUNCHES} instances")
        ep.append((at, "ctl1/nova-api.log",
                   formats.oslo(at, sc.pid("ctl1", "nova-api"), "INFO", "nova.api.openstack.wsgi",
                          sc.ctx("ctl1", req, user, project.id), refusal)))
        ep.append(nova_api_line(sc, "ctl1", at + 2, req, user, project.id, ATTACKER_IP, "POST",
                                 "/v2.1/servers", 403, 360, rng.uniform(0.1, 0.3)))
        at += rng.randrange(15_000, 30_000)
    return user, ep


def _cadf(sc: Scene, rng: random.Random, t: int, action: str, initiator: dict[str, object],
          target: dict[str, object], **extra: object) -> dict[str, object]:
    return {"typeURI": "http://schemas.dmtf.org/cloud/audit/1.0/event", "eventType": "activity",
            "id": uuid4(rng), "eventTime": formats.iso_utc(t, rng.randrange(1000)), "action": action,
            "outcome": "success",
            "observer": {"id": sc.world.observer_id, "typeURI": "service/security"},
            "initiator": initiator, "target": target, **extra}


def created_user(sc: Scene, rng: random.Random, t: int, project: Project) -> Episode:
    """With the same leaked account (a manager of its project), the intruder creates a user of
    their own, logs in as it and launches NEW_USER_LAUNCHES servers at once from their address."""
    name, creator = project.users[1]
    new_user, new_name = hex32(rng), "svc-backup"
    agent = "python-openstackclient/6.6.0"
    made = _cadf(sc, rng, t, "created.user",
                 {"id": creator, "typeURI": "service/security/account/user",
                  "host": {"address": ATTACKER_IP, "agent": agent}, "user_id": creator,
                  "project_id": project.id, "request_id": req_id(rng), "username": name},
                 {"id": new_user, "typeURI": "data/security/account/user"}, resource_info=new_user)
    ep: Episode = [(t, NOTIF, notification(t, rng, "identity.ctl2", "identity.user.created", made))]
    at = t + 40_000
    login = _cadf(sc, rng, at, "authenticate",
                  {"id": new_user, "typeURI": "service/security/account/user",
                   "host": {"address": ATTACKER_IP, "agent": agent}, "request_id": req_id(rng),
                   "user_id": new_user, "username": new_name},
                  {"id": uuid4(rng), "typeURI": "service/security/account/user"})
    ep.append((at, NOTIF, notification(at, rng, "identity.ctl2", "identity.authenticate", login)))
    for _ in range(NEW_USER_LAUNCHES):
        at += rng.randrange(10_000, 20_000)
        ep.append(nova_api_line(sc, "ctl1", at, req_id(rng), new_user, project.id, ATTACKER_IP, "POST",
                                 "/v2.1/servers", 202, 1024 + rng.randrange(40), rng.uniform(0.8, 1.6)))
    return ep


def failing_disk(sc: Scene, rng: random.Random, host: str, t: int) -> Episode:
    """/dev/sdb of a compute node dies: smartd sees pending sectors, reads fail, ext4 gives up,
    smartd's next check fails the drive."""
    sysl = f"{host}/syslog"
    smartd = f"smartd[{sc.pid(host, 'smartd')}]"
    boot = sc.world.boot[host]

    def kernel(at: int, msg: str) -> tuple[int, str, str]:
        return (at, sysl, formats.syslog(at, host, "kernel", f"{formats.kernel_stamp(at, boot)} {msg}"))

    ep: Episode = [(t, sysl, formats.syslog(t, host, smartd, "Device: /dev/sdb [SAT], 8 Currently unreadable "
                                                        "(pending) sectors"))]
    at = t + 240_000
    sector = 1_953_525_160
    for _ in range(6):
        ep.append(kernel(at, "ata3.00: failed command: READ FPDMA QUEUED"))
        ep.append(kernel(at + 5, f"blk_update_request: I/O error, dev sdb, sector {sector} op 0x0:(READ) "
                                 "flags 0x80700 phys_seg 1 prio class 0"))
        sector += rng.randrange(8, 4096)
        at += rng.randrange(20_000, 60_000)
    ep.append(kernel(at, "Buffer I/O error on dev sdb1, logical block 244190390, async page read"))
    ep.append(kernel(at + 400, "EXT4-fs error (device sdb1): ext4_find_entry:1455: inode #2: comm "
                               "nova-compute: reading directory lblock 0"))
    failed = "Device: /dev/sdb [SAT], FAILED SMART self-check. BACK UP DATA NOW!"
    ep.append((at + 300_000, sysl, formats.syslog(at + 300_000, host, smartd, failed)))
    return ep
