"""Usage baselines at scale: ``python -m benchmarks.usage_baselines --projects 100000 --users 100000``.

The built-in usage pack (rules/usage/: the spike rules' per-project and per-user baselines, the
new_value rules' remembered flavors and images, the thresholds) over a synthetic stream in
which every one of ``--projects`` projects and ``--users`` users creates instances on each of
``--days`` days, spread over the day, so every key is learned and held at once. Each event
carries a raw record of about 1 KB, as a notification does (evidence keeps raw text). Memory is the
question: the figure is the process's peak RSS with the engine, against the same run's
baseline, the peak RSS of generating and walking the same stream with no engine (two
processes). Keys held and evicted per rule say whether the caps (``max_keys``, default 100,000
per rule; 250,000 in the usage pack's per-project and per-user rules) were reached. Events/s
is printed for information, not as a target.

The engine side then writes the spike rules' baselines as serve does at stop
(pipeline/baselines.py) and reads them back into a fresh engine: the snapshot's size on disk
and the time to save and to load it (what a restart of serve costs), keys restored; then the
periodic save as serve runs it (snapshot on the event loop, encoding and writing in a thread) and
the longest the loop then waited for a turn.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import orjson

from stackwatch.core.event import Event, Initiator, Target

START = datetime(2026, 3, 2, tzinfo=UTC)
DAY = 86_400.0


def stream(projects: int, users: int, days: int, per_day: int) -> Iterator[Event]:
    """Time-ordered creations: ``per_day`` a day for each project, each by one of the users
    (user i creates for project i % projects), every key seen every day."""
    keys = max(projects, users)
    total = keys * per_day * days
    step = DAY * days / total
    stride = 7919 if keys % 7919 else 7907  # interleave the keys through the day
    for n in range(total):
        k = (n * stride) % keys
        when = START + timedelta(seconds=n * step)
        user, project = f"u{k % users:06d}", f"p{k % projects:06d}"
        payload = {"instance_id": f"i{n}", "tenant_id": project, "user_id": user,
                   "instance_type": "m1.small", "memory_mb": 2048, "vcpus": 1,
                   "image_ref_url": "http://10.20.0.10:9292/images/155d900f-4e14-4e4c-a73d-069cbf4541e6"}
        # the raw record a notification is on the wire (~1 KB): evidence holds it
        raw = orjson.dumps({"oslo.version": "2.0", "oslo.message": orjson.dumps(
            {"event_type": "compute.instance.create.end", "publisher_id": "compute.cmp1", "priority": "INFO",
             "payload": {**payload, "display_name": f"vm-{n}", "padding": "x" * 600}}).decode()}).decode()
        yield Event(time=when, received=when, host="cmp1", service="nova-compute", severity="info", raw=raw,
                    message="compute.instance.create.end", kind="notification",
                    action="compute.instance.create.end", initiator=Initiator(id=user, project=project),
                    target=Target(type="instance", id=f"i{n}"), attrs={"payload": payload},
                    origin="bench:usage", ref=f"usage:{n}")


def run(projects: int, users: int, days: int, per_day: int, engine: bool) -> dict[str, object]:
    from stackwatch.detect.engine import Engine
    from stackwatch.detect.loader import builtin_rules

    rules = [r for r in builtin_rules().rules if "/usage/" in r.source.replace("\\", "/")]
    detector = Engine(rules, keep_alerts=False) if engine else None  # as serve runs it
    started = time.perf_counter()
    count = 0
    for event in stream(projects, users, days, per_day):
        count += 1
        if detector is not None:
            detector.process(event)
    if detector is not None:
        detector.finish()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out: dict[str, object] = {"engine": engine, "events": count, "seconds": round(seconds, 2),
                              "events_per_s": round(count / seconds) if seconds else None,
                              "peak_rss_mb": round(peak, 1)}
    if detector is not None:
        names = {r.id: r.source.rsplit("/", 1)[-1] for r in rules}
        out["alerts"] = detector.stats.alerts
        out["state"] = {names[rule]: figures for rule, figures in detector.state_stats().items()
                        if figures["keys"] or figures["evicted"]}
        out["snapshot"] = snapshot(detector, lambda: Engine(rules, keep_alerts=False))
    return out


def snapshot(engine: object, fresh: Callable[[], object]) -> dict[str, object]:
    """Save the spike baselines as serve does at stop, load them into a fresh engine as serve
    does at start: file size, seconds each way, keys restored. Then the periodic save as serve
    runs it: the snapshot taken on the event loop, encoded and written by a thread; the
    longest the loop waited for a turn meanwhile (a 1 ms ticker's largest gap) against the
    whole save's time (what the loop waited when all of it ran there)."""
    from stackwatch.pipeline import baselines

    with tempfile.TemporaryDirectory() as folder:
        began, began_cpu = time.perf_counter(), time.process_time()
        written = baselines.save(engine, folder)
        saved, saved_cpu = time.perf_counter() - began, time.process_time() - began_cpu
        size = baselines.baselines_path(folder).stat().st_size
        target = fresh()
        began = time.perf_counter()
        restored = baselines.load(target, folder)
        loaded = time.perf_counter() - began
        taken, taken_cpu, stall = asyncio.run(_periodic_save(engine, folder))
    return {"keys": written, "restored": restored, "bytes": size, "save_s": round(saved, 2),
            "save_cpu_s": round(saved_cpu, 3), "load_s": round(loaded, 2),
            "periodic_on_loop_s": round(taken, 3), "periodic_on_loop_cpu_s": round(taken_cpu, 3),
            "periodic_largest_stall_s": round(stall, 3)}


async def _periodic_save(engine: object, folder: str) -> tuple[float, float, float]:
    """(seconds the snapshot held the loop, its CPU seconds, the loop's largest wait for a
    turn) over one periodic save (pipeline.runner's ``_save_state``)."""
    from stackwatch.pipeline import baselines

    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    began, began_cpu = time.perf_counter(), time.process_time()
    doc = baselines.snapshot(engine)
    taken, taken_cpu = time.perf_counter() - began, time.process_time() - began_cpu
    assert doc is not None
    await asyncio.to_thread(baselines.write, doc, folder)
    done.set()
    await task
    return taken, taken_cpu, max(gaps)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--projects", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--per-day", type=int, default=2, help="creations per key and day")
    parser.add_argument("--one", choices=["baseline", "engine"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a child: one side, its own peak RSS
        figures = run(args.projects, args.users, args.days, args.per_day, args.one == "engine")
        sys.stdout.write(orjson.dumps(figures).decode() + "\n")
        return
    sides = {}
    for side in ("baseline", "engine"):
        done = subprocess.run([sys.executable, "-m", "benchmarks.usage_baselines", "--one", side,
                               "--projects", str(args.projects), "--users", str(args.users),
                               "--days", str(args.days), "--per-day", str(args.per_day)],
                              capture_output=True, text=True, check=True)
        sides[side] = orjson.loads(done.stdout)
    base, eng = sides["baseline"], sides["engine"]
    print(f"usage pack: {args.projects:,} projects, {args.users:,} users, {args.days} days, "
          f"{eng['events']:,} creations")
    print("| side | events/s | peak RSS MB | seconds |\n|---|---:|---:|---:|")
    for name, side in (("stream only (baseline)", base), ("usage rules", eng)):
        print(f"| {name} | {side['events_per_s']:,} | {side['peak_rss_mb']} | {side['seconds']} |")
    print(f"\nengine memory over the baseline: {eng['peak_rss_mb'] - base['peak_rss_mb']:.1f} MB "  # type: ignore[operator]
          f"({eng['peak_rss_mb'] / base['peak_rss_mb']:.2f}x); alerts: {eng['alerts']}")  # type: ignore[operator]
    print("| rule | keys held | evicted | expired |\n|---|---:|---:|---:|")
    for rule, figures in eng["state"].items():  # type: ignore[union-attr]
        print(f"| {rule} | {figures['keys']:,} | {figures['evicted']:,} | {figures['expired']:,} |")
    snap = eng["snapshot"]
    print(f"\nspike baselines snapshot: {snap['keys']:,} keys, {snap['bytes'] / 1e6:.1f} MB, "  # type: ignore[index]
          f"saved in {snap['save_s']} s, loaded in {snap['load_s']} s "  # type: ignore[index]
          f"({snap['restored']:,} keys restored; {snap['save_cpu_s']} CPU-s to save); the periodic "  # type: ignore[index]
          f"save held serve's loop {snap['periodic_on_loop_s']} s ({snap['periodic_on_loop_cpu_s']} "  # type: ignore[index]
          f"CPU-s) for the snapshot, its longest wait for a turn "
          f"{snap['periodic_largest_stall_s']} s (encoding and writing in a thread)")  # type: ignore[index]
    sys.stdout.write(orjson.dumps(sides).decode() + "\n")


if __name__ == "__main__":
    main()
