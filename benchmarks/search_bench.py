"""Search benchmark: ``python -m benchmarks.search_bench --records 1000000 [--data DIR]``.

Builds (or reuses, with ``--data``) a store of synthetic events spread over a week (20
hosts, 8 services, 50,000 source IPs, 5,000 users, a request id per three events), brings
its search index up to date, then times queries in the search language the way the API and
the search page run them: one page of 50 hits, the hit count, the histogram and the field
sidebar. Prints a markdown table (median of ``--repeat`` runs, milliseconds).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from stackwatch.core.event import Event, Initiator
from stackwatch.search.query import parse
from stackwatch.search.run import SIDEBAR_FIELDS, buckets_for
from stackwatch.store.base import EventQuery
from stackwatch.store.sqlite import SQLiteStore

T0 = datetime(2026, 11, 1, tzinfo=UTC)
SPAN = timedelta(days=7)
SERVICES = ("keystone", "nova-api", "nova-compute", "neutron-server", "glance-api", "cinder-volume", "sshd",
            "haproxy")
WORDS = ("authorization", "failed", "accepted", "instance", "terminating", "request", "token", "issued",
         "connection", "refused", "volume", "attached", "port", "bound", "image", "uploaded")


def address(i: int) -> str:
    """One of 50,000 addresses, scattered over the records."""
    j = (i * 7919) % 50_000
    return f"10.0.{j // 250}.{j % 250}"


def events(n: int) -> Iterator[Event]:
    step = SPAN / n
    for i in range(n):
        when = T0 + step * i
        failed = i % 5 == 0
        words = " ".join(WORDS[(i * k) % len(WORDS)] for k in (1, 3, 7))
        ip = address(i)
        yield Event(time=when, received=when, host=f"ctl{i % 20}", service=SERVICES[i % len(SERVICES)],
                    severity="warning" if failed else "info", kind="oslo_log",
                    action="authenticate" if i % 3 == 0 else "http.request",
                    outcome="failure" if failed else "success",
                    initiator=Initiator(name=f"user{(i * 31) % 5000}", source_ip=ip, project=f"p{i % 300}"),
                    request_id=f"req-{i // 3:08x}-bench", message=f"{words} {ip} event {i}",
                    raw=f"{when.isoformat()} {words} {ip}", origin="bench", ref=f"bench:{i}")


def build(data: Path, n: int) -> SQLiteStore:
    store = SQLiteStore(data, background_index=False)
    if store.counts().events < n:
        batch: list[Event] = []
        for event in events(n):
            batch.append(event)
            if len(batch) == 20_000:
                store.append_events(batch)
                batch = []
        store.append_events(batch)
        store.flush()
    started = time.perf_counter()
    store.index_pending()
    print(f"indexed in {time.perf_counter() - started:.1f} s; {store.counts().events} events")
    return store


def timed(work: Callable[[], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs) * 1000


def measure(store: SQLiteStore, text: str, repeat: int) -> tuple[int, list[float]]:
    """The hit count, and the milliseconds of each step the search page runs."""
    query = EventQuery(match=parse(text), limit=50)
    total = store.count_events(query)
    bounds = store.event_time_bounds(query)
    start, step, size = buckets_for(*bounds) if bounds else (T0, timedelta(hours=1), 1)
    return total, [
        timed(lambda: store.search_events(query), repeat),
        timed(lambda: store.count_events(query), repeat),
        timed(lambda: store.hit_histogram(query, start, step, size), repeat),
        timed(lambda: store.top_values(query, SIDEBAR_FIELDS), repeat),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=None, help="store folder to build or reuse")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        store = build(args.data or Path(scratch) / "data", args.records)
        one_ip = address(12_345)
        queries = [f"source_ip:{one_ip}", "user:user1234", "user:user12*", "request_id:req-0000abcd-bench",
                   '"connection refused"', "host:ctl3 AND outcome:failure",
                   f"source_ip:{one_ip} time:[2026-11-02 TO 2026-11-04]",
                   "NOT outcome:success AND service:keystone", ""]
        print("| query | hits | page of 50 | count | histogram | sidebar |")
        print("|---|---:|---:|---:|---:|---:|")
        for text in queries:
            total, figures = measure(store, text, args.repeat)
            cells = " | ".join(f"{f:.0f} ms" for f in figures)
            print(f"| `{text or '(everything)'}` | {total} | {cells} |")
        store.close()


if __name__ == "__main__":
    main()
