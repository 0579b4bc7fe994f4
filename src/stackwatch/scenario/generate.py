"""Generate a seeded, realistic multi-host OpenStack log scenario.

The output is laid out like a central rsyslog server, ``<out_dir>/<host>/<file>``, with
3 controllers (keystone behind Apache, nova-api, neutron-server), 4 compute nodes and a
network node (neutron agents, Suricata), plus ``ctl1/notifications.json`` (the
notification bus, one oslo.messaging v2 envelope per line) and ``manifest.json`` (the
incidents and where their lines are).

Benign background streams and the incident plan (scenario.plan) are merged by time and
written as they are produced, so memory stays flat for 10M lines. The same seed gives
byte-identical output.
"""

from __future__ import annotations

import heapq
import io
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path

from stackwatch.scenario import bg_openstack, bg_os
from stackwatch.scenario.manifest import Manifest
from stackwatch.scenario.plan import Plan, build_plan
from stackwatch.scenario.streams import Episode, Gate, Line, ordered
from stackwatch.scenario.world import COMPUTES, CONTROLLERS, HOSTS, NETWORK, Scene, World

DEFAULT_START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
DEFAULT_DURATION = timedelta(hours=2)
DEFAULT_LINES = 60_000
DEMO_LINES = 4_000

# Share of generated background lines that survive: sources that fall silent, a host that
# reboots, INFO dropped after the level change, episodes running past the end (measured).
KEPT = 0.958

StreamFn = Callable[..., Iterator[Episode]]

# (stream, hosts it runs on, share of the background lines, lines per episode). The
# lines-per-episode figures were measured on generated output; they turn a line budget
# into an episode count.
BACKGROUND: tuple[tuple[StreamFn, tuple[str, ...] | None, float, float], ...] = (
    (bg_openstack.keystone_requests, CONTROLLERS, 0.22, 1.67),
    (bg_openstack.nova_api_reads, CONTROLLERS, 0.10, 1.0),
    (bg_openstack.neutron_server, CONTROLLERS, 0.12, 1.0),
    (bg_openstack.compute_periodic, COMPUTES, 0.12, 4.17),
    (bg_openstack.instances, None, 0.10, 27.5),
    (bg_openstack.neutron_agents, NETWORK, 0.08, 1.0),
    (bg_os.ops_sessions, HOSTS, 0.05, 18.8),
    (bg_os.cron, HOSTS, 0.08, 9.0),
    (bg_os.daemons, HOSTS, 0.06, 1.5),
    (bg_os.suricata_eve, NETWORK, 0.07, 1.0),
)


def _background(sc: Scene, plan: Plan, budget: float) -> list[Iterator[Episode]]:
    streams: list[Iterator[Episode]] = []
    for fn, hosts, share, per_episode in BACKGROUND:
        name = fn.__name__
        if hosts is None:
            count = budget * share / per_episode
            streams.append(fn(sc, sc.world.stream_rng(name), count))
            continue
        count = budget * share / per_episode / len(hosts)
        for host in hosts:
            rng = sc.world.stream_rng(name, host)
            if fn is bg_openstack.neutron_server:
                streams.append(
                    bg_openstack.neutron_server(sc, host, rng, count, level_drop_at=plan.level_drop.get(host))
                )
            else:
                streams.append(fn(sc, host, rng, count))
    return streams


def _line_filter(gates: dict[str, Gate]) -> Callable[[Line], bool]:
    def allows(line: Line) -> bool:
        gate = gates.get(line[1])
        return gate is None or gate.allows(line[0])

    return allows


def generate(
    out_dir: Path,
    *,
    seed: int = 7,
    lines: int | None = None,
    start: datetime = DEFAULT_START,
    duration: timedelta = DEFAULT_DURATION,
    attacks: bool = True,
) -> Manifest:
    """Write the scenario into ``out_dir`` and return (and save) its manifest.

    ``lines`` is the target line count over all files (default 60,000); the result lands
    within a few percent of it. ``attacks=False`` writes only the benign background.
    """
    out_dir = Path(out_dir)
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    t0 = int(start.timestamp() * 1000)
    t1 = t0 + int(duration.total_seconds() * 1000)
    target = DEFAULT_LINES if lines is None else max(1, int(lines))
    sc = Scene(World.build(seed, t0), t0, t1)
    plan = build_plan(sc, target, attacks)
    budget = max(0.0, target - plan.lines) / KEPT

    allows = _line_filter(plan.path_gates)
    sources = [ordered(s, t1, line_filter=allows) for s in _background(sc, plan, budget)]
    sources += [ordered(s, t1) for s in plan.streams]  # incidents are never gated

    manifest = Manifest(
        seed=seed, start=start.isoformat(), end=(start + duration).isoformat(), incidents=plan.incidents
    )
    _write(out_dir, heapq.merge(*sources, key=itemgetter(0)), manifest)
    manifest.save(out_dir)
    return manifest


def _write(out_dir: Path, lines: Iterator[Line], manifest: Manifest) -> None:
    """Stream lines into their files; each file gets a buffer flushed in large writes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    handles: dict[str, io.TextIOWrapper] = {}
    buffers: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    try:
        for _, path, text in lines:
            buf = buffers.get(path)
            if buf is None:
                target = out_dir / path
                target.parent.mkdir(parents=True, exist_ok=True)
                handles[path] = open(target, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
                buf = buffers[path] = []
                counts[path] = 0
            buf.append(text)
            counts[path] += text.count("\n") + 1
            if len(buf) >= 4096:
                buf.append("")
                handles[path].write("\n".join(buf))
                buf.clear()
        for path, buf in buffers.items():
            if buf:
                buf.append("")
                handles[path].write("\n".join(buf))
    finally:
        for handle in handles.values():
            handle.close()
    manifest.files = dict(sorted(counts.items()))
    manifest.lines = sum(counts.values())


def demo_dataset(tmp_dir: Path | None = None, *, seed: int = 7) -> Path:
    """A small scenario with every incident (~4,000 lines, well under a second) for
    ``stackwatch demo``; returns the folder holding it."""
    base = Path(tmp_dir) if tmp_dir is not None else Path(tempfile.mkdtemp(prefix="stackwatch-demo-"))
    out = base / "demo-logs"
    generate(out, seed=seed, lines=DEMO_LINES)
    return out
