"""The partition planner: one copy per distinct key of the rules an event can meet, exactly one
home copy, the same bucket for the same key on every collector, and the detections it feeds are
the same as one engine's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from stackwatch.cluster.routing import Planner, bucket_of, plan_rules
from stackwatch.core.event import Event, Initiator
from stackwatch.detect.engine import Engine
from stackwatch.detect.loader import builtin_rules, load_text
from stackwatch.detect.model import Rule

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BRUTE = "f05115da-9716-450c-a39a-d30657030483"  # keystone brute force from one address


def _failure(host: str, n: int, ip: str = "203.0.113.7") -> Event:
    when = T0 + timedelta(seconds=n)
    return Event(time=when, received=when, host=host, service="keystone", kind="oslo_log",
                 action="authenticate", outcome="failure",
                 initiator=Initiator(name=f"user{n % 5}", source_ip=ip), ref=f"{host}:{n}")


def test_brute_force_across_controllers_lands_in_one_bucket() -> None:
    rules = builtin_rules().rules
    planners = [Planner(rules, 64) for _ in range(3)]  # three collectors, each its own planner
    buckets = set()
    for n in range(60):
        host = f"ctl{n % 3 + 1}"
        copies = planners[n % 3].route(_failure(host, n))
        assert sum(home for _, _, home in copies) == 1
        assert len({b for b, _, _ in copies}) == len(copies)  # one copy per bucket
        buckets |= {b for b, ids, _ in copies if BRUTE in ids}
    assert len(buckets) == 1
    other = Planner(rules, 64).route(_failure("ctl1", 1, ip="198.51.100.4"))
    assert BRUTE in next(ids for _, ids, _ in other if BRUTE in ids)


def test_route_fields_reduce_to_a_contained_key() -> None:
    text = """
- id: 00000000-0000-4000-8000-000000000001
  title: per host
  category: os.login
  severity: low
  kind: threshold
  condition: {service: sshd}
  group_by: [host]
  threshold: 3
  window: 1m
- id: 00000000-0000-4000-8000-000000000002
  title: per host and user
  category: os.login
  severity: low
  kind: threshold
  condition: {service: sshd}
  group_by: [host, initiator.name]
  threshold: 3
  window: 1m
- id: 00000000-0000-4000-8000-000000000003
  title: every one
  category: os.login
  severity: low
  condition: {service: sshd, outcome: success}
