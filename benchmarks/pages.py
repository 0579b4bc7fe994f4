"""Dashboard page speed on a big store: ``python -m benchmarks.pages``.

    python -m benchmarks.pages build --events 1000000 --data /tmp/pages-1m
    python -m benchmarks.pages time --data /tmp/pages-1m [--repeat 3] [--json]

``build`` writes a scenario corpus of about ``--events`` lines (the benchmark corpus
generator, ``scenario.generate``, spread over ``--hours`` of event time) and ingests it
through the real ingest path (``stackwatch analyze``: read, parse, detect, store), so the
store holds what a real one would: events of every kind, alerts, the search index.

``grow`` makes a bigger store from a built one by copying its events ``--factor`` times
into the same time window (SQL, one statement per copy; the rollup, source counts and search
index follow), for sizes whose real ingest takes longer than this shared 2-core machine can
give (10M events ingest in about an hour on an idle core). The copy is denser, not longer:
every page reads a window that holds ``factor`` times the events (and login attempts: the
copies of a login make the copy's attempt). It is a benchmark
fixture only: its hash chain does not cover the copies, so ``store verify`` fails on it and
it refuses appends (audit events of the timed logins go to the spool file).

``time`` serves the real app (``create_app`` over the data folder, a logged-in session
through Starlette's TestClient, the same middleware and templates a browser gets) and
times each page: the first request (cold caches), the fastest of ``--repeat`` more, and
the least CPU time one of those took (the process's, every thread: what the page costs when
the machine is not shared). Prints a markdown table (or JSON).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

PAGES: tuple[tuple[str, str], ...] = (
    ("overview", "/"),
    ("alerts", "/alerts"),
    ("keystone", "/keystone"),
    ("activity", "/activity"),
    ("sources", "/sources"),
    ("search", "/search?q=Failed+password"),
    ("search ip", "/search?q=source_ip%3A10.20.0.12"),
    ("search user", "/search?q=user%3Aalice"),
    ("search not", "/search?q=NOT+outcome%3Asuccess+AND+service%3Akeystone"),
)
USER = ("bench", "bench-password-for-pages")


def build(events: int, data: Path, corpora: Path, hours: float, seed: int) -> dict[str, Any]:
    """Generate the corpus (kept in ``corpora`` for reuse) and analyze it into ``data``."""
    from stackwatch.cli.analyze import run_analyze
    from stackwatch.scenario import generate

    corpus = corpora / f"pages-{events}-{seed}-{hours:g}h"
    started = time.perf_counter()
    if not (corpus / "manifest.json").exists():
        generate(corpus, seed=seed, lines=events, duration=timedelta(hours=hours))
    generated = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        result = run_analyze([str(corpus)], data=str(data))
    done = time.perf_counter()
    return {"events": result.progress.stats.records, "alerts": len(result.alerts),
            "generate_s": round(generated - started, 1), "ingest_s": round(done - generated, 1)}


def grow(data: Path, factor: int, index: bool = True) -> dict[str, Any]:
    """Copy every event of the store in ``data`` ``factor - 1`` more times (seq shifted, time
    shifted by the copy's number of microseconds), then bring the derived tables along."""
    import sqlite3

    from stackwatch.store import open_store
    from stackwatch.store.rows import EVENT_COLUMNS
    from stackwatch.store.sqlite import DB_FILE
    from stackwatch.store.sqlite_attempts import regroup

    started = time.perf_counter()
    conn = sqlite3.connect(data / DB_FILE, isolation_level=None)
    last = conn.execute("SELECT max(seq) FROM events").fetchone()[0]
    columns = ", ".join(EVENT_COLUMNS)
    shifted = ", ".join({"seq": "seq + ?1", "time": "time + ?2"}.get(c, c) for c in EVENT_COLUMNS)
    for copy in range(1, factor):
        conn.execute("BEGIN")
        conn.execute(f"INSERT INTO events ({columns}) SELECT {shifted} FROM events "
                     "WHERE seq <= ?3 ORDER BY seq", (copy * last, copy, last))
        conn.execute("COMMIT")
    attempts = "seq, time, ip, account, project, outcome, hash, host, kind, ref, agent"
    conn.execute("BEGIN")
    for copy in range(1, factor):  # each copied login keeps its copy's attempt (seq and time shifted)
        conn.execute(f"INSERT INTO login_attempts ({attempts}) SELECT seq + ?1, time + ?2, "
                     "ip, account, project, outcome, hash, host, kind, ref, agent FROM login_attempts "
                     "WHERE seq <= ?3", (copy * last, copy, last))
    regroup(conn)
    conn.execute("UPDATE sources SET count = count * ?", (factor,))
    conn.execute("UPDATE event_counts SET n = n * ?", (factor,))
    conn.execute("UPDATE meta SET value = ? WHERE name = 'attempts_upto'", (last * factor,))
    conn.execute("COMMIT")
    conn.close()
    copied = time.perf_counter()
    if index:
        with open_store(data, background_index=False) as store:
            store.index_pending()
    return {"events": last * factor, "copy_s": round(copied - started, 1),
            "index_s": round(time.perf_counter() - copied, 1)}


def _client(data: Path) -> Any:
    from fastapi.testclient import TestClient

    from stackwatch.api import Services, WebSettings, create_app

    # Read-only, as a second web process beside a collector would open it: no background
    # indexing competes with the timed requests (the store is indexed when built or grown).
    services = Services.for_data_dir(data, read_only=True)
    if services.users.get(USER[0]) is None:
        services.users.add(USER[0], USER[1], "viewer")
    client = TestClient(create_app(WebSettings(), services))
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token, "no CSRF token on the login page"
    response = client.post("/login", data={"username": USER[0], "password": USER[1],
                                           "csrf_token": token.group(1), "next": "/"}, follow_redirects=False)
    if response.status_code != 303:
        raise SystemExit(f"login failed: {response.status_code} {response.text[:200]}")
    return client, services


def time_pages(data: Path, repeat: int, only: str = "") -> dict[str, Any]:
    """Time each page (those whose name starts with one of the comma-separated ``only``)."""
    client, services = _client(data)
    rows = []
    prefixes = tuple(p.strip() for p in only.split(",") if p.strip())
    try:
        counts = services.store.counts()
        for name, path in PAGES:
            if prefixes and not name.startswith(prefixes):
                continue
            timings, cpu = [], []
            for _ in range(repeat + 1):
                started, started_cpu = time.perf_counter(), time.process_time()
                response = client.get(path)
                timings.append(time.perf_counter() - started)
                cpu.append(time.process_time() - started_cpu)
                if response.status_code != 200:
                    raise SystemExit(f"{path}: HTTP {response.status_code}: {response.text[:300]}")
            row = {"page": name, "path": path, "first_ms": round(timings[0] * 1000, 1),
                   "best_ms": round(min(timings[1:] or timings) * 1000, 1),
                   "cpu_ms": round(min(cpu[1:] or cpu) * 1000, 1)}
            hits = re.search(r'id="hit-count">(\d+)<', response.text)
            if hits:  # a search page: the hit count it showed, and whether it is an estimate
                row["hits"] = int(hits.group(1))
                row["estimated"] = 'id="estimated"' in response.text
            rows.append(row)
    finally:
        client.close()
        services.close()
    return {"events": counts.events, "alerts": counts.alerts, "pages": rows}


def markdown(result: dict[str, Any]) -> str:
    lines = [f"{result['events']:,} events, {result['alerts']:,} alerts", "",
             "| page | path | first ms | best ms | best CPU ms | hits shown |",
             "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r['page']} | `{r['path']}` | {r['first_ms']:,} | {r['best_ms']:,} | {r['cpu_ms']:,} | "
              + (f"{'about ' if r['estimated'] else ''}{r['hits']:,}" if "hits" in r else "") + " |"
              for r in result["pages"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pages", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="generate a corpus and ingest it into a store")
    build_cmd.add_argument("--events", type=int, default=1_000_000)
    build_cmd.add_argument("--data", type=Path, required=True)
    build_cmd.add_argument("--corpora", type=Path, default=Path("/tmp/stackwatch-corpora"))
    build_cmd.add_argument("--hours", type=float, default=24.0, help="event-time span of the corpus")
    build_cmd.add_argument("--seed", type=int, default=7)
    grow_cmd = commands.add_parser("grow", help="copy a built store's events FACTOR times (same window)")
    grow_cmd.add_argument("--data", type=Path, required=True)
    grow_cmd.add_argument("--factor", type=int, default=10)
    grow_cmd.add_argument("--no-index", dest="index", action="store_false",
                          help="leave the search index behind (search then covers the original events)")
    time_cmd = commands.add_parser("time", help="time every page of the app over a store")
    time_cmd.add_argument("--data", type=Path, required=True)
    time_cmd.add_argument("--repeat", type=int, default=3)
    time_cmd.add_argument("--json", action="store_true")
    time_cmd.add_argument("--only", default="", help="pages whose name starts so (comma-separated: search)")
    args = parser.parse_args(argv)
    if args.command == "build":
        print(orjson.dumps(build(args.events, args.data, args.corpora, args.hours, args.seed)).decode())
        return
    if args.command == "grow":
        print(orjson.dumps(grow(args.data, args.factor, args.index)).decode())
        return
    result = time_pages(args.data, args.repeat, args.only)
    print(orjson.dumps(result).decode() if args.json else markdown(result))


if __name__ == "__main__":
    sys.exit(main())
