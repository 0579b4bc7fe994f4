"""Rendering alerts and run summaries for people (text) and tools (JSON lines)."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

import orjson

from stackwatch.core.alert import Alert, alert_to_dict
from stackwatch.pipeline.reader import InputFile, ReadProgress

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


def write_summary(progress: ReadProgress, alerts: int, out: TextIO | None = None, *,
                  inputs: Sequence[InputFile] = (), already_stored: int | None = None) -> None:
    """The closing summary (on stderr by default): what was read, and what an operator must
    know about it (events already stored by an earlier run, files whose records named no
    known service or no host)."""
    out = out or sys.stderr
    s = progress.stats
    out.write(
        f"records read: {s.records}  parsed: {s.parsed}  unparsed: {s.unparsed}  "
        f"(lines: {s.lines}, blank: {s.blank}, events: {s.events})  alerts: {alerts}\n"
    )
    if already_stored:
        out.write(f"already stored: {already_stored} events (read before from the same files; "
                  "not stored again)\n")
    for source in inputs:
        if source.unattributed:
            out.write(f"no known service: {source.unattributed} of {source.events} events of "
                      f"{source.name} (the records name none and the file name is no known service)\n")
    hostless = [source for source in inputs if source.hostless]
    for source in hostless:
        out.write(f"no host: {source.hostless} of {source.events} events of {source.name}\n")
    if hostless:
        out.write("give their host with --host HOST (or lay the files out as <root>/<host>/<file>)\n")


def _clock_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressBar:
    """A one-line progress bar on stderr, shown only on a terminal: share of the bytes read,
    records framed so far, their rate, the time elapsed and the time left at that pace."""

    WIDTH = 100

    def __init__(self, out: TextIO = sys.stderr, *, clock: Callable[[], float] = time.monotonic,
                 enabled: bool | None = None) -> None:
        self.out = out
        self.enabled = out.isatty() if enabled is None else enabled
        self.clock = clock
        self.started = clock()

    def line(self, progress: ReadProgress) -> str:
        share = min(progress.read_bytes / progress.total_bytes, 1.0)
        filled = int(share * 30)
        elapsed = max(self.clock() - self.started, 0.0)
        records = progress.stats.records
        rate = records / elapsed if elapsed > 0 else 0.0
        text = (f"[{'#' * filled}{'.' * (30 - filled)}] {share:6.1%}  {records:,} records  "
                f"{rate:,.0f}/s  elapsed {_clock_text(elapsed)}")
        if 0 < share < 1:
            text += f"  ETA {_clock_text(elapsed * (1 - share) / share)}"
        return text

    def __call__(self, progress: ReadProgress) -> None:
        if not self.enabled or not progress.total_bytes:
            return
        self.out.write("\r" + self.line(progress).ljust(self.WIDTH)[:self.WIDTH])
        self.out.flush()

    def close(self) -> None:
        if self.enabled:
            self.out.write("\r" + " " * self.WIDTH + "\r")
            self.out.flush()
