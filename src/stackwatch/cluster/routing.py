"""The partition planner: which routing buckets an event goes to, and for which rules there.

Detection state is keyed by entity: a threshold rule counts per ``group_by`` key (source IP,
account, host+service), so every event of one key must meet the same analyzer. A collector
therefore routes one copy of an event per distinct key among the rules that could match it
(the repartition pattern of Kafka Streams): the key's text values are hashed into one of
``buckets`` routing buckets, the bucket is the AMQP routing key, and the consistent-hash
exchange maps each bucket onto one partition. Collectors never coordinate: the same key gives
the same bucket on every collector, so a brute force against three keystone controllers from
one address, read by three collectors, is counted in one partition.

Per rule, decided once (never per event, or one key could land in two places):

* the **gate**: the rule's index hints (action/service/kind/outcome), as the engine's own
  candidate index uses them, then the rest of its condition, so a copy goes only where a rule
  will count it (a rule reading every log line's message for "Quota exceeded" must not double
  the traffic); plus its ``explained_by`` condition: the events that can explain a firing must
  reach the partition where it fires. keystone's login copies pass on the gate alone: the
  analyzer's correlation stage may still add the fields a condition reads.
* the **route fields**: the fields whose values choose the bucket. A stateful rule's key fields
  (``group_by``; absence and level_drop default to host+service), reduced to the smallest key
  of another rule contained in it: a rule per (host, unit) and a rule per host both route by
  host, so an event meeting both travels once. The per-source wall-clock kinds (absence,
  level_drop) keep their own key (host+service by default): an analyzer finds where a declared
  source that never spoke is watched from its host and service alone (``buckets_for``).
  Routing by a subset of the key keeps each key whole in one partition. With ``explained_by``,
  the fields shared with its ``same`` fields are preferred (both the firing and its explanation
  land by them). A stateful rule without a key
  (one global count) routes by the empty key: one bucket. A sequence rule whose steps key
  different fields routes each event by every keying (the values, not the field names, choose
  the bucket, so the aliases of one user meet).
* **stateless** rules (``match`` without ``group_by``) are evaluated on the home copy.
* the orphaned-resources detector (``respond/orphans.py``, named by its ``RULE_ID``) gets every
  event it reads (resource notifications, owner deletions) in one bucket: its ledger is whole.

Every event has exactly one **home** copy, the one stored: the copy of its first route (a
deterministic choice), or, when no stateful rule wants it, a copy routed by host+service
(a source's records stay together and in order).

keystone's login copies (the correlation stage, ``detect/correlate.py``): the name of a
``user.not_found`` line is remembered per request id, so the refused attempt of the same
request is routed under that user as the analyzer's correlation stage will name it.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from stackwatch.core.event import Event
from stackwatch.detect.codegen import residual_for
from stackwatch.detect.correlate import CORRELATED_ACTIONS
from stackwatch.detect.fields import getter
from stackwatch.detect.model import INDEX_DIMENSIONS, Rule

STATELESS_KINDS: Final = frozenset({"match"})
SOURCE_KINDS: Final = frozenset({"absence", "level_drop"})
"""The per-source, wall-clock kinds: routed by their own key, never reduced (see plan_rules)."""
SOURCE_FIELDS: Final = ("host", "service")
"""The default key of the per-source kinds, and the home route of an event no rule keys."""
MAX_COMBOS: Final = 8192
NAMES_REMEMBERED: Final = 10_000

Combo = tuple[str | None, str, str, str | None]


Test = Callable[[Event], bool]


@dataclass(frozen=True)
class RulePlan:
    """How one rule's copies are routed."""

    rule_id: str
    keyings: tuple[tuple[str, ...], ...]  # route fields (one per sequence-step keying); () = stateless
    hints: tuple[dict[str, frozenset[str]], ...]  # gates: the rule's index, its explainer's hints
    tests: tuple[Test | None, ...]  # per gate, what is left of the condition past it (None: nothing)


def key_fields(rule: Rule) -> tuple[tuple[str, ...], ...]:
    """The key fields a rule's state is kept under (several for a sequence whose steps key
    their own fields); () for a stateless rule."""
    if rule.kind in STATELESS_KINDS and not rule.group_by:
        return ()
    if rule.kind in SOURCE_KINDS:
        return (rule.group_by or SOURCE_FIELDS,)
    if rule.kind == "new_value":  # "seen before" is a set per (key, value): the value joins the key
        fields = tuple(getattr(rule.params, "fields", ()) or ())
        return (rule.group_by + tuple(f for f in fields if f not in rule.group_by),)
    if rule.kind == "sequence":
        steps = getattr(rule.params, "steps", ()) or ()
        keyings: list[tuple[str, ...]] = []
        for step in steps:
            key = rule.group_by if step.group_by is None else tuple(step.group_by)
            if key not in keyings:
                keyings.append(key)
        return tuple(keyings) or (rule.group_by,)
    return (rule.group_by,)


