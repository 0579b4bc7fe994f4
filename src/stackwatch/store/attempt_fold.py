"""The keystone login attempts' correlation at ingest, without a database: what both backends'
writers run over the login events they append (``sqlite_attempts`` for the embedded store,
``postgres/attempts`` for the shared one; the module docstring of ``sqlite_attempts`` says
why and what is stored).

``AttemptCorrelator`` takes the appended events (numbered by the writer's own seq), keeps the
login events in the detection engine's ``Correlator`` and releases each attempt (the primary
copy, enriched with what its copies know) as a ``login_attempts`` row; ``held`` names the seqs
it still holds (written down with each commit, so a crashed writer takes them back), and
``fold_minutes`` sums released rows into ``attempt_minutes`` rows. The backends write.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from stackwatch.core.event import Event
from stackwatch.detect.correlate import Correlator
from stackwatch.store.rows import to_micros
from stackwatch.store.scope import TENANT_HOST_PREFIX

MINUTE: Final = 60_000_000  # microseconds
UNKNOWN: Final = "(unknown)"
MIXED: Final = "*"
"""``attempt_minutes.hash`` when the row's attempts carried different password hashes."""
FOLDED_ACTIONS: Final = ("authenticate", "user.not_found")

AttemptRow = tuple[Any, ...]
"""A ``login_attempts`` row: (seq, time, ip, account, project, outcome, hash, host, kind, ref, agent)."""
CopyKey = tuple[str, str]
"""What names one stored copy of a login: (host, ``ref@time``), see ``copy_key``."""


def copy_key(host: str, ref: str, time_us: int) -> CopyKey:
    """The key of one stored copy of a login: its host, its ref and its event time (microseconds).
    A ref is stable across hosts' writers (``keystone.log:1234``, ``amqp:<exchange>:<message id>``)
    but not unique for ever: line refs repeat when the next rotated file of the same name is read,
    counter refs when a stream source restarts. With (host, ref) alone every later login under a
    reused ref was taken for the first and not counted; the same record carries the same time
    wherever it is stored, another record under that ref almost never does."""
    return host, f"{ref}@{time_us}"


@dataclass(frozen=True, slots=True)
class AttemptScope:
    """What the keystone page filters on: a time range [since, until) in microseconds
    (None: open), some accounts, a project."""

    since: int | None = None
    until: int | None = None
    accounts: tuple[str, ...] | None = None
    project: str | None = None


def is_folded(event: Event) -> bool:
    """A keystone login event of the infrastructure (a tenant's instances may send lines that
    read as keystone's: the cloud's keystone page counts only the infrastructure's)."""
    action = event.action
    return ((action == "authenticate" or action == "user.not_found") and event.service == "keystone"
            and not event.host.startswith(TENANT_HOST_PREFIX))


