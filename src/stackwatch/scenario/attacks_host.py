"""Host incidents: firewall flush, malware, bridges going down, services stopped, a reboot,
file-integrity changes (one explained by a package upgrade), an IDS alert, and a project
deleted while its instances and volume live on.
"""

from __future__ import annotations

import base64
import random

from stackwatch.scenario import formats
from stackwatch.scenario.bg_openstack import Lifecycle, notification
from stackwatch.scenario.bg_os import UNSET
from stackwatch.scenario.streams import Episode
from stackwatch.scenario.world import KERNEL_BANNER, Scene, hex32, uuid4


def iptables_flush(
    sc: Scene, rng: random.Random, host: str, t: int, auid: int, ses: int, table: str = "filter"
) -> Episode:
    """``iptables -w -t <table> --flush`` as auditd records it (the shape of the OMS-Auditd-Plugin
    sample): SYSCALL execve + EXECVE + CWD + PATH x2 + PROCTITLE + EOE, then the NETFILTER_CFG
    event of the next serial with the table now empty (entries=0)."""
    path = f"{host}/audit.log"
    s1 = sc.audit_serial(t, 9)
    s2 = s1 + 1
    t2 = t + 4
    pid, ppid = rng.randrange(20_000, 4_000_000), rng.randrange(2000, 20_000)
    argv = ["iptables", "-w", "-t", table, "--flush"]
    proctitle = "\0".join(argv).encode().hex().upper()
    ids = (
        f"ppid={ppid} pid={pid} auid={auid} uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 "
        f'tty=pts0 ses={ses} comm="iptables" exe="/usr/sbin/xtables-nft-multi"'
    )

    def a(_: int) -> str:  # a syscall argument register
        return f"{rng.getrandbits(44):x}"

    recs = [
        (
            t,
            s1,
            "SYSCALL",
            f"arch=c000003e syscall=59 success=yes exit=0 a0={a(0)} a1={a(1)} a2={a(2)} a3=8 "
            f'items=2 {ids} key="netfilter"',
        ),
        (t, s1, "EXECVE", "argc=5 " + " ".join(f'a{i}="{v}"' for i, v in enumerate(argv))),
        (t, s1, "CWD", ' cwd="/root"'),  # auditd writes two spaces before cwd
        (
            t,
            s1,
            "PATH",
            'item=0 name="/usr/sbin/iptables" inode=1579593 dev=fd:00 mode=0100755 ouid=0 ogid=0 '
            "rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0",
        ),
        (
            t,
            s1,
            "PATH",
            'item=1 name="/lib64/ld-linux-x86-64.so.2" inode=1048670 dev=fd:00 mode=0100755 ouid=0 '
            "ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0",
        ),
        (t, s1, "PROCTITLE", f"proctitle={proctitle}"),
        (t, s1, "EOE", ""),
        (t2, s2, "NETFILTER_CFG", f"table={table} family=2 entries=0"),
        (
            t2,
            s2,
            "SYSCALL",
            f"arch=c000003e syscall=54 success=yes exit=0 a0=4 a1=0 a2=40 a3={a(3)} items=0 {ids} key=(null)",
        ),
        (t2, s2, "PROCTITLE", f"proctitle={proctitle}"),
        (t2, s2, "EOE", ""),
    ]
    # rstrip: an EOE record has no body ('type=EOE msg=audit(...):' ends there)
    return [
        (tt, path, formats.audit(tt, serial, rtype, body).rstrip(" ")) for tt, serial, rtype, body in recs
    ]


def clamav_found(sc: Scene, host: str, t: int, file_path: str, signature: str) -> Episode:
    prog = f"clamd[{sc.pid(host, 'clamd')}]"
    return [(t, f"{host}/syslog", formats.syslog(t, host, prog, f"{file_path}: {signature} FOUND"))]