def _route_fields(own: tuple[str, ...], keys: Sequence[tuple[str, ...]], same: tuple[str, ...] | None
                  ) -> tuple[str, ...]:
    """The smallest key among ``keys`` contained in ``own`` (``own`` itself at worst), preferring
    one within ``same`` (the explainer's fields) when the rule has an explainer."""
    contained = [k for k in keys if k and set(k) <= set(own)]
    if same is not None:
        shared = [k for k in contained if set(k) <= set(same)]
        if shared:
            contained = shared
        elif own:  # no key serves both: the rule's state wins; explanations follow its key
            common = tuple(f for f in own if f in same)
            if common:
                return common
    if not contained:
        return own
    return min(contained, key=lambda k: (len(k), k))


def plan_rules(rules: Iterable[Rule]) -> list[RulePlan]:
    """The routing plan of every enabled rule (same rules: same plan, on every collector)."""
    enabled = [r for r in rules if r.enabled]
    keys = sorted({k for r in enabled for k in key_fields(r) if k}, key=lambda k: (len(k), k))
    plans = []
    for rule in enabled:
        explained = rule.explained_by
        same = tuple(explained.same) if explained is not None else None
        hints: list[dict[str, frozenset[str]]] = [dict(rule.index)]
        usable, residual = residual_for(rule.condition, rule.index)
        tests: list[Test | None] = [residual if usable else rule.condition]
        if explained is not None:
            hints.append(dict(explained.condition.hints))
            tests.append(explained.condition.predicate)
        own = key_fields(rule)
        if rule.kind in SOURCE_KINDS:
            # a source's silence is watched where its own key lands, with nothing reduced: an
            # analyzer finds the partition of a declared (expected) source from host and service
            plans.append(RulePlan(rule.id, own, tuple(hints), tuple(tests)))
            continue
        if not own and same:  # a stateless rule with an explainer: its explanations key by `same`
            own = (same,)
            keyings: tuple[tuple[str, ...], ...] = (same,)
        elif len(own) == 1:
            keyings = (_route_fields(own[0], keys, same),)
        else:
            keyings = own  # a multi-keyed sequence routes by each of its keyings as they are
        plans.append(RulePlan(rule.id, keyings, tuple(hints), tuple(tests)))
    return plans


def bucket_of(values: tuple[str, ...], buckets: int) -> int:
    """The routing bucket of a key's text values (stable across processes and machines)."""
    data = "\x1f".join(values).encode("utf-8", "surrogatepass")
    return zlib.crc32(data) % buckets


_Route = tuple[Callable[[Event], tuple[str, ...]], tuple[str, ...], tuple[tuple[str, Test], ...],
               tuple[str, ...]]
"""(the values of an event's route fields, the rules that take every event past their gates, the
(rule, test) of those whose condition is left to test, all of them (keystone logins))."""


