"""Rendering alerts and run summaries for people (text) and tools (JSON lines)."""

from __future__ import annotations

import shutil
import sys
from typing import TextIO

import orjson

from stackwatch.core.alert import Alert, alert_to_dict
from stackwatch.pipeline.reader import ReadProgress

SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def alert_json(alert: Alert) -> bytes:
    """One alert as a JSON object: every Alert field (times in ISO 8601), evidence included."""
    return orjson.dumps(alert_to_dict(alert))


def write_json(alerts: list[Alert], out: TextIO) -> None:
    for alert in alerts:
        out.write(alert_json(alert).decode() + "\n")


def write_table(alerts: list[Alert], out: TextIO) -> None:
    if not alerts:
        out.write("No alerts.\n")
        return
    width = shutil.get_terminal_size((140, 20)).columns
    header = f"{'TIME (UTC)':<20} {'SEVERITY':<8} {'CATEGORY':<28} {'HOST':<10} {'N':>5}  SUMMARY"
    out.write(header + "\n" + "-" * min(width, 160) + "\n")
    for alert in alerts:
        when = alert.time.strftime("%Y-%m-%d %H:%M:%S")
        line = (f"{when:<20} {alert.severity:<8} {alert.category:<28} {(alert.host or '-'):<10} "
                f"{alert.count:>5}  {alert.summary}")
        out.write(line[: max(width, 100)] + "\n")
    by_severity: dict[str, int] = {}
    for alert in alerts:
        by_severity[alert.severity] = by_severity.get(alert.severity, 0) + 1
    ordered = sorted(by_severity.items(), key=lambda kv: SEVERITY_ORDER.get(kv[0], 9))
    out.write("\n" + ", ".join(f"{n} {sev}" for sev, n in ordered) + f" ({len(alerts)} alerts)\n")


def write_summary(progress: ReadProgress, alerts: int, out: TextIO = sys.stderr) -> None:
    s = progress.stats
    out.write(
        f"records read: {s.records}  parsed: {s.parsed}  unparsed: {s.unparsed}  "
        f"(lines: {s.lines}, blank: {s.blank}, events: {s.events})  alerts: {alerts}\n"
    )


class ProgressBar:
    """A one-line progress bar on stderr, shown only on a terminal."""

    def __init__(self, out: TextIO = sys.stderr) -> None:
        self.out = out
        self.enabled = out.isatty()

    def __call__(self, progress: ReadProgress) -> None:
        if not self.enabled or not progress.total_bytes:
            return
        share = min(progress.read_bytes / progress.total_bytes, 1.0)
        filled = int(share * 30)
        self.out.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {share:6.1%} "
                       f"{progress.stats.records:,} records")
        self.out.flush()

    def close(self) -> None:
        if self.enabled:
            self.out.write("\r" + " " * 70 + "\r")
            self.out.flush()