def bridge_down(
    sc: Scene, rng: random.Random, host: str, t: int, bridge: str, port: str, port_no: int
) -> Episode:
    """Someone removes a port from an OVS bridge: ovs-vsctl, ovs-vswitchd and the kernel."""
    sysl = f"{host}/syslog"
    vs = f"ovs-vswitchd[{sc.pid(host, 'ovs-vswitchd')}]"
    seq = rng.randrange(10000, 99999)
    return [
        (
            t,
            sysl,
            formats.syslog(
                t, host, "ovs-vsctl", f"ovs|00001|vsctl|INFO|Called as ovs-vsctl del-port {bridge} {port}"
            ),
        ),
        (
            t + 3,
            sysl,
            formats.syslog(
                t + 3,
                host,
                "kernel",
                f"{formats.kernel_stamp(t + 3, sc.world.boot[host])} {bridge}: "
                f"port {port_no}({port}) entered disabled state",
            ),
        ),
        (
            t + 5,
            sysl,
            formats.syslog(
                t + 5,
                host,
                vs,
                f"ovs|{seq:05d}|bridge|INFO|bridge {bridge}: deleted interface {port} on port {port_no}",
            ),
        ),
        (
            t + 7,
            sysl,
            formats.syslog(
                t + 7,
                host,
                "kernel",
                f"{formats.kernel_stamp(t + 7, sc.world.boot[host])} device {port} left promiscuous mode",
            ),
        ),
    ]


UNITS = {
    "nova-compute": (
        "nova-compute.service",
        "OpenStack Compute",
        "nova-compute.log",
        "nova.service",
        "Starting compute node (version 29.2.0)",
    ),
    "neutron-openvswitch-agent": (
        "neutron-openvswitch-agent.service",
        "OpenStack Neutron Open vSwitch Plugin Agent",
        "neutron-openvswitch-agent.log",
        "neutron.plugins.ml2.drivers.openvswitch.agent.ovs_neutron_agent",
        "Agent initialized successfully, now running... ",
    ),
}


def _service_audit(sc: Scene, host: str, t: int, rtype: str, unit: str) -> tuple[int, str, str]:
    body = (
        f"pid=1 uid=0 auid={UNSET} ses={UNSET} subj=unconfined msg='unit={unit.removesuffix('.service')} "
        'comm="systemd" exe="/usr/lib/systemd/systemd" hostname=? addr=? terminal=? res=success\''
    )
    return (t, f"{host}/audit.log", formats.audit(t, sc.audit_serial(t, 11), rtype, body))


def service_stop(sc: Scene, rng: random.Random, host: str, t: int, service: str) -> Episode:
    unit, desc, log, _, _ = UNITS[service]
    sysl = f"{host}/syslog"
    te = t + rng.randrange(800, 4000)
    return [
        (t, sysl, formats.syslog(t, host, "systemd[1]", f"Stopping {unit} - {desc}...")),
        (
            t + 40,
            f"{host}/{log}",
            formats.oslo(
                t + 40, sc.pid(host, service), "INFO", "oslo_service.service", "-", "Caught SIGTERM, exiting"
            ),
        ),
        (te, sysl, formats.syslog(te, host, "systemd[1]", f"{unit}: Deactivated successfully.")),
        (te + 1, sysl, formats.syslog(te + 1, host, "systemd[1]", f"Stopped {unit} - {desc}.")),
        (
            te + 2,
            sysl,
            formats.syslog(
                te + 2,
                host,
                "systemd[1]",
                f"{unit}: Consumed {rng.randrange(1, 9)}h "
                f"{rng.randrange(60)}min {rng.uniform(1, 59):.3f}s CPU time.",
            ),
        ),
        _service_audit(sc, host, te + 1, "SERVICE_STOP", unit),
    ]


