"""Record format 2 benchmark: ``python -m benchmarks.blocks_bench --records 1000000``.

Measured in one run on the same synthetic mix (sshd, keystone and nova-api lines; 65,536 source
addresses, 5,000 users), each figure with its baseline:

* append rate of a plain SQLite insert of the 25-column rows (the baseline), the format 1 store
  (a chained row per record) and the format 2 store (chained compressed blocks + narrow rows),
  and format 2 with its chain work left out (no record digests: the chain on/off ratio);
* the search index build (format 2: from the messages its writer hands it, else from the blocks);
* disk per line, as a ratio to the raw input (the lines and their newlines);
* search latency (newest 100 hits and the hit count) for one IP, one user and a phrase;
* the design alternative, per-block summaries + token bloom filters (VictoriaLogs / Loki style):
  the cost of building them, their size, and the latency of the same searches by scanning the
  blooms and decompressing candidate blocks (``--bloom-records`` records of the same store).

Times are the process's CPU time (every thread), not the wall clock: on this shared 2-core VM
the wall clock measures the neighbours. Keep runs short: ``--records 200000`` takes a few minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.store_bench import BATCH, rows_for
from stackwatch.core.event import Event, Initiator
from stackwatch.store.base import EventQuery
from stackwatch.store.benchmark_unchained import UnchainedBlockStore
from stackwatch.store.integrity import blocks as codec
from stackwatch.store.keys import init_store
from stackwatch.store.rows import EVENT_COLUMNS
from stackwatch.store.sqlite import SQLiteStore
from stackwatch.store.sqlite_blocks import BlockStore

CHUNK = 20_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)
IP = "10.0.17.42"
USER = "user1234"
PHRASE = "quota exceeded"


def _ip(i: int) -> str:
    k = (i * 40503) & 0xFFFF
    return f"10.0.{k >> 8}.{k & 255}"


def make_events(first: int, n: int) -> list[Event]:
    """Records first..first+n-1 of the mix (deterministic)."""
    out = []
    for i in range(first, first + n):
        when = T0 + timedelta(milliseconds=i)
        ip, user = _ip(i), f"user{(i * 7) % 5000}"
        stamp = when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        kind = i % 3
        if kind == 0:
            raw = (
                f"{when:%b %d %H:%M:%S} ctl-{i % 7} sshd[{1000 + i % 30000}]: Failed password for {user} "
                f"from {ip} port {i % 65535} ssh2"
            )
            host, service, action, outcome, msg = f"ctl-{i % 7}", "sshd", "authenticate", "failure", raw[16:]
        elif kind == 1:
            raw = (
                f"{stamp} {1000 + i % 97} WARNING keystone.server.flask.application [req-{i:032x} - - - - -] "
                f"Authorization failed. The request you have made requires authentication. from {ip}"
            )
            host, service, action, outcome, msg = (
                f"ctl-{i % 7}",
                "keystone",
                "authenticate",
                "failure",
                raw[70:],
            )
        else:
            note = " quota exceeded for project" if i % 1000 == 2 else ""
            raw = (
                f"{stamp} {2000 + i % 89} INFO nova.osapi_compute.wsgi.server "
                f"[req-{i:032x} {user} proj{i % 50} "
                f'- default default] {ip} "GET /v2.1/servers/detail HTTP/1.1" status: 200 len: 1873 '
                f"time: 0.{i % 1000:03d}{note}"
            )
            host, service, action, outcome, msg = f"cmp-{i % 40}", "nova-api", "", "", raw[40:]
        out.append(
            Event(
                time=when,
                received=when,
                host=host,
                service=service,
                severity="info",
                kind="syslog",
                message=msg,
                action=action or None,
                outcome=outcome or None,
                initiator=Initiator(name=user, source_ip=ip),
                raw=raw,
                origin="file:/var/log/bench.log",
                ref=f"bench.log:{i}",
            )
        )
    return out


def plain_insert(path: Path, rows: list[tuple[Any, ...]]) -> float:
    """The baseline (``store_bench.plain_insert``) in CPU seconds: one 25-column table, no index."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"CREATE TABLE events ({', '.join(EVENT_COLUMNS)})")
    sql = f"INSERT INTO events VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
    started = time.process_time()
    for i in range(0, len(rows), BATCH):
        conn.execute("BEGIN")
        conn.executemany(sql, rows[i : i + BATCH])
        conn.execute("COMMIT")
    elapsed = time.process_time() - started
    conn.close()
    return elapsed


def chunks(n: int) -> Iterator[list[Event]]:
    for first in range(1, n + 1, CHUNK):
        yield make_events(first, min(CHUNK, n + 1 - first))


