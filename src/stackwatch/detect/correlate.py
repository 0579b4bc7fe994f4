"""One failed login seen in several places counts once.

A keystone login attempt can be written four times: HAProxy's HTTP log line in front (kind
``haproxy``), an Apache or uWSGI access line (``POST /v3/auth/tokens`` -> 401/201, kind
``httpd_access`` / ``uwsgi_request``), a keystone.log line
(``Authorization failed ... from <ip>``) and a CADF ``identity.authenticate`` event
(kind ``cadf`` or ``notification``); a refused attempt on a locked account or an expired
password is the same attempt with action ``account.locked`` / ``password.expired`` in the
log line and CADF copies. This stage, run by the engine before the rules, groups the
copies of one attempt and releases them together:

* grouping: same ``request_id`` first; otherwise same source IP and outcome within
  ``window`` seconds (event time; for an access or proxy line, its start plus its duration:
  when the request was answered, as the other copies are stamped). A group holds at most
  one event per channel (proxy / http / log / cadf), so two real attempts written by the
  same channel never merge;
* the **primary** (CADF first, then the log line, the access line, the proxy's) is the one
  counting rules see; the others get ``attrs.duplicate_of = <primary ref>`` and counting
  kinds skip them (absence / level_drop still see them: they are traffic);
* the primary and the log-line copy are **enriched** with what the others know (user
  name and id, project, source IP, user agent, request id), and with the user name of
  a ``user.not_found`` line of the same request.

Bounded: a group waits at most ``window`` seconds of event time (the delay an alert can
get from this stage), at most ``max_pending`` groups are held, and the user.not_found
cache keeps ``cache_size`` request ids for ``cache_ttl`` seconds.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Final

import msgspec

from stackwatch.core.event import Event, Initiator

AUTH_ACTIONS: Final = frozenset({"authenticate", "account.locked", "password.expired"})
"""One login attempt: a refusal for a locked account or an expired password is the same
attempt (the Apache 401 says ``authenticate``, keystone.log and CADF say why)."""
CORRELATED_ACTIONS: Final = AUTH_ACTIONS | {"user.not_found"}
"""Actions this stage looks at; the engine skips it for every other event."""
CHANNEL_RANK: Final = {"cadf": 0, "log": 1, "http": 2, "proxy": 3}
_INITIATOR_FIELDS: Final = ("name", "id", "project", "domain", "source_ip", "user_agent")


_CHANNELS: Final = {"cadf": "cadf", "notification": "cadf", "httpd_access": "http", "uwsgi_request": "http",
                    "haproxy": "proxy"}
"""Event kind -> channel; any other kind is a log line."""
_TIMED_AT_START: Final = frozenset({"http", "proxy"})
"""Channels whose lines carry the request's start time and its duration."""


class _Group(msgspec.Struct, eq=False):  # eq=False: groups are found in lists by identity
    """The copies of one attempt seen so far (a Struct: built for every login, in C)."""

    first: float
    outcome: str | None
    source_ip: str | None
    request_id: str | None
    members: list[tuple[str, Event]]

    def has_channel(self, channel: str) -> bool:
        for member_channel, _ in self.members:  # noqa: SIM110 - a loop beats any(genexpr) here
            if member_channel == channel:
                return True
        return False


@dataclass(slots=True)
class CorrelationStats:
    attempts: int = 0  # groups released
    duplicates: int = 0  # events marked duplicate_of
    enriched: int = 0  # events that gained fields from their copies