def service_start(sc: Scene, host: str, t: int, service: str) -> Episode:
    unit, desc, log, logger, msg = UNITS[service]
    return [
        (t, f"{host}/syslog", formats.syslog(t, host, "systemd[1]", f"Started {unit} - {desc}.")),
        _service_audit(sc, host, t, "SERVICE_START", unit),
        (
            t + 2500,
            f"{host}/{log}",
            formats.oslo(t + 2500, sc.pid(host, service) + 17, "INFO", logger, "-", msg.strip()),
        ),
    ]


def reboot(sc: Scene, rng: random.Random, host: str, t: int, down_ms: int) -> Episode:
    """``reboot``: logind, systemd stopping units, the audit shutdown record; then the kernel
    banner, the boot record and systemd starting the units again."""
    sysl, auth, aud = f"{host}/syslog", f"{host}/auth.log", f"{host}/audit.log"
    logind = f"systemd-logind[{sc.pid(host, 'systemd-logind')}]"
    ep: Episode = [
        (t, auth, formats.syslog(t, host, logind, "The system will reboot now!")),
        (t + 2, auth, formats.syslog(t + 2, host, logind, "System is rebooting.")),
    ]
    tt = t + 50
    for unit, desc in (
        ("nova-compute.service", "OpenStack Compute"),
        ("libvirtd.service", "libvirt legacy monolithic daemon"),
        ("ovs-vswitchd.service", "Open vSwitch Forwarding Unit"),
        ("cron.service", "Regular background program processing daemon"),
    ):
        ep.append((tt, sysl, formats.syslog(tt, host, "systemd[1]", f"Stopping {unit} - {desc}...")))
        ep.append((tt + 900, sysl, formats.syslog(tt + 900, host, "systemd[1]", f"Stopped {unit} - {desc}.")))
        tt += 30
    tt += 1500
    ep.append(
        (
            tt,
            aud,
            formats.audit(
                tt,
                sc.audit_serial(tt, 12),
                "SYSTEM_SHUTDOWN",
                f"pid={rng.randrange(3000, 90000)} uid=0 auid={UNSET} ses={UNSET} subj=unconfined "
                'msg=\' comm="systemd-update-utmp" exe="/usr/lib/systemd/systemd-update-utmp" '
                "hostname=? addr=? terminal=? res=success'",
            ),
        )
    )
    ep.append(
        (
            tt + 200,
            sysl,
            formats.syslog(tt + 200, host, "systemd[1]", "Reached target shutdown.target - System Shutdown."),
        )
    )
    ep.append((tt + 300, sysl, formats.syslog(tt + 300, host, "systemd[1]", "Shutting down.")))
    tb = t + down_ms  # the kernel starts; rsyslog writes the buffered boot messages
    ep.append((tb, sysl, formats.syslog(tb, host, "kernel", f"[    0.000000] {KERNEL_BANNER}")))
    ep.append(
        (
            tb,
            sysl,
            formats.syslog(
                tb,
                host,
                "kernel",
                "[    0.000000] Command line: BOOT_IMAGE=/vmlinuz-6.8.0-45-"
                "generic root=/dev/mapper/vg0-root ro quiet",
            ),
        )
    )
    tu = tb + 21_000
    ep.append(
        (
            tu,
            sysl,
            formats.syslog(
                tu,
                host,
                "systemd[1]",
                "systemd 255.4-1ubuntu8.4 running in system mode (+PAM "
                "+AUDIT +SELINUX +APPARMOR +IMA +SMACK +SECCOMP +GCRYPT -GNUTLS "
                "+OPENSSL +ACL +BLKID +CURL +ELFUTILS +FIDO2 +IDN2 -IDN "
                "+IPTC +KMOD +LIBCRYPTSETUP +LIBFDISK +PCRE2 -PWQUALITY "
                "+P11KIT +QRENCODE +TPM2 +BZIP2 +LZ4 +XZ +ZLIB +ZSTD "
                "-BPF_FRAMEWORK -XKBCOMMON +UTMP +SYSVINIT "
                "default-hierarchy=unified)",
            ),
        )
    )
    ep.append(
        (
            tu + 1800,
            aud,
            formats.audit(
                tu + 1800,
                sc.audit_serial(tu + 1800, 12),
                "SYSTEM_BOOT",
                f"pid={rng.randrange(500, 900)} uid=0 auid={UNSET} ses={UNSET} "
                'subj=unconfined msg=\' comm="systemd-update-utmp" '
                'exe="/usr/lib/systemd/systemd-update-utmp" hostname=? addr=? terminal=? '
                "res=success'",
            ),
        )
    )
    tt = tu + 2500
    for unit, desc in (
        ("ovs-vswitchd.service", "Open vSwitch Forwarding Unit"),
        ("libvirtd.service", "libvirt legacy monolithic daemon"),
        ("nova-compute.service", "OpenStack Compute"),
    ):
        ep.append((tt, sysl, formats.syslog(tt, host, "systemd[1]", f"Started {unit} - {desc}.")))
        tt += 400
    ep.append(
        (
            tt + 300,
            sysl,
            formats.syslog(
                tt + 300,
                host,
                "systemd[1]",
                "Startup finished in 3.214s (kernel) + 26.871s (userspace) = 30.086s.",
            ),
        )
    )
    return ep


