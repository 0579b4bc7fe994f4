"""The record prefilter: every loaded rule's conditions compiled into one cheap test of a
record's header, "can anything care about this record's full parse?" (issue #16, item 3).

The framing asks it for each record whose parser can read a header alone (parsers/lazy.py);
a record it answers no for becomes a header event, parsed in full only when something reads
it. "Anything" is every enabled rule, every ``explained_by`` observer, the login correlator
and the orphan ledger of the engine it is built from (built-in packs, user YAML and Sigma
alike: it reads their compiled form, not their source).

The answer must never change an alert. A header event reaches the engine with no action and
no outcome, so the engine offers it exactly to the rules whose index has neither dimension;
the full event would reach those and the rules whose index admits its action. So a record
may stay a header when, for every rule its kind and service admit:

* the rule's index names actions and none of those the parser says the record may give; or
* the rule names neither action nor outcome, and gives the same answer on the header event
  as on the full one: it reads only header fields (``HEADER_FIELDS``: its condition, group,
  entities, details and summary; kinds whose detectors read no other field), or its
  condition needs a literal (``message`` contains / equals / a regex's required literal)
  that the record's message lacks.

The literal gates are plain substring tests: the built-in packs give a handful per kind
(the quota rule's six), where ``in`` over a short tuple costs less than a call into an RE2
or Hyperscan set would. Decisions are cached per (kind, service, actions, message given).
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from typing import Any, Final

from stackwatch.core.types import DetectionEngine, OrphanAware
from stackwatch.detect.codegen import And, Leaf, Node, Not
from stackwatch.detect.conditions import match_all
from stackwatch.detect.correlate import CORRELATED_ACTIONS
from stackwatch.detect.model import Rule
from stackwatch.detect.render import AGGREGATE_KINDS, DEFAULT_ENTITIES
from stackwatch.parsers.lazy import HEADER_FIELDS

HEADER_KINDS: Final = frozenset(("match", "level_drop", "absence"))
"""Rule kinds whose detectors read no event field beyond the rule's condition, group,
entities, details and summary (level_drop: severity; absence: the source): a rule of another
kind (its parameters name fields: new_value, cardinality, sequence steps...) offered a
record always has it parsed."""

_RULE_VALUES: Final = frozenset(("count", "distinct", "key", "threshold", "window", "title", "values",
                                 "new_value", "baseline", "ratio", "silent_for"))
"""Summary placeholders that are the firing's or the rule's values, not event fields."""

_FULL: Final = True
_SKIP: Final = False
_MAX_CACHE: Final = 4096

Decision = bool | tuple[str, ...]
"""True: parse in full; False: the header does; a tuple: parse in full when the message
holds one of these literals."""

_EXCLUDED: Final = ("<excluded>",)  # a condition false for the header's kind or service


Known = tuple[tuple[str, str], ...]
"""Fields the parser vouches for beyond the header: (dotted path, exact value) pairs."""


class Prefilter:
    """``prefilter(kind, service, message, actions, known)`` -> True when the record needs
    its full parse (the framing's RecordGate, parsers/base.py)."""

    def __init__(self, rules: Iterable[tuple[Rule, Any]], *,
                 explainer_hints: Iterable[Mapping[str, Any]] = (), correlated: frozenset[str] = frozenset(),
                 watched: frozenset[str] = frozenset(), maintenance: bool = False) -> None:
        """``rules``: (rule, detector) of every enabled rule; ``explainer_hints``: the index
        hints of each ``explained_by`` observer; ``correlated``: the actions the correlator
        holds; ``watched``: the actions the orphan ledger reads; ``maintenance``: windows
        are configured (a rule kept quiet in them reads the event's target)."""
        self._slots = [_SlotView(rule, detector, maintenance) for rule, detector in rules]
        self._explainers = [dict(hints) for hints in explainer_hints]
        self._always = correlated | watched
        self._cache: dict[tuple[str, str, frozenset[str], bool, Known], Decision] = {}

    def __call__(self, kind: str, service: str, message: str | None, actions: frozenset[str],
                 known: Known = ()) -> bool:
        key = (kind, service, actions, message is not None, known)
        decision = self._cache.get(key)
        if decision is None:
            if len(self._cache) >= _MAX_CACHE:
                self._cache.clear()
            decision = self._cache[key] = self._decide(kind, service, message is not None, actions, known)
        if decision is True or decision is False:
            return decision
        assert message is not None  # a literal gate is only decided with a message
        for literal in decision:  # noqa: SIM110 - a loop: any() over a generator costs ~15% more
            if literal in message:
                return True
        return False

    def _decide(self, kind: str, service: str, has_message: bool, actions: frozenset[str],
                known: Known) -> Decision:
        if not actions.isdisjoint(self._always):
            return _FULL
        for hints in self._explainers:  # an observer reads any field of what it is offered
            if _admits(hints, kind, service) and _may_offer(hints, actions):
                return _FULL
        literals: list[str] = []
        values = dict(known)
        values["kind"], values["service"] = kind, service
        for slot in self._slots:
            found = slot.decide(values, has_message, actions)
            if found is True:
                return _FULL
            if found is not False:
                literals.extend(found)
        return tuple(dict.fromkeys(literals)) if literals else _SKIP


def _admits(index: Mapping[str, Any], kind: str, service: str) -> bool:
    kinds, services = index.get("kind"), index.get("service")
    return (kinds is None or kind in kinds) and (services is None or service in services)


def _may_offer(index: Mapping[str, Any], actions: frozenset[str]) -> bool:
    """May the full event (action in ``actions`` or None) be offered to this index?"""
    allowed = index.get("action")
    if allowed is not None:
        return not actions.isdisjoint(allowed)
    return True


class _SlotView:
    """What the prefilter knows of one rule: its index, whether it reads only header fields
    (with and without the message), and its condition's tree for literal gates."""

    def __init__(self, rule: Rule, detector: Any, maintenance: bool) -> None:
        self.index = rule.index
        self.node: Node | None = getattr(rule.condition, "node", None)
        if rule.condition is match_all or getattr(rule.condition, "__name__", "") == "_always":
            self.node = And(())
        paths = _paths_read(rule, detector, self.node, maintenance)
        heads = None if paths is None else {path.partition(".")[0] for path in paths}
        self.header_only = heads is not None and heads <= HEADER_FIELDS
        self.header_with_message = heads is not None and heads <= HEADER_FIELDS | {"message"}

    def decide(self, values: dict[str, str], has_message: bool, actions: frozenset[str]) -> Decision:
        """This rule's part of the decision for a record whose header (and known fields)
        are ``values``."""
        index = self.index
        if not _admits(index, values["kind"], values["service"]):
            return _SKIP
        gate = None if self.node is None else _gate(self.node, values)
        if gate is _EXCLUDED:  # its condition is false for this record, parsed or not
            return _SKIP
        if "action" in index:
            if not _may_offer(index, actions):
                return _SKIP
        elif "outcome" not in index and (self.header_only or (has_message and self.header_with_message)):
            return _SKIP  # offered both, it answers the header event as it would the full one
        return gate if has_message and gate is not None else _FULL


def _paths_read(rule: Rule, detector: Any, node: Node | None, maintenance: bool) -> set[str] | None:
    """The event fields a rule reads, or None when it cannot be told (opaque predicates,
    escalations, explanations, kinds whose parameters name fields)."""
    if node is None or rule.kind not in HEADER_KINDS or rule.escalate or rule.explained_by is not None:
        return None
    paths: set[str] = set()
    if not _leaf_paths(node, paths):
        return None
    group: tuple[str, ...] = getattr(detector, "group", rule.group_by)
    paths.update(group)
    chosen: dict[str, str] = {name: path for name, path in DEFAULT_ENTITIES.items()
                              if rule.kind not in AGGREGATE_KINDS or path in group or name == "host"}
    for name, override in (rule.entities or {}).items():
        if override is None:
            chosen.pop(name, None)
        else:
            chosen[name] = override
    paths.update(chosen.values())
    if chosen.get("user") == "initiator.name":
        paths.add("initiator.id")
    paths.update((rule.details or {}).values())
    for _, placeholder, _, _ in string.Formatter().parse(rule.summary or rule.title):
        if placeholder and placeholder not in _RULE_VALUES:
            paths.add(placeholder)
    if rule.outside_maintenance and maintenance:
        paths.add("target.name")  # the engine names a unit's service in the maintenance test
    return paths


def _leaf_paths(node: Node, paths: set[str]) -> bool:
    """Add the paths of ``node``'s leaves; False when a leaf is opaque."""
    if isinstance(node, Leaf):
        if not node.path:
            return False
        paths.add(node.path)
        return True
    if isinstance(node, Not):
        return _leaf_paths(node.inner, paths)
    return all(_leaf_paths(part, paths) for part in node.parts)


def _gate(node: Node, values: dict[str, str]) -> tuple[str, ...] | None:
    """Literals one of which the message must hold for ``node`` to be true of an event
    whose ``values`` (kind, service, the parser's known fields) are these; None when there is
    no such set; ``_EXCLUDED`` when ``node`` is false for these values whatever the rest."""
    if isinstance(node, Leaf):
        return _leaf_gate(node, values)
    if isinstance(node, Not):
        return None
    if isinstance(node, And):
        best: tuple[str, ...] | None = None
        for part in node.parts:
            found = _gate(part, values)
            if found is _EXCLUDED:
                return _EXCLUDED
            if found is not None and (best is None or len(found) < len(best)):
                best = found
        return best
    union: list[str] = []
    for part in node.parts:  # Or: every branch that can be true must need a literal
        found = _gate(part, values)
        if found is _EXCLUDED:
            continue
        if found is None:
            return None
        union.extend(found)
    return tuple(dict.fromkeys(union)) if union else _EXCLUDED


def _leaf_gate(leaf: Leaf, values: dict[str, str]) -> tuple[str, ...] | None:
    value = values.get(leaf.path)
    if value is not None:  # a value known exactly: an equality that fails excludes
        for op in leaf.ops:
            if (op.name == "text_eq" and op.arg != value) or (op.name == "in" and value not in op.arg):
                return _EXCLUDED
        return None
    if leaf.path != "message":
        return None
    best: tuple[str, ...] | None = None
    for op in leaf.ops:  # every operator of a leaf holds: any one's literals gate it
        found: tuple[str, ...] | None = None
        if op.name == "text_eq":
            found = (op.arg,)
        elif op.name in ("in", "contains", "prefix", "suffix"):
            found = tuple(op.arg)
        elif op.name == "regex":
            found = tuple(literal for literal, _ in op.arg)
        if found and all(found) and (best is None or len(found) < len(best)):
            best = found
    return best


def prefilter_for(engine: DetectionEngine) -> Prefilter | None:
    """The prefilter of ``engine`` (detect.engine.Engine, or the orphan-aware one), or None
    for an engine it does not know the inside of (then every record is parsed)."""
    from stackwatch.detect.engine import Engine

    if not isinstance(engine, Engine):
        return None
    watched = engine.orphans.watched if isinstance(engine, OrphanAware) else frozenset[str]()
    return Prefilter(engine.detectors(), explainer_hints=engine.explainer_hints(),
                     correlated=CORRELATED_ACTIONS if engine.correlator is not None else frozenset(),
                     watched=watched, maintenance=bool(engine.maintenance))