def _append(store: Any, n: int) -> tuple[float, int]:
    """Seconds to append n records (event building excluded), and the raw input's bytes."""
    spent, raw = 0.0, 0
    for events in chunks(n):
        raw += sum(len(e.raw.encode()) + 1 for e in events)
        started = time.process_time()
        store.append_events(events)
        spent += time.process_time() - started
    started = time.process_time()
    store.flush()
    return spent + time.process_time() - started, raw


def _open(kind: str, data: Path) -> Any:
    options: dict[str, Any] = {
        "background_index": False,
        "index_every": 10**12,
        "index_interval": 1e9,
        "batch_size": CHUNK,
    }
    if kind == "v1":
        return SQLiteStore(data, **options)
    return (UnchainedBlockStore if kind == "v2-nochain" else BlockStore)(data, **options)


def _parts(data: Path) -> dict[str, int]:
    """Bytes of the blocks, the narrow rows and their indexes, the rest of the record, the search index."""
    parts = {"blocks": 0, "index rows": 0, "row indexes": 0, "other": 0, "search index": 0}
    try:
        conn = sqlite3.connect(data / "stackwatch.db")
        for name, size in conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
            key = (
                "blocks"
                if name in ("blocks", "blocks_first_seq")
                else "index rows"
                if name == "events"
                else "row indexes"
                if name.startswith("events_")
                else "other"
            )
            parts[key] += size
        conn.close()
    except sqlite3.OperationalError:  # no dbstat in this SQLite build
        pass
    parts["search index"] = (data / "stackwatch-index.db").stat().st_size
    return parts


def _folder_bytes(data: Path) -> int:
    return sum(p.stat().st_size for p in data.iterdir() if p.is_file())


