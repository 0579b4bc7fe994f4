"""Benign operating-system traffic: ops sessions over ssh with sudo, cron, systemd timers,
daemons' routine syslog lines, the matching auditd records, Suricata eve.json flows.

Formats: Ubuntu 24.04 as rsyslog writes it (RSYSLOG_TraditionalFileFormat); PAM with
``user(uid=N)``; systemd >= 252 wording with unit names (``Starting x.service - Desc...``);
auditd raw records as in go-libaudit's and auparse's test logs.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from stackwatch.scenario import formats
from stackwatch.scenario.streams import Episode, Line, arrivals, ticks
from stackwatch.scenario.world import CONTROLLERS, OPS_TEAM, Scene, mac

UNSET = 4294967295
OPS_UID = {"alice": 1001, "bob": 1002, "carol": 1003}
OPS_COMMANDS = (
    "/usr/bin/systemctl status nova-compute",
    "/usr/bin/tail -n 200 /var/log/nova/nova-compute.log",
    "/usr/bin/openstack server list --all-projects",
    "/usr/sbin/ovs-vsctl show",
    "/usr/bin/journalctl -u neutron-server --since -1h",
    "/usr/bin/apt list --upgradable",
    "/usr/bin/virsh list --all",
    "/usr/bin/df -h",
)
TIMERS = (
    ("sysstat-collect.service", "system activity accounting tool"),
    ("apt-daily.service", "Daily apt download activities"),
    ("logrotate.service", "Rotate log files"),
    ("motd-news.service", "Message of the Day"),
    ("fwupd-refresh.service", "Refresh fwupd metadata and update motd"),
)


def hexcmd(text: str) -> str:
    """auditd's encoding of an untrusted value: quoted when plain, uppercase hex when it
    holds spaces, quotes or control characters."""
    if all(33 <= ord(c) < 127 and c != '"' for c in text):
        return f'"{text}"'
    return text.encode().hex().upper()


def audit_user(t: int, serial: int, rtype: str, pid: int, uid: int, auid: int, ses: int, msg: str) -> str:
    return formats.audit(
        t, serial, rtype, f"pid={pid} uid={uid} auid={auid} ses={ses} subj=unconfined msg='{msg}'"
    )


def pam_audit(
    sc: Scene,
    host: str,
    t: int,
    salt: int,
    pid: int,
    auid: int,
    ses: int,
    acct: str,
    exe: str,
    addr: str,
    terminal: str,
    kinds: tuple[str, ...],
) -> list[Line]:
    """The PAM audit records of a login/cron/sudo (USER_ACCT, CRED_ACQ, USER_START...)."""
    path = f"{host}/audit.log"
    hostname = addr if addr != "?" else "?"
    ops = {
        "USER_AUTH": "PAM:authentication grantors=pam_permit",
        "USER_ACCT": "PAM:accounting grantors=pam_permit",
        "CRED_ACQ": "PAM:setcred grantors=pam_permit,pam_cap",
        "USER_START": "PAM:session_open "
        "grantors=pam_selinux,pam_loginuid,pam_keyinit,pam_permit,pam_umask,pam_unix,pam_systemd,pam_mail,"
        "pam_limits,pam_env,pam_env,pam_selinux",
        "USER_END": "PAM:session_close grantors=pam_selinux,pam_loginuid,pam_keyinit,pam_permit,pam_umask,"
        "pam_unix,pam_systemd,pam_mail,pam_limits,pam_env,pam_env,pam_selinux",
        "CRED_DISP": "PAM:setcred grantors=pam_permit",
    }
    out: list[Line] = []
    for i, kind in enumerate(kinds):
        tt = t + i * 2
        a = UNSET if kind in ("USER_ACCT", "CRED_ACQ", "USER_AUTH") else auid
        s = UNSET if kind in ("USER_ACCT", "CRED_ACQ", "USER_AUTH") else ses
        msg = (
            f'op={ops[kind]} acct="{acct}" exe="{exe}" hostname={hostname} addr={addr} '
            f"terminal={terminal} res=success"
        )
        out.append((tt, path, audit_user(tt, sc.audit_serial(tt, salt), kind, pid, 0, a, s, msg)))
    return out


def ssh_session(
    sc: Scene,
    host: str,
    rng: random.Random,
    t: int,
    user: str,
    ip: str,
    uid: int,
    commands: list[str],
    salt: int,
    method: str = "publickey",
) -> Episode:
    """An ssh login, some sudo commands, the logout: auth.log, syslog and audit.log."""
    auth, sysl = f"{host}/auth.log", f"{host}/syslog"
    pid = rng.randrange(2000, 4_000_000)
    port = rng.randrange(32768, 61000)
    ses = sc.session(t, salt)
    logind = f"systemd-logind[{sc.pid(host, 'systemd-logind')}]"
    sshd = f"sshd[{pid}]"
    key = "".join(
        rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(43)
    )
    accepted = (
        f"Accepted publickey for {user} from {ip} port {port} ssh2: ED25519 SHA256:{key}"
        if method == "publickey"
        else f"Accepted password for {user} from {ip} port {port} ssh2"
    )
    ep: Episode = [
        (t, auth, formats.syslog(t, host, sshd, accepted)),
        (
            t + 6,
            auth,
            formats.syslog(
                t + 6,
                host,
                sshd,
                f"pam_unix(sshd:session): session opened for user {user}(uid={uid}) by (uid=0)",
            ),
        ),
        (t + 9, auth, formats.syslog(t + 9, host, logind, f"New session {ses} of user {user}.")),
        (
            t + 11,
            sysl,
            formats.syslog(
                t + 11, host, "systemd[1]", f"Started session-{ses}.scope - Session {ses} of User {user}."
            ),
        ),
    ]
    ep += pam_audit(
        sc,
        host,
        t + 1,
        salt,
        pid,
        uid,
        ses,
        user,
        "/usr/sbin/sshd",
        ip,
        "ssh",
        ("USER_ACCT", "CRED_ACQ", "USER_START"),
    )
    tl = t + 14
    ep.append(
        (
            tl,
            f"{host}/audit.log",
            audit_user(
                tl,
                sc.audit_serial(tl, salt),
                "USER_LOGIN",
                pid,
                0,
                uid,
                ses,
                f'op=login id={uid} exe="/usr/sbin/sshd" hostname=? addr={ip} '
                "terminal=/dev/pts/0 res=success",
            ),
        )
    )
    tc = t + rng.randrange(5_000, 60_000)
    for cmd in commands:
        spid = rng.randrange(2000, 4_000_000)
        ep.append(
            (
                tc,
                auth,
                formats.syslog(
                    tc, host, "sudo", f"{user:>8} : TTY=pts/0 ; PWD=/home/{user} ; USER=root ; COMMAND={cmd}"
                ),
            )
        )
        ep.append(
            (
                tc + 3,
                auth,
                formats.syslog(
                    tc + 3,
                    host,
                    "sudo",
                    f"pam_unix(sudo:session): session opened for user root(uid=0) by {user}(uid={uid})",
                ),
            )
        )
        ep.append(
            (
                tc + 1,
                f"{host}/audit.log",
                audit_user(
                    tc + 1,
                    sc.audit_serial(tc + 1, salt),
                    "USER_CMD",
                    spid,
                    uid,
                    uid,
                    ses,
                    f'cwd="/home/{user}" cmd={hexcmd(cmd)} exe="/usr/bin/sudo" terminal=pts/0 res=success',
                ),
            )
        )
        te = tc + rng.randrange(200, 4000)
        ep.append(
            (
                te,
                auth,
                formats.syslog(te, host, "sudo", "pam_unix(sudo:session): session closed for user root"),
            )
        )
        tc = te + rng.randrange(5_000, 120_000)
    tx = tc + rng.randrange(10_000, 300_000)
    ep += [
        (
            tx,
            auth,
            formats.syslog(
                tx, host, sshd, f"Received disconnect from {ip} port {port}:11: disconnected by user"
            ),
        ),
        (tx + 1, auth, formats.syslog(tx + 1, host, sshd, f"Disconnected from user {user} {ip} port {port}")),
        (
            tx + 4,
            auth,
            formats.syslog(tx + 4, host, sshd, f"pam_unix(sshd:session): session closed for user {user}"),
        ),
        (
            tx + 8,
            auth,
            formats.syslog(tx + 8, host, logind, f"Session {ses} logged out. Waiting for processes to exit."),
        ),
        (tx + 20, auth, formats.syslog(tx + 20, host, logind, f"Removed session {ses}.")),
    ]
    ep += pam_audit(
        sc, host, tx + 5, salt, pid, uid, ses, user, "/usr/sbin/sshd", ip, "ssh", ("USER_END", "CRED_DISP")
    )
    return ep


def ops_sessions(sc: Scene, host: str, rng: random.Random, count: float) -> Iterator[Episode]:
    """The ops team logging in from the admin network, usually with a sudo or two."""
    for t in arrivals(rng, sc.start, sc.end, count):
        user = rng.choice(list(OPS_TEAM))
        cmds = [rng.choice(OPS_COMMANDS) for _ in range(rng.randrange(0, 3))]
        yield ssh_session(sc, host, rng, t, user, OPS_TEAM[user], OPS_UID[user], cmds, salt=1)


def cron(sc: Scene, host: str, rng: random.Random, count: float) -> Iterator[Episode]:
    """Cron jobs: the PAM session in auth.log, the CMD in syslog, the audit records."""
    jobs = (
        "command -v debian-sa1 > /dev/null && debian-sa1 1 1",
        "test -x /etc/cron.daily/popularity-contest && /etc/cron.daily/popularity-contest --crond",
        "cd / && run-parts --report /etc/cron.hourly",
        "/usr/bin/nova-manage db archive_deleted_rows --max_rows 1000 >/dev/null 2>&1",
    )
    for t in ticks(rng, sc.start, sc.end, count, jitter_ms=300):
        pid = rng.randrange(2000, 4_000_000)
        ses = sc.session(t, 2)
        cmd = jobs[0] if rng.random() < 0.7 or host not in CONTROLLERS else rng.choice(jobs[1:])
        prog = f"CRON[{pid}]"
        tend = t + rng.randrange(300, 3000)
        ep: Episode = [
            (
                t,
                f"{host}/auth.log",
                formats.syslog(
                    t, host, prog, "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"
                ),
            ),
            (t + 2, f"{host}/syslog", formats.syslog(t + 2, host, prog, f"(root) CMD ({cmd})")),
            (
                tend,
                f"{host}/auth.log",
                formats.syslog(tend, host, prog, "pam_unix(cron:session): session closed for user root"),
            ),
        ]
        ep += pam_audit(
            sc, host, t, 2, pid, 0, ses, "root", "/usr/sbin/cron", "?", "cron", ("USER_ACCT", "CRED_ACQ")
        )
        tl = t + 5
        ep.append(
            (
                tl,
                f"{host}/audit.log",
                formats.audit(
                    tl,
                    sc.audit_serial(tl, 2),
                    "LOGIN",
                    f"pid={pid} uid=0 subj=unconfined old-auid={UNSET} auid=0 "
                    f"tty=(none) old-ses={UNSET} ses={ses} res=1",
                ),
            )
        )
        ep += pam_audit(
            sc, host, t + 7, 2, pid, 0, ses, "root", "/usr/sbin/cron", "?", "cron", ("USER_START",)
        )
        ep += pam_audit(
            sc, host, tend, 2, pid, 0, ses, "root", "/usr/sbin/cron", "?", "cron", ("CRED_DISP", "USER_END")
        )
        yield ep


def daemons(sc: Scene, host: str, rng: random.Random, count: float) -> Iterator[Episode]:
    """Routine syslog: systemd timers, chrony, ovs connmgr, dnsmasq (net1), clamd self-checks."""
    sysl = f"{host}/syslog"
    clam = host == "cmp2"
    net = host.startswith("net")
    for t in arrivals(rng, sc.start, sc.end, count):
        r = rng.random()
        if r < 0.25:
            unit, desc = rng.choice(TIMERS)
            te = t + rng.randrange(200, 5000)
            yield [
                (t, sysl, formats.syslog(t, host, "systemd[1]", f"Starting {unit} - {desc}...")),
                (te, sysl, formats.syslog(te, host, "systemd[1]", f"{unit}: Deactivated successfully.")),
                (te + 1, sysl, formats.syslog(te + 1, host, "systemd[1]", f"Finished {unit} - {desc}.")),
            ]
        elif r < 0.35:
            yield [
                (
                    t,
                    sysl,
                    formats.syslog(
                        t,
                        host,
                        f"chronyd[{sc.pid(host, 'chronyd')}]",
                        f"Selected source 10.20.0.{rng.choice((1, 2))} (ntp{rng.choice((1, 2))}."
                        "cloud.example.org)",
                    ),
                )
            ]
        elif clam and r < 0.5:
            yield [
                (
                    t,
                    sysl,
                    formats.syslog(
                        t, host, f"clamd[{sc.pid(host, 'clamd')}]", "SelfCheck: Database status OK."
                    ),
                )
            ]
        elif net and r < 0.85:
            ip = f"192.168.{rng.randrange(0, 20)}.{rng.randrange(3, 250)}"
            ns = f"ns-{rng.getrandbits(40):010x}"[:14]
            m = mac(rng)
            prog = f"dnsmasq-dhcp[{sc.pid(host, 'dnsmasq-' + ns[-2:])}]"
            yield [
                (t, sysl, formats.syslog(t, host, prog, f"DHCPREQUEST({ns}) {ip} {m}")),
                (
                    t + 1,
                    sysl,
                    formats.syslog(t + 1, host, prog, f"DHCPACK({ns}) {ip} {m} host-{ip.replace('.', '-')}"),
                ),
            ]
        else:
            n = rng.randrange(2, 40)
            yield [
                (
                    t,
                    sysl,
                    formats.syslog(
                        t,
                        host,
                        f"ovs-vswitchd[{sc.pid(host, 'ovs-vswitchd')}]",
                        f"ovs|{rng.randrange(10000, 99999):05d}|connmgr|INFO|br-int<->tcp:127.0.0.1:6633: "
                        f"{n} flow_mods in the 7 s starting 10 s ago ({n} adds)",
                    ),
                )
            ]


def suricata_eve(sc: Scene, host: str, rng: random.Random, count: float) -> Iterator[Episode]:
    """Suricata on the network node's external interface: flow, dns and tls records."""
    path = f"{host}/eve.json"
    for t in arrivals(rng, sc.start, sc.end, count):
        src = f"192.168.{rng.randrange(0, 20)}.{rng.randrange(3, 250)}"
        dst = rng.choice(("151.101.1.69", "185.125.190.36", "91.189.91.81", "140.82.121.4", "8.8.8.8"))
        kind = rng.choice(("flow", "flow", "dns", "tls"))
        rec: dict[str, object] = {
            "timestamp": formats.iso_utc(t, rng.randrange(1000)),
            "flow_id": rng.getrandbits(50),
            "in_iface": "eth1",
            "event_type": kind,
            "src_ip": src,
            "src_port": rng.randrange(32768, 61000),
            "dest_ip": dst,
        }
        if kind == "dns":
            rec.update(
                dest_ip="10.20.0.1",
                dest_port=53,
                proto="UDP",
                dns={
                    "type": "query",
                    "id": rng.randrange(65536),
                    "rrname": rng.choice(("archive.ubuntu.com", "pypi.org", "github.com")),
                    "rrtype": "A",
                    "tx_id": 0,
                },
            )
        elif kind == "tls":
            rec.update(
                dest_port=443,
                proto="TCP",
                tls={"sni": rng.choice(("pypi.org", "github.com", "api.snapcraft.io")), "version": "TLS 1.3"},
            )
        else:
            pk = rng.randrange(4, 400)
            rec.update(
                dest_port=443,
                proto="TCP",
                app_proto="tls",
                flow={
                    "pkts_toserver": pk,
                    "pkts_toclient": pk + rng.randrange(0, 40),
                    "bytes_toserver": pk * 120,
                    "bytes_toclient": pk * 900,
                    "start": formats.iso_utc(t - rng.randrange(1000, 60000)),
                    "end": formats.iso_utc(t),
                    "age": rng.randrange(1, 60),
                    "state": "closed",
                    "reason": "timeout",
                    "alerted": False,
                },
            )
        yield [(t, path, formats.compact_json(rec))]
