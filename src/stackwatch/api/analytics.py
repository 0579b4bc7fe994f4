"""Keystone access analytics: who fails to log in, from where, against which accounts, and
what the pattern looks like (brute force, spraying, targeted account, stale credentials).

One keystone login can be written three times (Apache access line, keystone.log line, CADF
event); the store keeps all copies. Both stores correlate them once, as they append them
(``store/attempt_fold.py``: the same ``Correlator`` the detection engine uses), and
keeps one row per attempt and per-minute sums: a report over any range is summed from those,
exactly, in time that does not grow with the number of events. A store that keeps no
attempts (``Store.login_attempts()`` is None) is recounted here: its login events go through
the ``Correlator`` and only the primary copy of each attempt counts (enriched with the user
name the other copies know), over at most ``MAX_EVENTS`` of them.

Classification (per source address and per account; thresholds are the constants below):

* **spraying**: one address failing against ``SPRAY_ACCOUNTS`` or more accounts, with at
  most ``SPRAY_PER_ACCOUNT`` failures per account on average;
* **brute force**: ``BRUTE_FAILURES`` or more failures against few accounts with changing
  passwords (``partial_password_hash`` varies, or is unknown);
* **targeted**: one account failing from ``TARGETED_IPS`` or more addresses;
* **stale credentials**: ``STALE_FAILURES`` or more failures of one account all with the
  same ``partial_password_hash``: the same wrong password again and again, the mark of a
  script or service still holding an old password rather than of someone guessing.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from stackwatch.core.event import Event
from stackwatch.core.types import StoreReads
from stackwatch.detect.correlate import Correlator
from stackwatch.store.attempt_fold import MIXED, AttemptScope
from stackwatch.store.base import MAX_LIMIT, EventQuery
from stackwatch.store.rows import from_micros, to_micros

SPRAY_ACCOUNTS: Final = 5
SPRAY_PER_ACCOUNT: Final = 3.0
BRUTE_FAILURES: Final = 10
TARGETED_IPS: Final = 5
STALE_FAILURES: Final = 3
MAX_EVENTS: Final = 200_000
"""A store that keeps no correlated attempts is recounted from at most this many (the newest)
login events of each action per report."""
UNKNOWN: Final = "(unknown)"
BUCKET_STEPS: Final = (60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
CLASSES: Final = ("brute_force", "spraying", "targeted", "stale_credentials")
TIMELINE_MAX: Final = 5000


@dataclass(frozen=True, slots=True)
class Attempt:
    """One login attempt (one correlated group of copies)."""

    time: datetime
    ip: str
    account: str
    outcome: str
    password_hash: str | None
    host: str
    kind: str
    ref: str
    user_agent: str | None = None


@dataclass(slots=True)
class IpStats:
    ip: str
    failures: int = 0
    successes: int = 0
    accounts: Counter[str] = field(default_factory=Counter)  # failures per account
    first: datetime | None = None
    last: datetime | None = None
    classification: str = ""

    @property
    def per_minute(self) -> float:
        return _rate(self.failures, self.first, self.last)


@dataclass(slots=True)
class AccountStats:
    account: str
    privileged: bool = False
    failures: int = 0
    successes: int = 0
    ips: Counter[str] = field(default_factory=Counter)  # failures per address
    password_hashes: int = 0  # different partial_password_hash values among the failures
    unhashed: int = 0  # failures without a partial_password_hash
    first: datetime | None = None
    last: datetime | None = None
    classification: str = ""

    @property
    def per_minute(self) -> float:
        return _rate(self.failures, self.first, self.last)


Timeline = Callable[[str | None, str | None, int], list[Attempt]]


@dataclass(slots=True)
class KeystoneReport:
    since: datetime | None
    until: datetime | None
    total: int  # attempts
    failures: int
    successes: int
    ips: list[IpStats]
    accounts: list[AccountStats]
    bucket_seconds: int
    buckets: list[tuple[datetime, int, int]]  # (start, failures, successes)
    timeline_of: Timeline
    restricted: tuple[str, ...] | None = None
    truncated: bool = False  # a recount that read only the newest MAX_EVENTS
    at_ingest: bool = False  # summed from the attempts the store correlated as it stored them

    def timeline(
        self, *, ip: str | None = None, account: str | None = None, limit: int = 500
    ) -> list[Attempt]:
        """The attempts of one address or account, oldest first."""
        return self.timeline_of(ip, account, min(limit, TIMELINE_MAX))


def _rate(count: int, first: datetime | None, last: datetime | None) -> float:
    if not count or first is None or last is None:
        return 0.0
    minutes = max((last - first).total_seconds() / 60.0, 1.0)
    return round(count / minutes, 2)


def top(counter: Counter[str], n: int) -> list[str]:
    """The ``n`` biggest keys, ties by name (the same order however the counts were summed)."""
    return [k for k, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


# -- from the store's correlated attempts ------------------------------------------------------


def rollup_report(
    store: StoreReads,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    accounts: Sequence[str] | None = None,
    project: str | None = None,
    privileged: Iterable[str] = (),
    max_buckets: int = 60,
) -> KeystoneReport | None:
    """The report summed from the attempts the store correlated at ingest (exact over the
    range: attempts whose time is in [since, until)); None when the store keeps none."""
    reader = store.login_attempts()
    if reader is None:
        return None
    wanted = tuple(sorted(set(accounts))) if accounts else None
    scope = AttemptScope(None if since is None else to_micros(since),
                         None if until is None else to_micros(until), wanted, project)
    privileged_set = {p.lower() for p in privileged}
    by_ip: dict[str, IpStats] = {}
    by_account: dict[str, AccountStats] = {}
    hashes: dict[str, set[str]] = {}
    seen_at: dict[str, list[int]] = {}  # first, last attempt (µs) per address, and per "\0" + account
    total = failures = successes = 0
    for ip_name, account, outcome, n, hashed, hash_, first, last in reader.totals(scope):
        ip = by_ip.get(ip_name) or by_ip.setdefault(ip_name, IpStats(ip_name))
        acct = by_account.get(account) or by_account.setdefault(
            account, AccountStats(account, privileged=account.lower() in privileged_set))
        for key in (ip_name, "\0" + account):
            span = seen_at.get(key)
            if span is None:
                seen_at[key] = [first, last]
            else:
                span[0], span[1] = min(span[0], first), max(span[1], last)
        total += n
        if outcome == "failure":
            failures += n
            ip.failures += n
            ip.accounts[account] += n
            acct.failures += n
            acct.ips[ip_name] += n
            acct.unhashed += n - hashed
            if hash_:
                hashes.setdefault(account, set()).add(hash_)
        elif outcome == "success":
            successes += n
            ip.successes += n
            acct.successes += n
    mixed = [a for a, seen in hashes.items() if MIXED in seen or len(seen) > 1]
    exact = reader.distinct_hashes(scope, mixed)
    for account, seen in hashes.items():
        by_account[account].password_hashes = exact.get(account, len(seen - {MIXED}))
    keyed: list[tuple[IpStats | AccountStats, str]] = [(s, s.ip) for s in by_ip.values()]
    keyed += [(s, "\0" + s.account) for s in by_account.values()]
    for stats, key in keyed:
        stats.first, stats.last = from_micros(seen_at[key][0]), from_micros(seen_at[key][1])
    for acct in by_account.values():
        acct.classification = classify_account(acct)
    for ip in by_ip.values():
        ip.classification = classify_ip(ip, by_account)
    first_us = min((span[0] for span in seen_at.values()), default=None)
    last_us = max((span[1] for span in seen_at.values()), default=None)
    start = since or (from_micros(first_us) if first_us is not None else None)
    end = until or (from_micros(last_us) if last_us is not None else None)
    step, origin, count = _bucket_plan(start, end, max_buckets)
    fails, oks = [0] * count, [0] * count
    if count:
        assert origin is not None
        for index, outcome, n in reader.buckets(scope, to_micros(origin), step):
            if 0 <= index < count:
                if outcome == "failure":
                    fails[index] += n
                elif outcome == "success":
                    oks[index] += n

    def timeline_of(ip: str | None, account: str | None, limit: int) -> list[Attempt]:
        return [Attempt(time=from_micros(t), ip=i, account=a, outcome=o, password_hash=h or None, host=host,
                        kind=kind, ref=ref, user_agent=agent or None)
                for _, t, i, a, _, o, h, host, kind, ref, agent
                in reader.timeline(scope, ip=ip, account=account, limit=limit)]

    report = _report(since, until, total, failures, successes, by_ip, by_account, step, origin,
                     fails, oks, timeline_of, wanted)
    report.at_ingest = True
    return report


def _report(since: datetime | None, until: datetime | None, total: int, failures: int, successes: int,
            by_ip: dict[str, IpStats], by_account: dict[str, AccountStats], step: int,
            origin: datetime | None, fails: list[int], oks: list[int], timeline_of: Timeline,
            wanted: Iterable[str] | None, truncated: bool = False) -> KeystoneReport:
    return KeystoneReport(
        since=since,
        until=until,
        total=total,
        failures=failures,
        successes=successes,
        ips=sorted(by_ip.values(), key=lambda s: (-s.failures, s.ip)),
        accounts=sorted(
            (s for s in by_account.values() if s.account != UNKNOWN), key=lambda s: (-s.failures, s.account)
        ),
        bucket_seconds=step,
        buckets=[] if origin is None else [
            (origin + timedelta(seconds=i * step), fails[i], oks[i]) for i in range(len(fails))],
        timeline_of=timeline_of,
        restricted=tuple(sorted(wanted)) if wanted else None,
        truncated=truncated,
    )


# -- recounted from the stored events ----------------------------------------------------------


def login_events(
    store: StoreReads, since: datetime | None, until: datetime | None, max_events: int = MAX_EVENTS
) -> tuple[list[Event], bool]:
    """The newest keystone login events (and the ``user.not_found`` lines that name the
    account) in the range, at most ``max_events`` of each action, in store order (time, then
    seq); True when ``max_events`` cut the read short (older ones were left out)."""
    events: list[tuple[datetime, int, Event]] = []
    truncated = False
    for action in ("authenticate", "user.not_found"):
        taken = 0
        while taken < max_events:
            want = min(MAX_LIMIT, max_events - taken)
            page = store.search_events(
                EventQuery(since=since, until=until, service="keystone", action=action, limit=want,
                           offset=taken)
            )
            events.extend((s.event.time, s.seq, s.event) for s in page)
            taken += len(page)
            if len(page) < want:
                break
        else:
            truncated = True
    events.sort(key=lambda item: (item[0], item[1]))
    return [e for _, _, e in events], truncated


def attempts_of(events: Iterable[Event]) -> Iterator[Attempt]:
    """One Attempt per login, duplicates (other copies of the same login) left out."""
    correlator = Correlator()
    for event in events:
        yield from _primaries(correlator.push(event, event.time.timestamp()))
    yield from _primaries(correlator.release(None))


def _primaries(events: Iterable[Event]) -> Iterator[Attempt]:
    for event in events:
        if event.action != "authenticate" or "duplicate_of" in event.attrs:
            continue
        init = event.initiator
        yield Attempt(
            time=event.time,
            ip=init.source_ip or UNKNOWN,
            account=init.name or init.id or UNKNOWN,
            outcome=event.outcome or "unknown",
            password_hash=event.attrs.get("partial_password_hash") or None,
            host=event.host,
            kind=event.kind,
            ref=event.ref,
            user_agent=init.user_agent,
        )


def build_report(
    events: Sequence[Event],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    accounts: Sequence[str] | None = None,
    privileged: Iterable[str] = (),
    max_buckets: int = 60,
    truncated: bool = False,
) -> KeystoneReport:
    """The analytics over ``events`` (in store order), counting the attempts whose time is in
    [since, until). ``accounts`` restricts the report to those accounts."""
    wanted = set(accounts) if accounts else None
    attempts = [a for a in attempts_of(events) if (wanted is None or a.account in wanted)
                and (since is None or a.time >= since) and (until is None or a.time < until)]
    attempts.sort(key=lambda a: a.time)
    privileged_set = {p.lower() for p in privileged}
    by_ip: dict[str, IpStats] = {}
    by_account: dict[str, AccountStats] = {}
    hashes: dict[str, set[str]] = {}
    for a in attempts:
        ip = by_ip.get(a.ip) or by_ip.setdefault(a.ip, IpStats(a.ip))
        acct = by_account.get(a.account) or by_account.setdefault(
            a.account, AccountStats(a.account, privileged=a.account.lower() in privileged_set)
        )
        for stats in (ip, acct):
            stats.first = stats.first or a.time
            stats.last = a.time
        if a.outcome == "failure":
            ip.failures += 1
            ip.accounts[a.account] += 1
            acct.failures += 1
            acct.ips[a.ip] += 1
            if a.password_hash:
                hashes.setdefault(a.account, set()).add(a.password_hash)
            else:
                acct.unhashed += 1
        elif a.outcome == "success":
            ip.successes += 1
            acct.successes += 1
    for account, seen in hashes.items():
        by_account[account].password_hashes = len(seen)
    for acct in by_account.values():
        acct.classification = classify_account(acct)
    for ip in by_ip.values():
        ip.classification = classify_ip(ip, by_account)
    start = since or (attempts[0].time if attempts else None)
    end = until or (attempts[-1].time if attempts else None)
    step, origin, count = _bucket_plan(start, end, max_buckets)
    fails, oks = [0] * count, [0] * count
    if origin is not None:
        for a in attempts:
            index = int((a.time - origin).total_seconds() // step)
            if 0 <= index < count:
                if a.outcome == "failure":
                    fails[index] += 1
                elif a.outcome == "success":
                    oks[index] += 1

    def timeline_of(ip: str | None, account: str | None, limit: int) -> list[Attempt]:
        rows = (a for a in attempts
                if (ip is None or a.ip == ip) and (account is None or a.account == account))
        return [a for _, a in zip(range(limit), rows, strict=False)]

    return _report(since, until, len(attempts), sum(1 for a in attempts if a.outcome == "failure"),
                   sum(1 for a in attempts if a.outcome == "success"), by_ip, by_account, step, origin,
                   fails, oks, timeline_of, wanted, truncated)


def classify_account(acct: AccountStats) -> str:
    if acct.account == UNKNOWN or not acct.failures:
        return ""
    if (acct.failures >= STALE_FAILURES and acct.password_hashes == 1 and not acct.unhashed
            and len(acct.ips) <= 2):
        return "stale_credentials"
    if len(acct.ips) >= TARGETED_IPS:
        return "targeted"
    if acct.failures >= BRUTE_FAILURES and acct.password_hashes != 1:
        return "brute_force"
    return ""


def classify_ip(ip: IpStats, accounts: dict[str, AccountStats]) -> str:
    if not ip.failures:
        return ""
    named = [a for a in ip.accounts if a != UNKNOWN]
    if len(named) >= SPRAY_ACCOUNTS and ip.failures / len(named) <= SPRAY_PER_ACCOUNT:
        return "spraying"
    if named and all(accounts[a].classification == "stale_credentials" for a in named):
        return "stale_credentials"
    if ip.failures >= BRUTE_FAILURES:
        return "brute_force"
    return ""


def _bucket_plan(start: datetime | None, end: datetime | None, max_buckets: int
                 ) -> tuple[int, datetime | None, int]:
    """(step seconds, first bucket's start, bucket count) for the chart over [start, end]."""
    if start is None or end is None:
        return 60, None, 0
    span = max((end - start).total_seconds(), 1.0)
    step = next((s for s in BUCKET_STEPS if span / s <= max_buckets), BUCKET_STEPS[-1])
    origin = datetime.fromtimestamp(int(start.timestamp()) // step * step, start.tzinfo)
    return step, origin, int((end - origin).total_seconds() // step) + 1


def keystone_report(
    store: StoreReads,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    accounts: Sequence[str] | None = None,
    privileged: Iterable[str] = (),
    project: str | None = None,
    max_events: int = MAX_EVENTS,
) -> KeystoneReport:
    """From the store's correlated attempts when it keeps them, else recounted from its events."""
    report = rollup_report(store, since=since, until=until, accounts=accounts, project=project,
                           privileged=privileged)
    if report is not None:
        return report
    if project is not None:
        raise ValueError("this store keeps no login attempts: the report cannot be scoped to a project")
    events, truncated = login_events(store, since, until, max_events)
    return build_report(
        events, since=since, until=until, accounts=accounts, privileged=privileged, truncated=truncated
    )


# -- export ------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def ip_row(s: IpStats) -> dict[str, Any]:
    return {
        "ip": s.ip,
        "failures": s.failures,
        "successes": s.successes,
        "accounts": len(s.accounts),
        "top_accounts": top(s.accounts, 5),
        "per_minute": s.per_minute,
        "first_seen": _iso(s.first),
        "last_seen": _iso(s.last),
        "classification": s.classification,
    }


def account_row(s: AccountStats) -> dict[str, Any]:
    return {
        "account": s.account,
        "privileged": s.privileged,
        "failures": s.failures,
        "successes": s.successes,
        "source_ips": len(s.ips),
        "top_ips": top(s.ips, 5),
        "password_hashes": s.password_hashes,
        "per_minute": s.per_minute,
        "first_seen": _iso(s.first),
        "last_seen": _iso(s.last),
        "classification": s.classification,
    }


def attempt_row(a: Attempt) -> dict[str, Any]:
    return {
        "time": a.time.isoformat(),
        "ip": a.ip,
        "account": a.account,
        "outcome": a.outcome,
        "password_hash": a.password_hash,
        "host": a.host,
        "kind": a.kind,
        "ref": a.ref,
    }


def report_dict(report: KeystoneReport) -> dict[str, Any]:
    """The whole report as JSON-ready data."""
    return {
        "since": _iso(report.since),
        "until": _iso(report.until),
        "restricted_to": report.restricted,
        "truncated": report.truncated,
        "totals": {
            "attempts": report.total,
            "failures": report.failures,
            "successes": report.successes,
            "source_ips": len(report.ips),
            "accounts": len(report.accounts),
        },
        "failures_over_time": {
            "bucket_seconds": report.bucket_seconds,
            "buckets": [
                {"start": t.isoformat(), "failures": f, "successes": s} for t, f, s in report.buckets
            ],
        },
        "source_ips": [ip_row(s) for s in report.ips],
        "accounts": [account_row(s) for s in report.accounts],
    }


def report_csv(report: KeystoneReport) -> str:
    """One CSV table: a row per source address and per account (``entity`` says which)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")

    def write(cells: list[Any]) -> None:
        writer.writerow([_cell(c) for c in cells])

    write(
        [
            "entity",
            "name",
            "failures",
            "successes",
            "distinct",
            "per_minute",
            "first_seen",
            "last_seen",
            "classification",
            "privileged",
            "top",
        ]
    )
    for s in report.ips:
        row = ip_row(s)
        write(
            [
                "ip",
                s.ip,
                s.failures,
                s.successes,
                row["accounts"],
                s.per_minute,
                row["first_seen"],
                row["last_seen"],
                s.classification,
                "",
                " ".join(row["top_accounts"]),
            ]
        )
    for a in report.accounts:
        row = account_row(a)
        write(
            [
                "account",
                a.account,
                a.failures,
                a.successes,
                row["source_ips"],
                a.per_minute,
                row["first_seen"],
                row["last_seen"],
                a.classification,
                "yes" if a.privileged else "",
                " ".join(row["top_ips"]),
            ]
        )
    return out.getvalue()


def _cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas: account names come from attackers (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(value):
        return "'" + value
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
