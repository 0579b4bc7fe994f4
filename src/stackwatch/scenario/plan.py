"""The incident timeline: which attack happens when and where, what it changes in the
background (a source falls silent, a host reboots, a log level is raised), and the
manifest entry that records it.

Times are fractions of the scenario's duration, so a 10-minute test scenario and a
2-hour demo hold the same story. Large scenarios add more attack *campaigns* (keystone
and sshd brute force, spraying from further addresses) so that about 1.5% of all lines
stay security-relevant.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from stackwatch.scenario import attacks_auth, attacks_host, attacks_usage
from stackwatch.scenario.manifest import Incident
from stackwatch.scenario.streams import Episode, Gate
from stackwatch.scenario.world import HOST_IP, HOSTS, Scene

SECURITY_SHARE = 0.015
CAMPAIGN_LINES = 600  # lines of one extra campaign
KEYSTONE_LINES_PER_ATTEMPT = 3.0
SSH_LINES_PER_ATTEMPT = 4.6


@dataclass(slots=True)
class Plan:
    incidents: list[Incident] = field(default_factory=list)
    streams: list[Iterator[Episode]] = field(default_factory=list)
    path_gates: dict[str, Gate] = field(default_factory=dict)
    level_drop: dict[str, int] = field(default_factory=dict)  # host -> time neutron-server drops INFO
    lines: float = 0.0  # expected attack lines

    def gate(self, path: str) -> Gate:
        return self.path_gates.setdefault(path, Gate())

    def add(
        self,
        episodes: list[Episode],
        category: str,
        host: str,
        entity: str,
        description: str,
        markers: list[str],
        explained: bool = False,
    ) -> None:
        """Record an incident whose lines are all in ``episodes`` (already built)."""
        lines = [line for ep in episodes for line in ep]
        self.add_lines(episodes)
        self.incidents.append(
            Incident.span(
                category,
                host,
                entity,
                min(x[0] for x in lines),
                max(x[0] for x in lines),
                description,
                [x[1] for x in lines],
                markers,
                explained,
            )
        )

    def add_lines(self, episodes: list[Episode]) -> None:
        episodes = sorted((ep for ep in episodes if ep), key=lambda ep: min(x[0] for x in ep))
        self.streams.append(iter(episodes))
        self.lines += sum(len(ep) for ep in episodes)


def build_plan(sc: Scene, target_lines: int, attacks: bool) -> Plan:
    plan = Plan()
    w, t0, dur = sc.world, sc.start, sc.end - sc.start
    rng = w.stream_rng("plan")

    def at(f: float) -> int:
        return t0 + int(f * dur)

    # AIDE runs every so often on ctl1; the first one finds nothing.
    plan.add_lines([attacks_host.aide_report(rng, "ctl1", at(0.25), [], [], 183_211)])
    # The CI project creates and deletes 200 instances a day, evenly: busy, and never an alert.
    plan.add_lines([attacks_usage.ci_runners(sc, w.stream_rng("ci"), w.projects[3])])
    if not attacks:
        plan.add_lines([attacks_host.aide_report(rng, "ctl1", at(0.86), [], [], 183_211)])
        return plan

    projects = w.projects
    # --- keystone -------------------------------------------------------------------
    victim = projects[0].users[0]
    times, gen = attacks_auth.brute_force(sc, rng, at(0.12), "203.0.113.45", victim[0], victim[1], 40, 6_000)
    _lazy(
        plan,
        gen,
        times,
        40 * KEYSTONE_LINES_PER_ATTEMPT,
        "auth.bruteforce",
        attacks_auth.controller_for("203.0.113.45"),
        "203.0.113.45",
        f"keystone password brute force against {victim[0]} from 203.0.113.45 (changing "
        "partial_password_hash)",
        ["203.0.113.45"],
        keystone=True,
    )

    existing = [u for p in projects[1:7] for u in p.users[:2]][:12]
    ghosts = ["admin1", "test", "backup", "operator", "guest", "demo", "svc_monitor", "root"]
    accts: list[tuple[str, str | None]] = [(n, i) for n, i in existing]
    accts += [(n, None) for n in ghosts]
    rng.shuffle(accts)
    times, gen = attacks_auth.spraying(sc, rng, at(0.20), "198.51.100.23", accts, 12_000)
    _lazy(
        plan,
        gen,
        times,
        len(accts) * (KEYSTONE_LINES_PER_ATTEMPT + 0.3),
        "auth.spraying",
        attacks_auth.controller_for("198.51.100.23"),
        "198.51.100.23",
        f"password spraying: one password against {len(accts)} accounts from 198.51.100.23",
        ["198.51.100.23", "Could not find user: svc_monitor"],
        keystone=True,
    )

    eps: list[Episode] = []
    t = at(0.28)
    ips = [f"192.0.2.{10 + i * 7}" for i in range(14)]
    for rnd in range(2):
        for ip in ips:
            eps.append(
                attacks_auth.keystone_attempt(
                    sc,
                    rng,
                    t,
                    ip,
                    "admin",
                    w.admin_id,
                    rng.choice(attacks_auth.ATTACK_AGENTS),
                    password_hash=attacks_auth.pw_hash(rng),
                )
            )
            t += rng.randrange(20_000, 60_000) if rnd == 0 else rng.randrange(10_000, 40_000)
    plan.add(
        eps,
        "auth.targeted_account",
        _busiest(eps),
        "admin",
        f"the admin account attacked from {len(ips)} addresses",
        ["192.0.2.10", "192.0.2.101"],
    )

    sa_ip, sa_user = "192.0.2.77", projects[1].users[0]
    t = at(0.36)
    eps = []
    for _ in range(8):
        eps.append(
            attacks_auth.keystone_attempt(
                sc,
                rng,
                t,
                sa_ip,
                sa_user[0],
                sa_user[1],
                attacks_auth.ATTACK_AGENTS[0],
                password_hash=attacks_auth.pw_hash(rng),
            )
        )
        t += rng.randrange(3_000, 8_000)
    eps.append(
        attacks_auth.keystone_attempt(
            sc, rng, t, sa_ip, sa_user[0], sa_user[1], attacks_auth.ATTACK_AGENTS[0], success=True
        )
    )
    plan.add(
        eps,
        "auth.success_after_failures",
        attacks_auth.controller_for(sa_ip),
        sa_ip,
        f"8 failed keystone logins for {sa_user[0]} from {sa_ip}, then a token issued (201)",
        [f"{sa_ip} - - ", '"POST /v3/auth/tokens HTTP/1.1" 201'],
    )

    lock_ip = next(
        f"203.0.113.{i}" for i in range(200, 255) if attacks_auth.controller_for(f"203.0.113.{i}") == "ctl3"
    )
    lock_user = projects[3].users[1]
    t = at(0.40)
    eps = []
    for i in range(7):
        locked = 5 if i >= 5 else None
        eps.append(
            attacks_auth.keystone_attempt(
                sc,
                rng,
                t,
                lock_ip,
                lock_user[0],
                lock_user[1],
                attacks_auth.ATTACK_AGENTS[1],
                password_hash=attacks_auth.pw_hash(rng),
                locked_after=locked,
            )
        )
        t += rng.randrange(4_000, 9_000)
    plan.add(
        eps,
        "auth.lockout",
        "ctl3",
        lock_user[0],
        f"{lock_user[0]} locked out after 5 failed logins from {lock_ip}",
        ["Maximum number of 5 login attempts exceeded.", f"The account is locked for user: {lock_user[1]}."],
    )

    # --- the intrusion on cmp2 ---------------------------------------------------------
    attacker, target = "45.155.205.233", "cmp2"
    plan.add(
        [attacks_host.suricata_alert(rng, "net1", at(0.44) - 2000, attacker, HOST_IP[target])],
        "ids.alert",
        "net1",
        attacker,
        "Suricata: ET SCAN Potential SSH Scan towards cmp2",
        ['"signature_id":2001219'],
    )
    times, gen = attacks_auth.ssh_failures(sc, rng, target, at(0.44), attacker, 60, 4_000)
    _lazy(
        plan,
        gen,
        times,
        60 * SSH_LINES_PER_ATTEMPT,
        "auth.bruteforce",
        target,
        attacker,
        f"sshd password brute force on {target} from {attacker}",
        [f"rhost={attacker}"],
        keystone=False,
    )
    t_login = at(0.52)
    plan.add(
        [attacks_auth.ssh_root_login(sc, rng, target, t_login, attacker)],
        "os.login",
        target,
        "root",
        f"root logs in on {target} with a password from {attacker}, an address never seen before",
        [f"Accepted password for root from {attacker}"],
    )
    plan.add(
        [attacks_host.iptables_flush(sc, rng, target, at(0.53), 0, sc.session(t_login, 6))],
        "firewall.flush",
        target,
        "filter",
        f"iptables -t filter --flush run as root on {target} (auditd)",
        ['a4="--flush"', "entries=0"],
    )
    eicar = "/tmp/.ICE-unix/.x/payload.com"  # noqa: S108 - a path in the generated logs, not a file we use
    plan.add(
        [attacks_host.clamav_found(sc, target, at(0.55), eicar, "Win.Test.EICAR_HDB-1")],
        "malware.detected",
        target,
        eicar,
        "clamd finds the EICAR test signature in a dropped file",
        ["Win.Test.EICAR_HDB-1 FOUND"],
    )

    # --- other hosts ---------------------------------------------------------------------
    plan.add(
        [attacks_auth.unusual_sudo(sc, rng, "ctl2", at(0.58), "jenkins", 114, "10.30.5.14")],
        "os.privilege",
        "ctl2",
        "jenkins",
        "the jenkins service account opens a root shell with sudo on ctl2",
        ["jenkins : TTY=pts/0 ; PWD=/var/lib/jenkins ; USER=root ; COMMAND=/bin/bash"],
    )
    plan.add(
        [attacks_host.bridge_down(sc, rng, "net1", at(0.62), "br-ex", "eth1", 1)],
        "network.bridge_down",
        "net1",
        "br-ex",
        "the external interface is removed from br-ex on the network node",
        ["br-ex: port 1(eth1) entered disabled state", "bridge br-ex: deleted interface eth1 on port 1"],
    )
    plan.add(
        [attacks_host.bridge_down(sc, rng, "net1", at(0.62) + 40_000, "br-int", "int-br-ex", 2)],
        "network.bridge_down",
        "net1",
        "br-int",
        "the br-int patch port to br-ex is deleted on the network node",
        ["br-int: port 2(int-br-ex) entered disabled state", "bridge br-int: deleted interface int-br-ex"],
    )

    for host, service, f_stop, down in (
        ("cmp1", "nova-compute", 0.66, 420_000),
        ("net1", "neutron-openvswitch-agent", 0.70, 300_000),
    ):
        unit, _, log = attacks_host.UNITS[service][:3]
        t_stop, t_start = at(f_stop), at(f_stop) + down
        plan.add(
            [attacks_host.service_stop(sc, rng, host, t_stop, service)],
            "service.unscheduled_stop",
            host,
            unit,
            f"{unit} stopped on {host} outside any maintenance window",
            [f"Stopped {unit}"],
        )
        plan.add(
            [attacks_host.service_start(sc, host, t_start, service)],
            "service.unscheduled_start",
            host,
            unit,
            f"{unit} started again on {host}",
            [f"Started {unit}"],
        )
        plan.gate(f"{host}/{log}").pauses.append((t_stop, t_start + 2600))

    t_boot = at(0.74)
    plan.add(
        [attacks_host.reboot(sc, rng, "cmp4", t_boot, 100_000)],
        "os.restart",
        "cmp4",
        "cmp4",
        "cmp4 reboots (logind, systemd shutdown, then a new kernel banner)",
        ["System is rebooting.", "Linux version 6.8.0-45-generic"],
    )
    for path_host in ("cmp4",):
        for name in ("auth.log", "syslog", "audit.log", "nova-compute.log"):
            plan.gate(f"{path_host}/{name}").pauses.append((t_boot, t_boot + 130_000))

    t_quiet = at(0.50)
    plan.gate("cmp3/nova-compute.log").stop_at = t_quiet
    plan.incidents.append(
        Incident.span(
            "logging.silence",
            "cmp3",
            "nova-compute",
            t_quiet,
            sc.end,
            "nova-compute on cmp3 stops writing (hung process, no systemd line)",
            ["cmp3/nova-compute.log"],
            [],
        )
    )
    t_drop = at(0.47)
    plan.level_drop["ctl2"] = t_drop
    plan.incidents.append(
        Incident.span(
            "logging.level_lowered",
            "ctl2",
            "neutron-server",
            t_drop,
            sc.end,
            "neutron-server on ctl2 keeps logging WARNING/ERROR but no INFO any more",
            ["ctl2/neutron-server.log"],
            [],
        )
    )

    project, eps_orphan = attacks_host.orphaned_project(sc, rng, at(0.08), at(0.78), ("cmp2", "cmp1"))
    deleted = [x for x in eps_orphan if '"identity.project.deleted' in x[2]]
    plan.add_lines([eps_orphan])
    plan.incidents.append(
        Incident.span(
            "identity.orphaned_resources",
            "ctl2",
            project,
            deleted[0][0],
            deleted[0][0],
            "project deleted while 2 instances run and a volume is attached",
            ["ctl1/notifications.json"],
            [project, "identity.project.deleted"],
        )
    )

    _usage_and_hardware(plan, sc, at(0.80), at(0.60))

    t_pkg = at(0.57)
    plan.add_lines(
        [attacks_host.dpkg_upgrade(t_pkg, "ctl1", "nova-api", "3:29.2.0-0ubuntu1", "3:29.2.0-0ubuntu1.1")]
    )
    t_aide = at(0.86)
    plan.add_lines(
        [
            attacks_host.aide_report(
                rng,
                "ctl1",
                t_aide,
                ["/etc/nova/nova.conf", "/usr/bin/nova-api"],
                ["/usr/bin/kswapd1"],
                183_214,
            )
        ]
    )
    for path, why, explained in (
        ("/etc/nova/nova.conf", "nova.conf changed with no package update", False),
        ("/usr/bin/nova-api", "changed by the nova-api upgrade logged in ctl1/dpkg.log", True),
        ("/usr/bin/kswapd1", "an unknown binary appeared in /usr/bin", False),
    ):
        plan.incidents.append(
            Incident.span(
                "integrity.file_changed",
                "ctl1",
                path,
                t_aide,
                t_aide,
                f"AIDE: {why}",
                ["ctl1/aide.log"] + (["ctl1/dpkg.log"] if explained else []),
                [path],
                explained,
            )
        )

    _campaigns(plan, sc, rng, target_lines)
    return plan


def _usage_and_hardware(plan: Plan, sc: Scene, t_leak: int, t_disk: int) -> None:
    """A leaked credential launching GPU instances (01:36 in the ml-training team's US/Pacific
    night, on the default start), and a disk failing on cmp3. Their own random streams: the
    other incidents stay as they were."""
    rng = sc.world.stream_rng("usage")
    ml = sc.world.projects[2]
    user, ep = attacks_usage.leaked_credential(sc, rng, t_leak, ml)
    # its own stream too, so that adding it left the leak's lines as they were
    new_user = attacks_usage.created_user(
        sc, sc.world.stream_rng("usage", "new-user"), t_leak - 15 * 60_000, ml
    )
    plan.add(
        [new_user, ep],
        "usage.anomaly",
        "ctl1",
        ml.id,
        f"a leaked credential of {ml.name} creates a user that logs in and launches "
        f"{attacks_usage.NEW_USER_LAUNCHES} servers at once, then mints an application credential and "
        f"launches {attacks_usage.LAUNCHES} GPU instances from {attacks_usage.ATTACKER_IP} "
        "until the quota refuses",
        [
            attacks_usage.GPU_FLAVOR[0],
            "identity.user.created",
            "identity.application_credential.created",
            "Quota exceeded for instances",
            user,
        ],
    )
    # on top of the target, not out of the background's budget: a budget smaller by these few
    # lines would redraw the background and move the other incidents' alerts by seconds
    plan.lines -= len(new_user)
    plan.add(
        [attacks_usage.failing_disk(sc, rng, "cmp3", t_disk)],
        "hardware.fault",
        "cmp3",
        "/dev/sdb",
        "/dev/sdb of cmp3 fails: pending sectors, read errors, ext4 errors, then smartd fails the drive",
        ["blk_update_request: I/O error, dev sdb", "FAILED SMART self-check"],
    )


def _busiest(episodes: list[Episode]) -> str:
    counts: dict[str, int] = {}
    for ep in episodes:
        for _, path, _ in ep:
            if path == attacks_auth.NOTIF:  # the bus dump on ctl1 says nothing about the backend
                continue
            host = path.split("/", 1)[0]
            counts[host] = counts.get(host, 0) + 1
    return max(sorted(counts), key=lambda h: counts[h])


def _lazy(
    plan: Plan,
    gen: Iterator[Episode],
    times: list[int],
    lines: float,
    category: str,
    host: str,
    entity: str,
    description: str,
    markers: list[str],
    *,
    keystone: bool,
) -> None:
    """An incident whose lines are generated while writing (large campaigns stay out of memory)."""
    plan.streams.append(gen)
    plan.lines += lines
    files = (
        [f"{host}/keystone_access.log", f"{host}/keystone.log", attacks_auth.NOTIF]
        if keystone
        else [f"{host}/auth.log", f"{host}/audit.log"]
    )
    plan.incidents.append(
        Incident.span(category, host, entity, times[0], times[-1] + 2500, description, files, markers)
    )


def _campaigns(plan: Plan, sc: Scene, rng: random.Random, target_lines: int) -> None:
    """More attack campaigns until ~1.5% of the target lines are security-relevant."""
    budget = SECURITY_SHARE * target_lines - plan.lines
    count = int(budget // CAMPAIGN_LINES)
    if count <= 0:
        return
    dur = sc.end - sc.start
    users = [u for p in sc.world.projects for u in p.users]
    ssh_hosts = [h for h in HOSTS if h != "cmp4"]
    for i in range(count):
        ip = f"198.18.{i // 250}.{i % 250 + 1}"
        t = sc.start + int((0.04 + 0.9 * (i + rng.random()) / count) * dur)
        crng = random.Random(rng.getrandbits(64))
        if i % 3 != 2:
            n = int(CAMPAIGN_LINES / KEYSTONE_LINES_PER_ATTEMPT)
            name, uid = crng.choice(users)
            times, gen = attacks_auth.brute_force(sc, crng, t, ip, name, uid, n, 600_000 // n)
            _lazy(
                plan,
                gen,
                times,
                n * KEYSTONE_LINES_PER_ATTEMPT,
                "auth.bruteforce",
                attacks_auth.controller_for(ip),
                ip,
                f"keystone brute force campaign {i + 1} against {name} from {ip}",
                [ip],
                keystone=True,
            )
        else:
            n = int(CAMPAIGN_LINES / SSH_LINES_PER_ATTEMPT)
            host = crng.choice(ssh_hosts)
            times, gen = attacks_auth.ssh_failures(sc, crng, host, t, ip, n, 600_000 // n)
            _lazy(
                plan,
                gen,
                times,
                n * SSH_LINES_PER_ATTEMPT,
                "auth.bruteforce",
                host,
                ip,
                f"sshd brute force campaign {i + 1} on {host} from {ip}",
                [f"rhost={ip}"],
                keystone=False,
            )
