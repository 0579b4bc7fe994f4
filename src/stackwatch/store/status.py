"""What the dashboard's integrity page shows: the latest checkpoints, the last verification
(written by ``stackwatch store verify``) and the configured witnesses. Read-only."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from stackwatch.store.seal import Checkpoint

LAST_VERIFICATION: Final = "last-verification.json"
SHOWN_CHECKPOINTS: Final = 20


def _time(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1_000_000, UTC).isoformat()


def write_last_verification(data_dir: str | os.PathLike[str], *, ok: bool, records: int,
                            detail: str, seconds: float) -> None:
    """Remember the outcome of a verification for the dashboard (atomic replace)."""
    path = Path(data_dir) / LAST_VERIFICATION
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({
        "time": datetime.now(UTC).isoformat(), "ok": ok, "checked": records,
        "detail": detail, "seconds": round(seconds, 3),
    }), encoding="utf-8")
    os.replace(tmp, path)


def integrity_status(conn: sqlite3.Connection, data_dir: Path,
                     witnesses: list[str] | None = None) -> dict[str, Any]:
    rows = conn.execute("SELECT body FROM checkpoints ORDER BY epoch DESC LIMIT ?",
                        (SHOWN_CHECKPOINTS,)).fetchall()
    checkpoints = []
    for (body,) in rows:
        cp = Checkpoint.from_bytes(bytes(body))
        checkpoints.append({"epoch": cp.epoch, "seq": cp.size, "size": cp.size, "root": cp.root.hex(),
                            "time": _time(cp.time_us), "log_id": cp.log_id})
    try:
        verification = json.loads((data_dir / LAST_VERIFICATION).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        verification = None
    witness = ({"name": ", ".join(witnesses), "state": "configured"} if witnesses
               else {"name": "none", "state": "not configured"})
    return {
        "configured": bool(checkpoints),
        # no checkpoint yet: `stackwatch store init` was not run (or nothing was sealed yet)
        **({} if checkpoints else {"state": "not configured"}),
        "last_checkpoint": checkpoints[0] if checkpoints else None,
        "last_verification": verification,
        "witness": witness,
        "checkpoints": checkpoints,
    }
