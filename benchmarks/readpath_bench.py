"""Reading records back from a format 2 store: ``python -m benchmarks.readpath_bench DATA [--what W]``.

DATA is a store ``stackwatch analyze CORPUS --data DATA --jobs 1`` made. Each figure is the CPU
time of this process and its children (every thread; on the shared 2-core VM the wall clock
measures the neighbours), divided by the records read:

* ``messages``: ``block_messages`` over every seq (what the search indexer process reads back);
* ``events``: ``block_events`` of pages of 100 scattered seqs, no block cache (a search result
  page, alert evidence): every page decompresses ~100 blocks, so it is mostly zstd;
* ``decode``: ``record_event`` / ``record_row`` / ``record_message`` and ``split_records`` over
  every record already in memory (the per-record part of the three above, alone);
* ``verify``: ``stackwatch store verify`` in a child process (interpreter start included).

Prints one JSON object; ``--digest`` adds a SHA-256 over everything read back, so two checkouts
can be shown to read the same events.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stackwatch.store.block_messages import block_messages
from stackwatch.store.integrity import blocks as codec
from stackwatch.store.integrity.records import record_event, record_message, record_row
from stackwatch.store.sqlite_blocks import block_events

PAGE = 100
PAGES = 20


def cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = cpu()
    out = fn()
    return cpu() - start, out


def _connect(data: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{(data / 'stackwatch.db').resolve().as_uri()}?mode=ro", uri=True)


def messages(data: Path, digest: Any) -> dict[str, float]:
    conn = sqlite3.connect(":memory:")
    conn.execute("ATTACH DATABASE ? AS ev", (f"{(data / 'stackwatch.db').resolve().as_uri()}?mode=ro",))
    high = conn.execute("SELECT max(first_seq + count - 1) FROM ev.blocks").fetchone()[0]
    seconds, got = timed(lambda: list(block_messages(conn, 0, high)))
    if digest is not None:
        digest.update(repr(got).encode("utf-8", "surrogatepass"))
    return {"messages_us": seconds / len(got) * 1e6, "records": len(got)}


def events(data: Path, digest: Any) -> dict[str, float]:
    conn = _connect(data)
    high = conn.execute("SELECT max(seq) FROM events").fetchone()[0]
    rng = random.Random(7)
    pages = [rng.sample(range(1, high + 1), PAGE) for _ in range(PAGES)]
    seconds, got = timed(lambda: [block_events(conn, page) for page in pages])
    if digest is not None:
        digest.update(repr(got).encode("utf-8", "surrogatepass"))
    return {"page_ms": seconds / PAGES * 1e3}


def decode(data: Path, digest: Any) -> dict[str, float]:
    conn = _connect(data)
    blobs = [bytes(d) for (d,) in conn.execute("SELECT data FROM blocks ORDER BY id")]
    payloads = [codec.payload(b) for b in blobs]
    split_s, recs = timed(lambda: [r for p in payloads for r in codec.split_records(p)])
    n = len(recs)
    out = {"split_us": split_s / n * 1e6}
    for name, fn in (("event", record_event), ("row", record_row), ("message", record_message)):
        seconds, got = timed(lambda fn=fn: [fn(r) for r in recs])  # type: ignore[misc]
        out[f"{name}_us"] = seconds / n * 1e6
        if digest is not None:
            digest.update(repr(got).encode("utf-8", "surrogatepass"))
    return out


def verify(data: Path, digest: Any) -> dict[str, float]:
    start = cpu()
    done = subprocess.run([sys.executable, "-m", "stackwatch", "store", "verify", "--data", str(data),
                           "--json"], capture_output=True, check=False, env=dict(os.environ))
    seconds = cpu() - start
    report = json.loads(done.stdout or b"{}")
    if digest is not None:
        digest.update(done.stdout)
    return {"verify_s": seconds, "verify_exit": done.returncode,
            "verify_records": report.get("records", 0)}


WHAT = {"messages": messages, "events": events, "decode": decode, "verify": verify}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--what", action="append", choices=sorted(WHAT))
    parser.add_argument("--digest", action="store_true", help="hash everything read back")
    args = parser.parse_args()
    result: dict[str, Any] = {}
    for name in args.what or list(WHAT):
        digest = hashlib.sha256() if args.digest else None
        result.update(WHAT[name](args.data, digest))
        if digest is not None:
            result[f"{name}_sha256"] = digest.hexdigest()[:16]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