def dpkg_upgrade(t: int, host: str, package: str, old: str, new: str) -> Episode:
    """An ``apt upgrade`` of one package as dpkg.log records it."""
    path = f"{host}/dpkg.log"
    pkg = f"{package}:all"
    steps = [
        (0, "startup archives unpack"),
        (400, f"upgrade {pkg} {old} {new}"),
        (401, f"status half-configured {pkg} {old}"),
        (402, f"status unpacked {pkg} {old}"),
        (403, f"status half-installed {pkg} {old}"),
        (1300, f"status unpacked {pkg} {new}"),
        (1800, "startup packages configure"),
        (1801, f"configure {pkg} {new} <none>"),
        (1802, f"status unpacked {pkg} {new}"),
        (1803, f"status half-configured {pkg} {new}"),
        (4200, f"status installed {pkg} {new}"),
    ]
    return [(t + d, path, f"{formats.dpkg_sec(t + d)} {text}") for d, text in steps]


def _b64(rng: random.Random) -> str:
    return base64.b64encode(rng.getrandbits(256).to_bytes(32, "big")).decode()


def aide_report(
    rng: random.Random, host: str, t: int, changed: list[str], added: list[str], total: int
) -> Episode:
    """One ``aide --check`` run (0.18 report), written as a single multi-line record."""
    stamp = f"{formats.iso_sec(t // 1000)} +0000"
    end = t + rng.randrange(60_000, 180_000)
    run = (end - t) // 1000
    lines = [f"Start timestamp: {stamp} (AIDE 0.18.6)"]
    if not changed and not added:
        lines += [
            "AIDE found NO differences between database and filesystem. Looks okay!!",
            "",
            f"Number of entries:\t{total}",
        ]
    else:
        lines += [
            "AIDE found differences between database and filesystem!!",
            "",
            "Summary:",
            f"  Total number of entries:\t{total}",
            f"  Added entries:\t\t{len(added)}",
            "  Removed entries:\t\t0",
            f"  Changed entries:\t\t{len(changed)}",
            "",
        ]
        sep = "---------------------------------------------------"
        if added:
            lines += [sep, "Added entries:", sep, ""] + [f"f++++++++++++++++: {p}" for p in added] + [""]
        if changed:
            lines += [sep, "Changed entries:", sep, ""] + [f"f   ...    .C... : {p}" for p in changed] + [""]
            lines += [sep, "Detailed information about changes:", sep, ""]
            for p in changed:
                lines += [f"File: {p}", f"  SHA256    : {_b64(rng)} | {_b64(rng)}", ""]
    sep = "---------------------------------------------------"
    lines += [
        sep,
        "The attributes of the (uncompressed) database(s):",
        sep,
        "",
        "/var/lib/aide/aide.db",
        f"  SHA256    : {_b64(rng)}",
        "",
        f"End timestamp: {formats.iso_sec(end // 1000)} +0000 (run time: {run // 60}m {run % 60}s)",
    ]
    return [(t, f"{host}/aide.log", "\n".join(lines))]


