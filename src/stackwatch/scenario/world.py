"""The simulated cloud: hosts, addresses, people, projects and seeded identifiers.

Every random choice comes from a ``random.Random`` seeded with a string derived from the
scenario seed (string seeds hash with SHA-512, stable across runs and platforms), so the
same seed gives byte-identical output.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from stackwatch.scenario.formats import oslo_ctx

CONTROLLERS = ("ctl1", "ctl2", "ctl3")
COMPUTES = ("cmp1", "cmp2", "cmp3", "cmp4")
NETWORK = ("net1",)
HOSTS = CONTROLLERS + COMPUTES + NETWORK
HOST_IP = {
    "ctl1": "10.20.0.11",
    "ctl2": "10.20.0.12",
    "ctl3": "10.20.0.13",
    "cmp1": "10.20.0.21",
    "cmp2": "10.20.0.22",
    "cmp3": "10.20.0.23",
    "cmp4": "10.20.0.24",
    "net1": "10.20.0.31",
}
VIP = "10.20.0.10"  # haproxy in front of the API services
# ctl3 runs the newer release (a cloud in the middle of a rolling upgrade): its oslo.log
# context blocks start with the global request id (``[None req-...``) and keystone logs
# failures under keystone.server.flask.application; the others write the older forms.
NEW_RELEASE_HOSTS = frozenset({"ctl3"})

OPS_TEAM = {"alice": "10.10.0.21", "bob": "10.10.0.22", "carol": "10.10.0.23"}
SERVICE_USERS = ("nova", "neutron", "cinder", "glance", "placement")
AGENTS = (
    "python-openstackclient/6.6.0 keystoneauth1/5.6.0 python-requests/2.31.0 CPython/3.12.3",
    "openstacksdk/3.0.0 keystoneauth1/5.6.0 python-requests/2.31.0 CPython/3.12.3",
    "keystoneauth1/5.6.0 python-requests/2.31.0 CPython/3.12.3",
)
SERVICE_AGENT = "keystoneauth1/5.6.0 python-requests/2.31.0 CPython/3.12.3"
KERNEL_BANNER = (
    "Linux version 6.8.0-45-generic (buildd@lcy02-amd64-115) (x86_64-linux-gnu-gcc-13 "
    "(Ubuntu 13.2.0-23ubuntu4) 13.2.0, GNU ld (GNU Binutils for Ubuntu) 2.42) #45-Ubuntu SMP "
    "PREEMPT_DYNAMIC Fri Aug 30 12:02:04 UTC 2024 (Ubuntu 6.8.0-45.45-generic 6.8.12)"
)


def hex32(rng: random.Random) -> str:
    """A keystone-style id: 32 lowercase hex digits."""
    return f"{rng.getrandbits(128):032x}"


def uuid4(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def req_id(rng: random.Random) -> str:
    return "req-" + uuid4(rng)


def mac(rng: random.Random) -> str:
    b = rng.getrandbits(24)
    return f"fa:16:3e:{b >> 16:02x}:{(b >> 8) & 255:02x}:{b & 255:02x}"


@dataclass(slots=True)
class Project:
    name: str
    id: str
    users: list[tuple[str, str]]  # (name, id)


@dataclass(slots=True)
class World:
    """Identities shared by every stream of one scenario."""

    seed: int
    admin_id: str = ""
    admin_project: str = ""
    service_project: str = ""
    service_ids: dict[str, str] = field(default_factory=dict)
    ops_ids: dict[str, str] = field(default_factory=dict)
    projects: list[Project] = field(default_factory=list)
    observer_id: str = ""
    image_id: str = ""
    boot: dict[str, int] = field(default_factory=dict)  # host -> boot time (ms) for kernel stamps

    @classmethod
    def build(cls, seed: int, start_ms: int) -> World:
        rng = random.Random(f"{seed}:world")
        w = cls(seed=seed)
        w.admin_id = hex32(rng)
        w.admin_project = hex32(rng)
        w.service_project = hex32(rng)
        w.service_ids = {name: hex32(rng) for name in SERVICE_USERS}
        w.ops_ids = {name: hex32(rng) for name in OPS_TEAM}
        names = (
            "web-frontend",
            "data-pipeline",
            "ml-training",
            "ci-runners",
            "billing",
            "analytics",
            "staging",
            "research",
        )
        first = (
            "anna",
            "ben",
            "chen",
            "dora",
            "emil",
            "fatima",
            "goran",
            "hana",
            "ivan",
            "julia",
            "kofi",
            "lena",
            "mateo",
            "nina",
            "omar",
            "petra",
            "quinn",
            "rosa",
            "sven",
            "tariq",
        )
        for i, name in enumerate(names):
            users = [
                (f"{first[(i * 3 + k) % len(first)]}.{name.split('-')[0]}", hex32(rng)) for k in range(3)
            ]
            w.projects.append(Project(name=name, id=hex32(rng), users=users))
        w.observer_id = hex32(rng)
        w.image_id = uuid4(rng)
        w.boot = {h: start_ms - rng.randrange(3, 60) * 86_400_000 for h in HOSTS}
        return w

    def stream_rng(self, *parts: object) -> random.Random:
        """An independent, reproducible generator for one stream."""
        return random.Random(":".join([str(self.seed), *map(str, parts)]))


@dataclass(slots=True)
class Scene:
    """The world plus the time span and the per-host counters real nodes keep."""

    world: World
    start: int  # ms
    end: int  # ms
    _pids: dict[tuple[str, str], int] = field(default_factory=dict)

    def pid(self, host: str, program: str) -> int:
        """The pid of a long-running daemon on a host (stable for the whole scenario)."""
        key = (host, program)
        pid = self._pids.get(key)
        if pid is None:
            pid = self._pids[key] = self.world.stream_rng("pid", host, program).randrange(700, 4_000_000)
        return pid

    def audit_serial(self, t: int, salt: int) -> int:
        """auditd serials grow with time and never repeat: one per (millisecond, stream);
        ``salt`` (0..15) keeps the streams of one host apart."""
        return 18_000 + (t - self.start) * 16 + (salt & 15)

    def session(self, t: int, salt: int) -> int:
        """A logind session number (grows with time, like the kernel's counter)."""
        return 300 + (t - self.start) // 20_000 * 4 + (salt & 3)

    def new(self, host: str) -> bool:
        return host in NEW_RELEASE_HOSTS

    def ctx(self, host: str, req: str, user: str = "-", project: str = "-") -> str:
        return oslo_ctx(req, user, project, new=host in NEW_RELEASE_HOSTS)