def _best(fn: Callable[[], Any], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best


QUERIES = {
    "one IP": EventQuery(source_ip=IP, limit=100),
    "one user": EventQuery(user=USER, limit=100),
    "a phrase": EventQuery(text=PHRASE, limit=100),
}


COLD: dict[str, float] = {}
"""Wall seconds of each search's first run on a freshly opened store (page cache as it comes)."""


def _searches(store: Any) -> dict[str, tuple[float, int]]:
    out = {}
    for name, query in QUERIES.items():
        started = time.perf_counter()
        store.search_events(query)
        hits = store.count_events(query)
        COLD[name] = time.perf_counter() - started
        out[name] = (_best(lambda q=query: (store.search_events(q), store.count_events(q))), hits)
    return out


# -- the alternative: per-block summaries + token bloom filters ---------------------------------

BLOOM_BITS_PER_TOKEN = 10  # ~1% false positives with 7 probes
_TOKEN = re.compile(rb"[A-Za-z0-9_.\-]+")


def _probes(token: bytes, bits: int) -> list[int]:
    h = hashlib.blake2b(token, digest_size=16).digest()
    a, b = int.from_bytes(h[:8], "little"), int.from_bytes(h[8:], "little") | 1
    return [(a + k * b) % bits for k in range(7)]


def _bloom(tokens: set[bytes]) -> tuple[int, int]:
    bits = max(64, len(tokens) * BLOOM_BITS_PER_TOKEN)
    mask = 0
    for token in tokens:
        for p in _probes(token, bits):
            mask |= 1 << p
    return bits, mask


def bloom_build(db: Path) -> tuple[list[tuple[int, int, int, int]], float, int, int]:
    """Summaries (block, first seq, bloom bits, bloom) of every block; seconds, records, bloom bytes."""
    conn = sqlite3.connect(db)
    started = time.process_time()
    summaries, records, size = [], 0, 0
    for number, first, data in conn.execute("SELECT id, first_seq, data FROM blocks ORDER BY id"):
        tokens: set[bytes] = set()
        for record in codec.records(data):
            tokens.update(_TOKEN.findall(record[32:]))  # past the header: the raw line and fields
            records += 1
        bits, mask = _bloom(tokens)
        summaries.append((number, first, bits, mask))
        size += bits // 8
    conn.close()
    return summaries, time.process_time() - started, records, size


def bloom_search(
    db: Path, summaries: list[tuple[int, int, int, int]], words: list[bytes], limit: int = 100
) -> int:
    """Newest ``limit`` records holding every word: scan blooms newest first, decompress candidates."""
    conn = sqlite3.connect(db)
    found = 0
    for number, _first, bits, mask in reversed(summaries):
        if not all((mask >> p) & 1 for w in words for p in _probes(w, bits)):
            continue
        data = conn.execute("SELECT data FROM blocks WHERE id = ?", (number,)).fetchone()[0]
        for record in reversed(codec.records(data)):
            if all(w in record for w in words):
                found += 1
        if found >= limit:
            break
    conn.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument(
        "--bloom-records",
        type=int,
        default=0,
        help="records of the store the bloom alternative reads (default: all)",
    )
    parser.add_argument("--skip-v1", action="store_true", help="leave out the format 1 store (long runs)")
    parser.add_argument("--keep", type=Path, help="build the format 2 store here and keep it")
    parser.add_argument("--no-bloom", action="store_true", help="leave out the bloom alternative (long runs)")
    parser.add_argument("--only-v2", action="store_true",
                        help="the format 2 store alone: no format 1, no chain-off store (10M-line runs)")
    args = parser.parse_args()
    n = args.records
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        rows = rows_for(make_events(1, min(n, 200_000)))
        base = plain_insert(tmp / "plain.db", rows)
        base_rate = len(rows) / base
        del rows
        results: dict[str, Any] = {}
        kinds = (["v2"] if args.only_v2 else ["v2-nochain", "v2"] if args.skip_v1
                 else ["v1", "v2-nochain", "v2"])
        for kind in kinds:
            data = args.keep if kind == "v2" and args.keep else tmp / kind
            if data.exists():
                shutil.rmtree(data)
            if kind != "v2-nochain":  # an unchained store starts empty: no keys, no checkpoints
                init_store(data, format=1 if kind == "v1" else 2, local_witness=False, background_index=False)
            store = _open(kind, data)
            seconds, raw = _append(store, n)
            started = time.process_time()
            store.index_pending()
            indexed = time.process_time() - started
            store.close()
            if kind == "v2-nochain":
                shutil.rmtree(data)
                results[kind] = {"append": seconds}
                continue
            for name in ("stackwatch.db", "stackwatch-index.db"):  # the steady state: WALs folded in
                conn = sqlite3.connect(data / name)
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.close()
            results[kind] = {
                "append": seconds,
                "index": indexed,
                "raw": raw,
                "disk": _folder_bytes(data),
                "parts": _parts(data),
            }
            with (SQLiteStore if kind == "v1" else BlockStore)(data, read_only=True) as reader:
                results[kind]["search"] = _searches(reader)
        v2 = args.keep or tmp / "v2"
        summaries, bloom_s, bloom_n, bloom_bytes, bloom_times = [], 1.0, 1, 0, {}
        if not args.no_bloom:
            summaries, bloom_s, bloom_n, bloom_bytes = bloom_build(v2 / "stackwatch.db")
            bloom_times = {
                name: _best(lambda w=words: bloom_search(v2 / "stackwatch.db", summaries, w))
                for name, words in (
                    ("one IP", [IP.encode()]),
                    ("one user", [USER.encode()]),
                    ("a phrase", PHRASE.encode().split()),
                )
            }
    print(
        f"record format benchmark, {n:,} records (rates: records/s; ratio: to a plain SQLite insert "
        f"of the 25-column rows, {base_rate:,.0f}/s in this run)\n"
    )
    print("| path | records/s | ratio |")
    print("|---|---:|---:|")
    print(f"| plain SQLite insert (baseline) | {base_rate:,.0f} | 1.00 |")
    for kind, label in (
        ("v1", "format 1 append (chained row per record)"),
        ("v2-nochain", "format 2 append, no record digests (chain off)"),
        ("v2", "format 2 append (blocks chained + digests)"),
    ):
        if kind in results:
            rate = n / results[kind]["append"]
            print(f"| {label} | {rate:,.0f} | {rate / base_rate:.2f} |")
    v2r = results["v2"]
    if "v2-nochain" in results:
        print(f"\nchain on/off (format 2): {results['v2-nochain']['append'] / v2r['append']:.3f}")
    print(f"search index build (format 2): {n / v2r['index']:,.0f} records/s")
    print("\n| store | bytes per line | disk / raw input |")
    print("|---|---:|---:|")
    for kind in ("v1", "v2"):
        if kind in results:
            r = results[kind]
            print(f"| format {kind[1]} | {r['disk'] / n:.0f} | {r['disk'] / r['raw']:.2f} |")
    print(f"\nraw input: {v2r['raw'] / n:.0f} bytes per line\n")
    print("| search (newest 100 + count) | hits | format 1 | format 2 | block blooms |")
    print("|---|---:|---:|---:|---:|")
    for name in QUERIES:
        v1s = results.get("v1", {}).get("search", {}).get(name)
        seconds, hits = v2r["search"][name]
        print(
            f"| {name} | {hits:,} | {f'{v1s[0] * 1000:.0f} ms' if v1s else '-'} | {seconds * 1000:.0f} ms | "
            + (f"{bloom_times[name] * 1000:.0f} ms (newest 100 only) |" if bloom_times else "- |")
        )
    print("\nfirst run, wall clock (format 2): "
          + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in COLD.items()))
    parts = v2r["parts"]
    print("\nformat 2 bytes per line: " + ", ".join(f"{k} {v / n:.0f}" for k, v in parts.items()))
    if not bloom_times:
        return
    print(
        f"\nblock blooms: built at {bloom_n / bloom_s:,.0f} records/s (Python), {bloom_bytes / bloom_n:.1f} "
        f"bytes per record, {len(summaries):,} blocks"
    )


if __name__ == "__main__":
    main()