def suricata_alert(rng: random.Random, host: str, t: int, src: str, dst: str) -> Episode:
    rec = {
        "timestamp": formats.iso_utc(t, rng.randrange(1000)),
        "flow_id": rng.getrandbits(50),
        "in_iface": "eth1",
        "event_type": "alert",
        "src_ip": src,
        "src_port": rng.randrange(32768, 61000),
        "dest_ip": dst,
        "dest_port": 22,
        "proto": "TCP",
        "pkt_src": "wire/pcap",
        "alert": {
            "action": "allowed",
            "gid": 1,
            "signature_id": 2001219,
            "rev": 20,
            "signature": "ET SCAN Potential SSH Scan",
            "category": "Attempted Information Leak",
            "severity": 2,
        },
        "direction": "to_server",
        "flow": {
            "pkts_toserver": 3,
            "pkts_toclient": 1,
            "bytes_toserver": 206,
            "bytes_toclient": 74,
            "start": formats.iso_utc(t - 3000),
        },
    }
    return [(t, f"{host}/eve.json", formats.compact_json(rec))]


def _identity_cadf(
    sc: Scene,
    rng: random.Random,
    t: int,
    action: str,
    type_uri: str,
    resource: str,
    initiator_id: str,
    event_type: str,
    host: str = "ctl2",
) -> tuple[int, str, str]:
    payload = {
        "typeURI": "http://schemas.dmtf.org/cloud/audit/1.0/event",
        "eventType": "activity",
        "id": uuid4(rng),
        "eventTime": formats.iso_utc(t, rng.randrange(1000)),
        "action": action,
        "outcome": "success",
        "observer": {"id": sc.world.observer_id, "typeURI": "service/security"},
        "initiator": {
            "id": initiator_id,
            "typeURI": "service/security/account/user",
            "host": {
                "address": "10.10.0.22",
                "agent": "python-openstackclient/6.6.0 "
                "keystoneauth1/5.6.0 python-requests/2.31.0 CPython/3.12.3",
            },
            "user_id": initiator_id,
            "project_id": sc.world.admin_project,
            "request_id": "req-" + uuid4(rng),
            "username": "bob",
        },
        "target": {"id": resource, "typeURI": type_uri},
        "resource_info": resource,
    }
    return (t, "ctl1/notifications.json", notification(t, rng, f"identity.{host}", event_type, payload))


def orphaned_project(
    sc: Scene, rng: random.Random, t_create: int, t_delete: int, computes: tuple[str, str]
) -> tuple[str, Episode]:
    """A project gets two instances (one with a volume), then is deleted with them still alive."""
    project, user = hex32(rng), hex32(rng)
    ops = sc.world.ops_ids["bob"]
    ep: Episode = [
        _identity_cadf(
            sc,
            rng,
            t_create,
            "created.project",
            "data/security/project",
            project,
            ops,
            "identity.project.created",
        )
    ]
    life = Lifecycle(sc, rng)
    for i, compute in enumerate(computes):
        lines, _, _ = life.build(
            t_create + 60_000 + i * 90_000,
            project,
            user,
            compute,
            "ctl2",
            volume=(i == 0),
            delete_after=None,
            name=f"legacy-app-{i + 1}",
        )
        ep += lines
    ep.append(
        _identity_cadf(
            sc,
            rng,
            t_delete,
            "deleted.project",
            "data/security/project",
            project,
            ops,
            "identity.project.deleted",
        )
    )
    return project, ep
