"""The detection engine: events in, alerts out.

Per event: advance event time (and run the time-driven kinds every ``tick_interval``
seconds of it), pass the event through the correlation stage, then offer it only to the
rules whose index hints allow its (action, service, kind, outcome): the candidate list is cached
per combination, so an event that meets no rule costs one dict lookup and 500 rules cost
little more than 50. Firings become alerts with dedup: a repeat for the same rule and key
within ``realert`` seconds of the alert's last sighting updates that alert (count,
last_seen, evidence) instead of creating a new one.

Time: event time drives everything when replaying (deterministic: the same input gives
the same alerts); the live service also calls ``tick()`` on the wall clock so silence is
found when nothing arrives.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from mypy_extensions import mypyc_attr

from stackwatch.core.alert import ALERT_SEVERITIES, Alert, Evidence
from stackwatch.core.errors import RuleError
from stackwatch.core.event import Event
from stackwatch.detect.codegen import residual_for
from stackwatch.detect.correlate import CORRELATED_ACTIONS, Correlator
from stackwatch.detect.explain import Explainer, Explanation
from stackwatch.detect.kinds import COUNTING, DETECTORS, Detector, Firing, KindContext
from stackwatch.detect.model import INDEX_DIMENSIONS, Rule
from stackwatch.detect.render import compile_summary, entity_readers, field_reader
from stackwatch.detect.schedule import MaintenanceSchedule

MAX_EVIDENCE = 10
"""Evidence records kept per alert."""
MAX_OPEN_ALERTS = 100_000
"""Dedup index bound: past it the least recently fired (rule, key) is forgotten."""
MAX_INDEX_COMBOS = 8192
MAX_COPIES = 65536
"""Records process_only remembers to recognise their other routed copies (a collector
publishes the copies of one record within one batch interval)."""
_RANK: Final = {name: rank for rank, name in enumerate(ALERT_SEVERITIES)}


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass(slots=True)
class EngineStats:
    events: int = 0
    evaluations: int = 0  # condition checks (rules actually offered an event)
    firings: int = 0
    alerts: int = 0  # distinct alerts created
    suppressed: int = 0  # firings inside a maintenance window
    explained: int = 0  # firings an earlier event explained (explained_by), dropped or lowered
    duplicates_skipped: int = 0


class _Slot:
    """One active rule with its detector and precompiled rendering."""

    __slots__ = ("condition", "counting", "details", "detector", "entities", "explainer", "on_event", "rule",
                 "summary", "test", "top_rank")

    def __init__(self, rule: Rule, detector: Detector) -> None:
        self.rule = rule
        self.detector = detector
        self.on_event = detector.on_event
        self.condition = rule.condition
        # The engine offers a rule only events its index allows, so the equalities that
        # built the index need not be tested again: the residual condition (None: nothing
        # left to test, the rule takes every event it is offered).
        usable, residual = residual_for(rule.condition, rule.index)
        self.test: Callable[[Event], bool] | None = residual if usable else rule.condition
        self.counting = rule.kind in COUNTING
        values = {"threshold": getattr(rule.params, "threshold", None), "window": rule.window,
                  "title": rule.title}
        self.summary = compile_summary(rule.summary or rule.title, values, rule.source, rule.line or None)
        group: tuple[str, ...] = getattr(detector, "group", rule.group_by)  # kinds with a default key
        self.entities = entity_readers(rule.kind, group, rule.entities)
        # event fields a response needs beyond the entities (the IDS alert's destination address)
        self.details = {name: field_reader(path) for name, path in (rule.details or {}).items()}
        self.explainer = Explainer(rule.explained_by, rule.max_keys) if rule.explained_by else None
        # the highest severity a firing of this rule can have: an open alert already there
        # cannot go higher, so its updates need not evaluate the escalation conditions
        severities = [rule.severity, *(severity for _, severity in rule.escalate)]
        if self.explainer is not None and self.explainer.spec.severity:
            severities.append(self.explainer.spec.severity)
        self.top_rank = max(_RANK[s] for s in severities)


_Run = tuple[_Slot, bool, Callable[[Event], bool] | None, Callable[[Event, float], Firing | None]]
"""What the per-event loop reads of a slot, unpacked once per combination instead of read
attribute by attribute per event: (slot, counting, test, on_event)."""


def _sources(expected: Iterable[Any] | None) -> tuple[dict[str, str], ...]:
    out = []
    for item in expected or ():
        if isinstance(item, Mapping):
            out.append({str(k): str(v) for k, v in item.items()})
        else:
            host, service = item
            out.append({"host": str(host), "service": str(service)})
    return tuple(out)


@mypyc_attr(allow_interpreted_subclasses=True)  # compiled by mypyc; OrphanAwareEngine derives from it
class Engine:
    """Runs rules over events. Not thread-safe: one engine per worker (state is keyed by
    entity, so workers can split the stream by key)."""

    def __init__(self, rules: Iterable[Rule], *, clock: Clock | None = None,
                 maintenance: MaintenanceSchedule | Any = None, expected_sources: Iterable[Any] | None = None,
                 correlate: bool = True, tick_interval: float = 10.0, keep_alerts: bool = True) -> None:
        self.clock = clock
        self.maintenance = (maintenance if isinstance(maintenance, MaintenanceSchedule)
                            else MaintenanceSchedule.from_config(maintenance))
        self.ctx = KindContext(expected_sources=_sources(expected_sources))
        self.correlator = Correlator() if correlate else None
        self.tick_interval = tick_interval
        self.keep_alerts = keep_alerts
        self.stats = EngineStats()
        self.rules: list[Rule] = []
        self._slots: list[_Slot] = []
        seen: dict[str, Rule] = {}
        for rule in rules:
            if rule.id in seen:
                raise RuleError(f"duplicate rule id {rule.id} (also {seen[rule.id].where})",
                                rule.source or None, rule.line or None, "id")
            seen[rule.id] = rule
            if rule.enabled:
                self.rules.append(rule)
                self._slots.append(_Slot(rule, DETECTORS[rule.kind](rule, self.ctx)))
        self._timed = [s for s in self._slots if s.detector.time_driven]
        self._explainers = [s.explainer for s in self._slots if s.explainer is not None]
        # (action, service, kind, outcome) -> (the explainers that may observe such an event,
        # the runs of the slots offered it): one lookup per event serves both
        self._index: dict[tuple[str | None, str, str, str | None],
                          tuple[tuple[Explainer, ...], tuple[_Run, ...]]] = {}
        self._open: OrderedDict[tuple[str, str], tuple[Alert, float]] = OrderedDict()
        self._alerts: list[Alert] = []
        # the alerts in the current call's output: id -> created by this call (else updated or
        # resolved), for ``created``; cleared at the next call's start only when not empty
        self._listed: dict[int, bool] = {}
        self._now: float | None = None
        self._next_tick = float("-inf")
        # process_only: the rule ids of routed events the correlation stage holds, by record
        self._held_rules: dict[str, frozenset[str]] = {}
        # process_only: the rules each recent record was offered (its copies come close together)
        self._copies: OrderedDict[str, frozenset[str]] = OrderedDict()

    # ------------------------------------------------------------------ public API

    def process(self, event: Event) -> list[Alert]:
        """Run one event; returns the alerts it created or updated (possibly after a tick):
        ``created`` tells which, until the next call."""
        self.stats.events += 1
        ts = event.time.timestamp()
        out: list[Alert] = []
        if self._listed:
            self._listed.clear()
        now = self._now
        if now is None or ts > now:
            if now is None:
                self.ctx.started = ts
            self._now = ts
            if self._timed and ts >= self._next_tick:
                self._tick(ts, out)
        correlator = self.correlator
        if correlator is not None:
            if event.action in CORRELATED_ACTIONS:
                for ready, ready_ts in correlator.push_timed(event, ts):
                    self._evaluate(ready, ready_ts, out)
                return out
            # any other event only releases the groups whose window has passed (cheap test first)
            pending = correlator.pending
            if pending and ts - pending[0].first > correlator.window:
                for ready, ready_ts in correlator.release_timed(ts):
                    self._evaluate(ready, ready_ts, out)
        self._evaluate(event, ts, out)
        return out

    def process_only(self, event: Event, rule_ids: frozenset[str]) -> list[Alert]:
        """``process`` for a routed copy of an event (an analyzer's partition, cluster/): only
        the rules named in ``rule_ids`` see it; time, ticks and the correlation stage advance as
        with ``process``. An event the correlation stage holds keeps its rule ids until it is
        released (by origin and ``ref``: a released copy may be an enriched new object); a copy of
        a record still held joins its rules to it. The full-engine path (``process``) is untouched."""
        out: list[Alert] = []
        if self._listed:
            self._listed.clear()
        # Copies of one record routed here through several buckets (for other rules, or for
        # a sequence's other keying) are one record: each rule is offered it once, and the
        # correlation stage sees it once (two copies would be grouped as duplicates of one
        # attempt, and counted once between them).
        record = _record_id(event)
        copies = self._copies
        offered = copies.get(record)
        if offered is not None:
            fresh = rule_ids - offered
            if not fresh:
                return out
            copies[record] = offered | fresh
            held = self._held_rules
            if record in held:  # the first copy waits in the correlation stage: it takes them all
                held[record] = held[record] | fresh
            else:  # the explainers observed the first copy (they see every record once)
                self._evaluate_only(event, event.time.timestamp(), out, fresh, observe=False)
            return out
        copies[record] = rule_ids
        if len(copies) > MAX_COPIES:
            copies.popitem(last=False)
        self.stats.events += 1
        ts = event.time.timestamp()
        now = self._now
        if now is None or ts > now:
            if now is None and self.ctx.started is None:  # a start the caller set is kept
                self.ctx.started = ts
            self._now = ts
            if self._timed and ts >= self._next_tick:
                self._tick(ts, out)
        correlator = self.correlator
        if correlator is not None:
            held = self._held_rules
            if event.action in CORRELATED_ACTIONS:
                held[record] = rule_ids
                for ready, ready_ts in correlator.push_timed(event, ts):
                    self._evaluate_only(ready, ready_ts, out, held.pop(_record_id(ready), rule_ids))
                return out
            pending = correlator.pending
            if pending and ts - pending[0].first > correlator.window:
                for ready, ready_ts in correlator.release_timed(ts):
                    self._evaluate_only(ready, ready_ts, out, held.pop(_record_id(ready), rule_ids))
        self._evaluate_only(event, ts, out, rule_ids)
        return out

    def live_from(self, start: datetime) -> None:
        """The live service started at ``start`` (wall clock): declared sources are tracked from
        then. Not from the engine's first event: a record stamped months ago (year-less, replayed)
        decoded before the first heartbeat would make them look silent since that stamp."""
        self.ctx.declared_from = start.timestamp()

    def tick(self, now: datetime | None = None) -> list[Alert]:
        """Advance time without an event (the live service calls this on the wall clock)."""
        if now is None:
            now = self.clock.now() if self.clock is not None else datetime.now(UTC)
        ts = now.timestamp()
        if self._now is None:
            self.ctx.started = ts
        if self._now is None or ts > self._now:
            self._now = ts
        out: list[Alert] = []
        if self._listed:
            self._listed.clear()
        if self.correlator is not None:
            for ready, ready_ts in self.correlator.release_timed(ts):
                self._release(ready, ready_ts, out)
        self._tick(self._now, out)
        return out

    def finish(self) -> list[Alert]:
        """End of input: release held events and run a last tick at the latest event time."""
        out: list[Alert] = []
        if self._listed:
            self._listed.clear()
        if self.correlator is not None:
            for ready, ready_ts in self.correlator.release_timed(None):
                self._release(ready, ready_ts, out)
        if self._now is not None:
            self._tick(self._now, out)
        return out

    def alerts(self) -> list[Alert]:
        """Every alert raised so far, in creation order."""
        return list(self._alerts)

    def created(self, alert: Alert) -> bool:
        """Whether the last call (``process``, ``process_only``, ``tick``, ``finish``) created
        ``alert``, one of the alerts it returned: False for an alert it updated or resolved,
        one this engine created earlier or restored (detect/snapshot.py)."""
        return self._listed.get(id(alert), False)

    def state_stats(self) -> dict[str, dict[str, int]]:
        """Per rule: keys held, keys evicted by the LRU cap, keys expired."""
        out = {}
        for slot in self._slots:
            stats = slot.detector.stats()
            out[slot.rule.id] = {"keys": stats.keys, "evicted": stats.evicted, "expired": stats.expired}
        return out

    def detectors(self) -> list[tuple[Rule, Detector]]:
        """Each enabled rule with its detector (pipeline/baselines.py saves some across restarts)."""
        return [(slot.rule, slot.detector) for slot in self._slots]

    def explainer_hints(self) -> list[Mapping[str, frozenset[str]]]:
        """The index hints of each ``explained_by`` observer (detect/prefilter.py)."""
        return [explainer.hints for explainer in self._explainers]

    # ------------------------------------------------------------------ internals

    def _candidates(self, combo: tuple[str | None, str, str, str | None]
                    ) -> tuple[tuple[Explainer, ...], tuple[_Run, ...]]:
        values = dict(zip(INDEX_DIMENSIONS, combo, strict=True))
        explainers = tuple(e for e in self._explainers
                           if all(values[dim] in allowed for dim, allowed in e.hints.items()))
        runs = tuple((s, s.counting, s.test, s.on_event) for s in self._slots
                     if all(values[dim] in allowed for dim, allowed in s.rule.index.items()))
        if len(self._index) >= MAX_INDEX_COMBOS:
            self._index.clear()
        found = self._index[combo] = (explainers, runs)
        return found

    def _evaluate(self, event: Event, ts: float, out: list[Alert]) -> None:
        entry = self._index.get((event.action, event.service, event.kind, event.outcome))
        if entry is None:
            entry = self._candidates((event.action, event.service, event.kind, event.outcome))
        explainers, runs = entry
        for explainer in explainers:
            explainer.observe(event, ts)
        if not runs:
            return
        duplicate: bool | None = None
        skipped = 0
        for slot, counting, test, on_event in runs:
            if counting:
                if duplicate is None:
                    duplicate = "duplicate_of" in event.attrs
                if duplicate:
                    skipped += 1
                    continue
            if test is None or test(event):
                firing = on_event(event, ts)
                if firing is not None:
                    self._emit(slot, firing, out)
        stats = self.stats
        stats.evaluations += len(runs) - skipped
        if skipped:
            stats.duplicates_skipped += skipped

    def _release(self, event: Event, ts: float, out: list[Alert]) -> None:
        """An event the correlation stage released on a tick or at the end: to the rules its
        routed copy named (process_only), else to every rule."""
        rule_ids = self._held_rules.pop(_record_id(event), None) if self._held_rules else None
        if rule_ids is None:
            self._evaluate(event, ts, out)
        else:
            self._evaluate_only(event, ts, out, rule_ids)

    def _evaluate_only(self, event: Event, ts: float, out: list[Alert], rule_ids: frozenset[str],
                       observe: bool = True) -> None:
        """``_evaluate`` restricted to the rules in ``rule_ids`` (explainers observe every event:
        what explains an alert may be routed for no rule of its own). ``observe`` False: a later
        copy of a record they observed already; shown again, it would put back the older record's
        time and evidence over a newer explaining record's (same key and linked value), and a
        firing the newer one explains would not be."""
        entry = self._index.get((event.action, event.service, event.kind, event.outcome))
        if entry is None:
            entry = self._candidates((event.action, event.service, event.kind, event.outcome))
        explainers, runs = entry
        if observe:
            for explainer in explainers:
                explainer.observe(event, ts)
        duplicate = "duplicate_of" in event.attrs
        for slot, counting, test, on_event in runs:
            if slot.rule.id not in rule_ids:
                continue
            if counting and duplicate:
                self.stats.duplicates_skipped += 1
                continue
            self.stats.evaluations += 1
            if test is None or test(event):
                firing = on_event(event, ts)
                if firing is not None:
                    self._emit(slot, firing, out)

    def _tick(self, now: float, out: list[Alert]) -> None:
        self._next_tick = now + self.tick_interval
        for slot in self._timed:
            for firing in slot.detector.on_tick(now):
                self._emit(slot, firing, out)

    def _emit(self, slot: _Slot, firing: Firing, out: list[Alert]) -> None:
        rule = slot.rule
        self.stats.firings += 1
        event = firing.event
        when = event.time if event is not None and event.time.timestamp() == firing.time \
            else datetime.fromtimestamp(firing.time, UTC)
        if rule.outside_maintenance and self.maintenance and not firing.resolve:
            host = (event.host if event is not None else "") or firing.fields.get("host", "")
            if self.maintenance.active(when, host, _services(event, firing)):
                self.stats.suppressed += 1
                return
        explained: Explanation | None = None
        if slot.explainer is not None and event is not None and not firing.resolve:
            explained = slot.explainer.explains(event, firing.time)
            if explained is not None:
                self.stats.explained += 1
                if slot.explainer.spec.suppress:
                    return
        dedup = (rule.id, "|".join(firing.key))
        held = self._open.get(dedup)
        alert = held[0] if held is not None else None
        if firing.resolve:
            if alert is not None and alert.status == "open":
                alert.status = "resolved"
                alert.details["resolved_at"] = when.isoformat()
                _add_evidence(alert, firing.evidence)
                self._once(out, alert)
            return
        if alert is not None and held is not None and alert.status == "open" and (
                firing.continuing or firing.time - held[1] <= rule.realert):
            alert.count += 1
            if when > alert.last_seen:
                alert.last_seen = when
            _add_evidence(alert, firing.evidence)
            alert.summary = slot.summary(firing)
            details = alert.details
            details.update(firing.details)
            details.update(_read_details(slot, firing))
            details["events"] = max(int(details.get("events", 0)), firing.count)  # type: ignore[call-overload]
            rank = _RANK[alert.severity]
            if rank < slot.top_rank:  # an update only ever raises the severity
                severity = _severity(rule, event)
                if explained is not None and slot.explainer is not None and slot.explainer.spec.severity:
                    severity = slot.explainer.spec.severity
                if _RANK[severity] > rank:
                    alert.severity = severity
            self._open[dedup] = (alert, max(firing.time, held[1]))
            self._open.move_to_end(dedup)
            self._once(out, alert)
            return
        severity = _severity(rule, event)
        if explained is not None and slot.explainer is not None and slot.explainer.spec.severity:
            severity = slot.explainer.spec.severity
        first = min((e.time for e in firing.evidence if e.time is not None), default=when)
        entities: dict[str, Any] = {name: _entity(read(firing)) for name, read in slot.entities.items()}
        alert = Alert(rule=rule.id, title=rule.title, category=rule.category, severity=severity,
                      time=min(first, when), last_seen=when, key=dedup[1], summary=slot.summary(firing),
                      evidence=list(firing.evidence[:MAX_EVIDENCE]),
                      details={"events": firing.count, **firing.details, **_read_details(slot, firing)},
                      **entities)
        _note_user_domain(alert, rule, event)
        self.stats.alerts += 1
        self._open[dedup] = (alert, firing.time)
        self._open.move_to_end(dedup)
        if len(self._open) > MAX_OPEN_ALERTS:
            self._open.popitem(last=False)
        if explained is not None and slot.explainer is not None:
            _mark_explained(alert, slot.explainer.spec.tag, explained)
        if self.keep_alerts:
            self._alerts.append(alert)
        out.append(alert)
        self._listed[id(alert)] = True

    def _join_created(self, out: list[Alert], found: list[Alert]) -> None:
        """Alerts a subclass's own detector created in this call (respond/orphans.py), joined
        to the call's output as created."""
        for alert in found:
            out.append(alert)
            self._listed[id(alert)] = True

    def _once(self, out: list[Alert], alert: Alert) -> None:
        """Add ``alert`` to this call's output unless it is there already (O(1): a call
        that releases many correlated events can update thousands of alerts)."""
        if id(alert) not in self._listed:
            self._listed[id(alert)] = False
            out.append(alert)


def _record_id(event: Event) -> str:
    """A record's identity across its routed copies (process_only)."""
    return event.origin + "\x1f" + event.ref


def _note_user_domain(alert: Alert, rule: Rule, event: Event | None) -> None:
    """Keep the domain of the user an alert names (``details.user_domain``): a keystone user
    name means one user only with its domain, and a tenant's scope (store/scope.py) matches
    the pair. Only when the alert is about that one user: a single-event rule, or an
    aggregate grouped by the domain (one grouped by name alone may mix same-named users of
    several domains, so it names none)."""
    if event is None:
        return
    initiator = event.initiator
    if (alert.user and initiator.domain and alert.user == initiator.name
            and (rule.kind == "match" or "initiator.domain" in rule.group_by)):
        alert.details["user_domain"] = initiator.domain


def _mark_explained(alert: Alert, tag: str, why: Explanation) -> None:
    """Record on a new alert what explained it (the explaining record joins the evidence)."""
    alert.details["tags"] = [tag]
    alert.details["explained_by"] = {"ref": why.evidence.ref, "raw": why.evidence.raw,
                                     "time": why.evidence.time.isoformat() if why.evidence.time else None,
                                     **({"value": why.value} if why.value else {})}
    _add_evidence(alert, [why.evidence])


def _services(event: Event | None, firing: Firing) -> tuple[str, ...]:
    """Names a maintenance window's ``services`` may match: the event's service and, for
    systemd-style events, the unit (with and without ``.service``)."""
    names = [firing.fields.get("service", "")]
    if event is not None:
        names.append(event.service)
        unit = event.target.name or ""
        if unit:
            names.append(unit)
            if unit.endswith(".service"):
                names.append(unit[: -len(".service")])
    return tuple(n for n in names if n)


def _severity(rule: Rule, event: Event | None) -> str:
    if event is not None:
        for predicate, severity in rule.escalate:
            if predicate(event):
                return severity
    return rule.severity


def _read_details(slot: _Slot, firing: Firing) -> dict[str, str]:
    """The rule's ``details:`` fields read from the firing (those the event has)."""
    if not slot.details:
        return {}
    found = {name: _entity(read(firing)) for name, read in slot.details.items()}
    return {name: value for name, value in found.items() if value is not None}


def _entity(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _add_evidence(alert: Alert, items: list[Evidence]) -> None:
    """Add the records not there yet (same ``ref`` and ``time``); past MAX_EVIDENCE the last
    one is refreshed (how it started, where it is now)."""
    evidence = alert.evidence
    added: set[tuple[str, Any]] = set()  # keys added (or replaced) by this call
    refs: list[str] | None = None
    for item in items:
        # An equal record (most often the very object: records are shared between rules
        # and windows, see state.evidence_of) is there: the C-level scan settles it.
        if item in evidence:
            continue
        ref, time = item.ref, item.time
        if refs is None:
            refs = [e.ref for e in evidence]
        if ref in refs and ((ref, time) in added or any(e.ref == ref and e.time == time for e in evidence)):
            continue
        added.add((ref, time))
        refs.append(ref)
        if len(evidence) < MAX_EVIDENCE:
            evidence.append(item)
        else:  # keep how it started, refresh the latest
            replaced = evidence[-1]
            added.add((replaced.ref, replaced.time))
            evidence[-1] = item



