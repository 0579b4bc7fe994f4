"""Run the pipeline over folders and print digests of everything it produced, as JSON.

    python -m tests.accel_run DATA_DIR FOLDER...

tests/test_accel.py runs this once with the compiled hot modules and once with
STACKWATCH_PURE_PYTHON=1, in separate processes (the switch is read at import), and
compares: every event read (its canonical JSON), the alerts (JSON), the events as the
store gives them back, and what the store wrote from those events: every record's exact
bytes, the blocks' digests and chain hashes, the narrow rows.
Digests keep the output small; counts say what was compared.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import sys
from datetime import datetime, tzinfo
from pathlib import Path

import msgspec


class _FixedNow(datetime):
    """The reader stamps ``received`` with the wall clock (and records without a time of
    their own take it): fixed, two runs read the same events."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> datetime:
        return datetime(2026, 1, 2, 3, 4, 5, tzinfo=tz)


def _digest(items: list[bytes]) -> str:
    return hashlib.sha256(b"\n".join(items)).hexdigest()


def run(data: Path, folder: Path) -> dict[str, object]:
    from stackwatch import accel
    from stackwatch.core.alert import alert_to_dict
    from stackwatch.core.event import to_json
    from stackwatch.pipeline import reader
    from stackwatch.pipeline.analyze import analyze
    from stackwatch.pipeline.engine import build_engine
    from stackwatch.pipeline.reader import discover, read_events
    from stackwatch.store import open_store

    reader.datetime = _FixedNow  # type: ignore[misc]

    events = [to_json(event) for event in read_events(discover([str(folder)]))]
    shutil.rmtree(data, ignore_errors=True)
    store = open_store(str(data))
    try:
        result = analyze(discover([str(folder)]), engine=build_engine(report=None), store=store)
        stored = [item for first in range(1, result.stored + 1, 10_000)  # the store's limit a call
                  for item in store.get_events(range(first, min(first + 10_000, result.stored + 1)))]
    finally:
        store.close()
    written = _written(data)
    alerts = [json.dumps(alert_to_dict(alert), sort_keys=True, default=str).encode()
              for alert in result.alerts]
    return {"path": accel.status(), "events": len(events), "events_sha256": _digest(events),
            "alerts": len(alerts), "alerts_sha256": _digest(alerts), "stored": len(stored),
            "stored_sha256": _digest([msgspec.json.encode(item.event) for item in stored]), **written}


def _written(data: Path) -> dict[str, object]:
    """Digests of what the store wrote: each record's bytes (the blocks' payloads), the blocks'
    record digests and chain hashes, and the narrow rows of the events table."""
    from stackwatch.store.integrity import blocks

    conn = sqlite3.connect(f"{(data / 'stackwatch.db').resolve().as_uri()}?mode=ro", uri=True)
    try:
        stored = conn.execute("SELECT id, first_seq, count, digests, data, chain FROM blocks "
                              "ORDER BY id").fetchall()
        rows = [repr(row).encode("utf-8", "surrogatepass")
                for row in conn.execute("SELECT * FROM events ORDER BY seq")]
    finally:
        conn.close()
    records = [record for block in stored for record in blocks.records(block[4])]
    return {"blocks": len(stored), "records": len(records), "records_sha256": _digest(records),
            "chain_sha256": _digest([repr(block[:4]).encode() + block[5] for block in stored]),
            "rows": len(rows), "rows_sha256": _digest(rows)}


def main() -> None:
    data = Path(sys.argv[1])
    print(json.dumps({folder: run(data, Path(folder)) for folder in sys.argv[2:]}))


if __name__ == "__main__":
    main()