"""
    rules, errors = load_text(text, "t.yaml")
    assert not errors
    plans = {p.rule_id[-1]: p.keyings for p in plan_rules(rules)}
    assert plans == {"1": (("host",),), "2": (("host",),), "3": ()}
    planner = Planner(rules, 16)
    event = Event(time=T0, received=T0, host="cmp1", service="sshd", outcome="success",
                  initiator=Initiator(name="bob"))
    [(bucket, ids, home)] = planner.route(event)
    assert home and bucket == bucket_of(("cmp1",), 16)
    assert set(ids) == {r.id for r in rules}  # the stateless rule rides on the home copy
    quiet = Event(time=T0, received=T0, host="cmp1", service="cron")
    assert planner.route(quiet) == [(bucket_of(("cmp1", "cron"), 16), (rules[2].id,), True)]
    assert planner.buckets_for(rules[1].id, {"host": "cmp1", "service": "sshd"}) == [bucket]
    assert planner.buckets_for(rules[2].id, {"host": "cmp1"}) == []


def test_partitioned_engines_raise_what_one_engine_raises() -> None:
    """The built-in rules over a mixed stream: one engine per bucket, each evaluating only the rules
    its copies name, raise the same (rule, key) alerts as one engine over everything."""
    rules = builtin_rules().rules
    events = []
    for n in range(200):
        events.append(_failure(f"ctl{n % 3 + 1}", n, ip=f"203.0.113.{n % 4}"))
        when = T0 + timedelta(seconds=n)
        events.append(Event(time=when, received=when, host=f"cmp{n % 2}", service="sshd", kind="syslog",
                            action="authenticate", outcome="failure",
                            initiator=Initiator(name="root", source_ip="192.0.2.9"), ref=f"ssh:{n}"))
    single = Engine(rules, correlate=True)
    for event in events:
        single.process(event)
    single.finish()
    expected = {(a.rule, a.key, a.count) for a in single.alerts()}
    planner = Planner(rules, 8)
    by_id = {r.id: r for r in rules}
    engines: dict[tuple[int, str], Engine] = {}  # (bucket, rule): an analyzer evaluating only that rule
    stored = 0
    for event in events:
        for bucket, ids, home in planner.route(event):
            stored += home
            for rule_id in ids:
                if rule_id not in by_id:  # the orphan detector's id
                    continue
                engine = engines.get((bucket, rule_id))
                if engine is None:
                    engine = engines[(bucket, rule_id)] = Engine([by_id[rule_id]], correlate=True)
                engine.process(event)
    for engine in engines.values():
        engine.finish()
    got = {(a.rule, a.key, a.count) for engine in engines.values() for a in engine.alerts()}
    assert stored == len(events)
    assert expected and got == expected


def test_demo_cloud_partitioned_gives_the_same_alerts(tmp_path: Path) -> None:
    """The demo's three-controller cloud with its attacks: per (bucket, rule) engines fed the copies
    the planner routes give the same alerts, keys and counts as one engine over everything. The
    wall-clock kinds (absence, level_drop) are compared by where their sources go instead: a lone
    rule's engine here has only its own events for a clock, an analyzer ticks on the wall clock."""
    from stackwatch.pipeline.reader import discover, read_events
    from stackwatch.scenario import demo_dataset

    events = list(read_events(discover([str(demo_dataset(tmp_path / "logs", seed=7))])))
    rules = builtin_rules().rules
    start = events[0].time  # learning periods count from one start everywhere

    def fresh(chosen: list[Rule]) -> Engine:
        engine = Engine(chosen)
        engine.tick(start)
        return engine

    single = fresh(rules)
    for event in events:
        single.process(event)
    single.finish()
    timed = {r.id for r in rules if r.kind in ("absence", "level_drop")}
    expected = {(a.rule, a.key, a.count) for a in single.alerts() if a.rule not in timed}
    planner = Planner(rules, 16)
    source_buckets: dict[tuple[str, str, str], set[int]] = {}
    by_id = {r.id: r for r in rules}
    engines: dict[tuple[int, str], Engine] = {}
    homes = 0
    for event in events:
        copies = planner.route(event)
        homes += sum(home for _, _, home in copies)
        for bucket, ids, _ in copies:
            for rule_id in ids:
                if rule_id not in by_id:  # the orphan detector's id: checked below
                    continue
                if rule_id in timed:
                    source_buckets.setdefault((rule_id, event.host, event.service), set()).add(bucket)
                    continue
                engine = engines.get((bucket, rule_id))
                if engine is None:
                    engine = engines[(bucket, rule_id)] = fresh([by_id[rule_id]])
                engine.process(event)
    for engine in engines.values():
        engine.finish()
    got = {(a.rule, a.key, a.count) for engine in engines.values() for a in engine.alerts()}
    assert homes == len(events)
    assert len(expected) > 20 and got == expected
    assert len(source_buckets) > 10 and all(len(b) == 1 for b in source_buckets.values())
    # the orphaned-resources detector: its ledger meets in one bucket and raises what one does
    from stackwatch.respond.orphans import RULE_ID, OrphanDetector

    whole, parts = OrphanDetector(), {}
    for event in events:
        whole.process(event)
        for bucket, ids, _ in planner.route(event):
            if RULE_ID in ids:
                parts.setdefault(bucket, OrphanDetector()).process(event)
    assert len(parts) == 1
    assert [a.key for a in whole.alerts()] == [a.key for p in parts.values() for a in p.alerts()] != []
    # a source's silence is watched in the bucket of its host and service: what an analyzer
    # computes for a declared source that never spoke
    for (rule_id, host, service), buckets in source_buckets.items():
        if not by_id[rule_id].group_by:
            assert buckets == {bucket_of((host, service), 16)}
            assert planner.buckets_for(rule_id, {"host": host, "service": service}) == list(buckets)