class AttemptCorrelator:
    """The writer's correlator over the login events it appends, and the attempts it released
    that are not written yet."""

    tracks_copies: ClassVar[bool] = True
    """Keep every released attempt's copy keys for ``copies`` (a shared store claims them so a
    login that several writers stored counts once). A backend that never asks (SQLite: one
    writer per store) sets it False and skips a key, a tuple and two dict operations a login."""

    def __init__(self) -> None:
        self.correlator = Correlator()
        self.ready = False  # state loaded (and missed events folded) by the backend's catch-up
        self._seq_of: dict[int, int] = {}  # id(held Event) -> its seq
        self._primary_seq: dict[CopyKey, int] = {}  # (host, ref) -> seq, of the held events
        self._copies: dict[int, tuple[CopyKey, ...]] = {}  # released seq -> every copy's key
        self._last_copies: dict[int, tuple[CopyKey, ...]] = {}  # of the rows last ``written``
        self._not_found: dict[str, int] = {}  # request id -> seq of its user.not_found event
        self._released: list[AttemptRow] = []  # login_attempts rows, not yet written
        self._upto = 0  # last seq pushed

    @property
    def upto(self) -> int:
        return self._upto

    def push(self, events: Sequence[Event], first_seq: int) -> None:
        """The events being appended, numbered from ``first_seq``; the login events among
        them go through the correlator; then what waited past its window is released at
        the newest event time (any event's: the live service's heartbeat moves it)."""
        correlator = self.correlator
        for index, event in enumerate(events):
            if is_folded(event):
                self._push(first_seq + index, event)
        if events:
            self._upto = first_seq + len(events) - 1
            if correlator.pending:
                self._take(correlator.release(events[-1].time.timestamp()))

    def push_stored(self, events: Iterable[tuple[int, Event]]) -> None:
        """Login events read back from the store, (seq, event) in seq order."""
        for seq, event in events:
            self._push(seq, event)
            self._upto = max(self._upto, seq)

    def seen_upto(self, seq: int) -> None:
        """Every event up to ``seq`` has been pushed (the catch-up read them all)."""
        self._upto = max(self._upto, seq)

    def _push(self, seq: int, event: Event) -> None:
        if event.action == "user.not_found":
            if event.request_id:
                self._not_found[event.request_id] = seq
        else:
            self._seq_of[id(event)] = seq
            self._primary_seq[(event.host, event.ref)] = seq
        self._take(self.correlator.push(event, event.time.timestamp()))

    def finish(self) -> None:
        """Release every attempt held (end of input, a clean close)."""
        self._take(self.correlator.release(None))

    def _take(self, ready: list[Event]) -> None:
        # one pass (this runs for every login stored): most pushes release nothing, and copies
        # (``duplicate_of``) are rare, so their keys are gathered on the way and joined to their
        # primaries' after the loop, rather than in a first pass over every released event
        if not ready:
            return
        first = len(self._released)
        tracks = self.tracks_copies
        copies: dict[str, list[CopyKey]] | None = None
        for event in ready:
            if event.action != "authenticate":
                continue
            attrs = event.attrs
            if "duplicate_of" in attrs:
                if not tracks:
                    continue
                # a released group's copies come out together: their keys name the attempt too
                # (a shared store counts a login once whichever copies other writers stored)
                primary = attrs["duplicate_of"]
                if primary is not None:
                    if copies is None:
                        copies = {}
                    copies.setdefault(str(primary), []).append(copy_key(event.host, event.ref,
                                                                        to_micros(event.time)))
                continue
            # taken, not read: the same record stored twice (one host, one ref) is released
            # twice by the correlator, and must make one attempt, not two minutes' worth
            seq = self._primary_seq.pop((event.host, event.ref), None)
            if seq is None:
                continue  # a second release of one stored record (see above)
            when = to_micros(event.time)
            if tracks:
                self._copies[seq] = (copy_key(event.host, event.ref, when),)
            init = event.initiator
            self._released.append((
                seq, when, init.source_ip or UNKNOWN, init.name or init.id or UNKNOWN,
                init.project or "", event.outcome or "unknown",
                str(attrs.get("partial_password_hash") or ""), event.host, event.kind, event.ref,
                init.user_agent or ""))
        if copies:  # the primaries' keys first, then their copies' in release order
            for row in self._released[first:]:
                more = copies.get(row[9])  # the primary's ref
                if more:
                    self._copies[row[0]] += tuple(more)

    # -- handing the attempts to the backend's transaction ----------------------------------------

    def released(self) -> list[AttemptRow]:
        """The attempts released and not yet written (the backend writes them, then ``written``)."""
        return self._released

    def copies(self, row: AttemptRow) -> tuple[CopyKey, ...]:
        """The key (``copy_key``) of every stored copy of the attempt ``row`` (its primary's first)."""
        if not self.tracks_copies:
            raise RuntimeError("this correlator keeps no copy keys (tracks_copies is False)")
        return (self._copies.get(row[0]) or self._last_copies.get(row[0])
                or (copy_key(row[7], row[9], row[1]),))

    def written(self) -> None:
        """The released attempts are in the transaction (``rollback`` if it fails)."""
        if self.tracks_copies:
            self._last_copies = {r[0]: self._copies.pop(r[0]) for r in self._released
                                 if r[0] in self._copies}
        self._released = []

    def rollback(self, released: list[AttemptRow]) -> None:
        """The transaction that was to write ``released`` failed: keep them for the next."""
        self._released = released + self._released
        self._copies.update(self._last_copies)

    def held(self) -> list[int]:
        """The seqs of the events the correlator still holds (what a crashed writer must read
        back), sorted; forgets the seqs of released events."""
        pending = self.correlator.pending
        seqs = [self._seq_of[id(e)] for group in pending for _, e in group.members if id(e) in self._seq_of]
        rids = {group.request_id for group in pending if group.request_id}
        seqs += [seq for rid, seq in self._not_found.items() if rid in rids]
        self.prune()
        return sorted(seqs)

    def prune(self) -> None:
        """Forget the seqs of released events: keep what a held attempt may still need."""
        pending = self.correlator.pending
        if len(self._seq_of) + len(self._not_found) <= 2 * sum(len(g.members) for g in pending) + 64:
            return
        live = {id(e) for group in pending for _, e in group.members}
        self._seq_of = {k: v for k, v in self._seq_of.items() if k in live}
        refs = {(e.host, e.ref) for group in pending for _, e in group.members}
        self._primary_seq = {k: v for k, v in self._primary_seq.items() if k in refs}
        rids = {group.request_id for group in pending if group.request_id}
        self._not_found = {k: v for k, v in self._not_found.items() if k in rids}


def fold_minutes(rows: Iterable[AttemptRow]) -> list[tuple[Any, ...]]:
    """``attempt_minutes`` rows for ``rows``: (minute, ip, account, project, outcome, n, hashed,
    hash, first, last), the hash ``MIXED`` when the minute's hashed attempts differ."""
    # Indexed, not unpacked (``*_`` built a list per row: 3.0 -> 2.3 µs a row, 100k CADF
    # logins); the key's first attempt makes its row, later ones update it, as before
    folded: dict[tuple[Any, ...], list[Any]] = {}
    get = folded.get
    minute = MINUTE
    for row in rows:
        time = row[1]
        hash_ = row[6]
        key = (time // minute, row[2], row[3], row[4], row[5])
        acc = get(key)
        if acc is None:
            folded[key] = [1, 1 if hash_ else 0, hash_, time, time]
            continue
        acc[0] += 1
        if hash_:
            acc[1] += 1
            acc[2] = hash_ if acc[2] in ("", hash_) else MIXED
        if time < acc[3]:
            acc[3] = time
        if time > acc[4]:
            acc[4] = time
    return [(*key, *acc) for key, acc in folded.items()]