class Planner:
    """Event -> [(bucket, rule ids, home)]: one entry per distinct bucket, exactly one home."""

    def __init__(self, rules: Iterable[Rule], buckets: int) -> None:
        if buckets < 1:
            raise ValueError("buckets must be at least 1")
        self.buckets = buckets
        self.plans = plan_rules(rules)
        self.stateless = tuple(p.rule_id for p in self.plans if not p.keyings)
        self._readers: dict[tuple[str, ...], Callable[[Event], tuple[str, ...]]] = {}
        self._combos: dict[Combo, tuple[_Route, ...]] = {}
        self._home = self._reader(SOURCE_FIELDS)
        self._names: OrderedDict[str, str] = OrderedDict()  # keystone request id -> user name
        # the orphaned-resources detector (respond/orphans.py) rides along with the engine: its
        # ledger of who owns what is one whole, so all it reads meets in one bucket (notifications
        # about resources and owner deletions: a trickle beside the logs)
        from stackwatch.respond.orphans import _DELETIONS, _EVENT_TYPES, RULE_ID, OrphanDetector

        self._orphan_actions: frozenset[str] = OrphanDetector().ledger.actions | frozenset(_DELETIONS)
        self._orphan_types = frozenset(_EVENT_TYPES)
        self._orphan_route: tuple[int, tuple[str, ...]] = (bucket_of((), buckets), (RULE_ID,))

    def _reader(self, fields: tuple[str, ...]) -> Callable[[Event], tuple[str, ...]]:
        reader = self._readers.get(fields)
        if reader is None:
            getters = [getter(f) for f in fields]
            name_at = fields.index("initiator.name") if "initiator.name" in fields else -1

            def read(event: Event, getters: list[Any] = getters, name_at: int = name_at) -> tuple[str, ...]:
                values = [_text(g(event)) for g in getters]
                if name_at >= 0 and not values[name_at] and event.request_id:
                    values[name_at] = self._names.get(event.request_id, "")
                return tuple(values)

            reader = self._readers[fields] = read
        return reader

    def _routes(self, combo: Combo) -> tuple[_Route, ...]:
        values = dict(zip(INDEX_DIMENSIONS, combo, strict=True))
        by_fields: dict[tuple[str, ...], tuple[list[str], list[tuple[str, Test]]]] = {}
        for plan in self.plans:
            if not plan.keyings:
                continue
            tests = [test for hints, test in zip(plan.hints, plan.tests, strict=True)
                     if all(values[dim] in allowed for dim, allowed in hints.items())]
            if not tests:
                continue
            for fields in plan.keyings:
                always, tested = by_fields.setdefault(fields, ([], []))
                if None in tests:
                    always.append(plan.rule_id)
                else:
                    tested.append((plan.rule_id, _any_of([t for t in tests if t is not None])))
        routes = tuple((self._reader(fields), tuple(always), tuple(tested),
                        (*always, *(rule_id for rule_id, _ in tested)))
                       for fields, (always, tested) in by_fields.items())
        if len(self._combos) >= MAX_COMBOS:
            self._combos.clear()
        self._combos[combo] = routes
        return routes

    def route(self, event: Event) -> list[tuple[int, tuple[str, ...], bool]]:
        """The copies of ``event``: (bucket, rule ids evaluated there, this copy is stored)."""
        action = event.action
        correlated = False
        if action in CORRELATED_ACTIONS:
            if action == "user.not_found":
                self._remember(event)
            # the correlation stage may still add fields a condition reads: gates only
            correlated = event.service == "keystone"
        combo = (action, event.service, event.kind, event.outcome)
        routes = self._combos.get(combo)
        if routes is None:
            routes = self._routes(combo)
        buckets = self.buckets
        copies: dict[int, tuple[str, ...]] = {}
        merged = False
        for read, always, tested, every in routes:
            if correlated:
                ids = every
            elif tested:
                ids = always + tuple([rule_id for rule_id, test in tested if test(event)])
            else:
                ids = always
            if ids:
                bucket = bucket_of(read(event), buckets)
                known = copies.get(bucket)
                if known is None:
                    copies[bucket] = ids
                else:
                    copies[bucket] = known + ids
                    merged = True
        if action in self._orphan_actions or (
                "event_type" in event.attrs and str(event.attrs["event_type"]) in self._orphan_types):
            bucket, ids = self._orphan_route
            known = copies.get(bucket)
            copies[bucket] = ids if known is None else known + ids
        if not copies:
            return [(bucket_of(self._home(event), buckets), self.stateless, True)]
        out = []
        home = True
        for bucket, ids in copies.items():
            if merged:  # two keyings of one rule may share a bucket: name it once
                ids = tuple(dict.fromkeys(ids))
            out.append((bucket, ids + self.stateless if home else ids, home))
            home = False
        return out

    def buckets_for(self, rule_id: str, fields: dict[str, str]) -> list[int]:
        """The buckets where ``rule_id`` keeps the state of the key given as field values (an
        expected source ``{host, service}`` of an absence rule: the one analyzer that watches it
        is the one consuming the partition of that bucket). A field the rule does not route by is
        ignored; one bucket per keying of the rule."""
        for plan in self.plans:
            if plan.rule_id == rule_id:
                if not plan.keyings:
                    return []
                return [bucket_of(tuple(fields.get(f, "") for f in keying), self.buckets)
                        for keying in plan.keyings]
        raise KeyError(rule_id)

    def _remember(self, event: Event) -> None:
        name, rid = event.initiator.name, event.request_id
        if name and rid:
            names = self._names
            names[rid] = name
            names.move_to_end(rid)
            if len(names) > NAMES_REMEMBERED:
                names.popitem(last=False)


def _any_of(tests: list[Test]) -> Test:
    if len(tests) == 1:
        return tests[0]
    return lambda event: any(test(event) for test in tests)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)