class Correlator:
    def __init__(self, window: float = 2.0, max_pending: int = 10_000, cache_ttl: float = 30.0,
                 cache_size: int = 10_000) -> None:
        self.window = window
        self.max_pending = max_pending
        self.cache_ttl = cache_ttl
        self.cache_size = cache_size
        self.pending: deque[_Group] = deque()
        self.by_request: dict[str, _Group] = {}
        self.by_ip: dict[tuple[str, str | None], list[_Group]] = {}
        self.not_found: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self.stats = CorrelationStats()

    def push(self, event: Event, ts: float) -> list[Event]:
        """Feed one event; returns the events ready for the rules, in order."""
        return [ready for ready, _ in self.push_timed(event, ts)]

    def release(self, now: float | None = None) -> list[Event]:
        """Release the groups whose window has passed at ``now`` (all of them when None)."""
        return [ready for ready, _ in self.release_timed(now)]

    def push_timed(self, event: Event, ts: float) -> list[tuple[Event, float]]:
        """``push`` with each event's time as epoch seconds (what the engine needs: it is
        known here, so the engine need not work it out from the datetime again)."""
        pending = self.pending
        out = self.release_timed(ts) if pending and ts - pending[0].first > self.window else []
        action = event.action
        if action == "user.not_found" and event.request_id and event.initiator.name:
            self._remember_name(event.request_id, event.initiator.name, ts)
        if action not in AUTH_ACTIONS or event.service != "keystone":  # not a keystone login
            out.append((event, ts))
            return out
        self._add(event, ts)
        if len(pending) > self.max_pending:
            out.extend(_timed(self._release_group(pending.popleft())))
        return out

    def release_timed(self, now: float | None = None) -> list[tuple[Event, float]]:
        """``release`` with each event's time as epoch seconds (see ``push_timed``)."""
        out: list[tuple[Event, float]] = []
        pending = self.pending
        window = self.window
        singles = 0
        while pending and (now is None or now - pending[0].first > window):
            group = pending.popleft()
            members = group.members
            if len(members) == 1:  # the common case, without the list of one
                self._unindex(group)
                singles += 1
                out.append((self._release_single(members[0][1], group.request_id), group.first))
            else:
                out.extend(_timed(self._release_group(group)))
        if singles:
            self.stats.attempts += singles
        return out

    # ------------------------------------------------------------------ internals

    def _remember_name(self, request_id: str, name: str, ts: float) -> None:
        cache = self.not_found
        cache[request_id] = (name, ts)
        cache.move_to_end(request_id)
        while cache and (len(cache) > self.cache_size or ts - next(iter(cache.values()))[1] > self.cache_ttl):
            cache.popitem(last=False)

    def _add(self, event: Event, ts: float) -> None:
        channel = _CHANNELS.get(event.kind, "log")
        if channel in _TIMED_AT_START:
            # An access line is stamped when the request came in; keystone writes its copies
            # when it answers, which on a cold or busy server is many seconds later: matched
            # at the answer's time (start + the line's own duration), one slow login is one.
            duration = event.attrs.get("duration")
            if duration.__class__ is float:
                ts += duration  # type: ignore[operator]
        rid, ip, outcome = event.request_id, event.initiator.source_ip, event.outcome
        group = None
        by_request = self.by_request
        known = None  # the group indexed under rid (looked up once: reused to index a new group)
        if rid:
            known = by_request.get(rid)
            if known is not None and not known.has_channel(channel):
                group = known
        same_ip = None  # the groups indexed under (ip, outcome), idem
        if group is None and ip:
            same_ip = self.by_ip.get((ip, outcome))
            for candidate in same_ip or ():
                if (not candidate.has_channel(channel) and abs(ts - candidate.first) <= self.window
                        and not (rid and candidate.request_id and candidate.request_id != rid)):
                    group = candidate
                    break
        if group is None:  # a new attempt (the common case): index it and done
            group = _Group(ts, outcome, ip, rid, [(channel, event)])
            self.pending.append(group)
            if ip:
                if same_ip is None:
                    self.by_ip[(ip, outcome)] = [group]
                else:
                    same_ip.append(group)
            if rid and known is None:
                by_request[rid] = group
            return
        group.members.append((channel, event))
        if rid and group.request_id is None:
            group.request_id = rid
        if rid and rid not in self.by_request:
            self.by_request[rid] = group
        if ip and group.source_ip is None:
            group.source_ip = ip
            self.by_ip.setdefault((ip, outcome), []).append(group)

    def _unindex(self, group: _Group) -> None:
        for _, event in group.members:
            rid = event.request_id
            if rid and self.by_request.get(rid) is group:
                del self.by_request[rid]
        if group.source_ip:
            key = (group.source_ip, group.outcome)
            groups = self.by_ip.get(key)
            if groups is not None:
                if len(groups) == 1 and groups[0] is group:  # mostly: the address's only attempt
                    del self.by_ip[key]
                    return
                if group in groups:
                    groups.remove(group)
                if not groups:
                    del self.by_ip[key]

    def _release_group(self, group: _Group) -> list[Event]:
        self._unindex(group)
        self.stats.attempts += 1
        members = group.members
        if len(members) == 1:
            return [self._release_single(members[0][1], group.request_id)]
        known: dict[str, str] = {}
        request_id = group.request_id
        for _, event in sorted(members, key=lambda m: CHANNEL_RANK[m[0]]):
            for name in _INITIATOR_FIELDS:
                value = getattr(event.initiator, name)
                if value and name not in known:
                    known[name] = value
        if "name" not in known and request_id and request_id in self.not_found:
            known["name"] = self.not_found[request_id][0]
        primary = min(range(len(members)), key=lambda i: (CHANNEL_RANK[members[i][0]], i))
        primary_ref = members[primary][1].ref
        out = []
        for index, (channel, event) in enumerate(members):
            changes: dict[str, object] = {}
            if index == primary or channel == "log":
                initiator = _enrich(event.initiator, known)
                if initiator is not event.initiator:
                    changes["initiator"] = initiator
                if request_id and not event.request_id:
                    changes["request_id"] = request_id
            if index != primary:
                changes["attrs"] = {**event.attrs, "duplicate_of": primary_ref}
                self.stats.duplicates += 1
            elif len(members) > 1:
                changes["attrs"] = {**event.attrs, "seen_in": sorted(c for c, _ in members)}
            if "initiator" in changes or "request_id" in changes:
                self.stats.enriched += 1
            out.append(msgspec.structs.replace(event, **changes) if changes else event)
        return out


    def _release_single(self, event: Event, request_id: str | None) -> Event:
        """A group of one (the common case): the general path reduced to what can apply, the
        user name from a ``user.not_found`` line of the same request."""
        if event.initiator.name or not request_id or request_id not in self.not_found:
            return event
        self.stats.enriched += 1
        initiator = msgspec.structs.replace(event.initiator, name=self.not_found[request_id][0])
        return msgspec.structs.replace(event, initiator=initiator)


def _timed(events: list[Event]) -> list[tuple[Event, float]]:
    """Events with their time as epoch seconds (a released group of several: rare)."""
    return [(event, event.time.timestamp()) for event in events]


def _enrich(initiator: Initiator, known: dict[str, str]) -> Initiator:
    missing = {name: value for name, value in known.items() if not getattr(initiator, name)}
    return msgspec.structs.replace(initiator, **missing) if missing else initiator
