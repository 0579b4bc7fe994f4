"""Rendering for people and tools: lists in the ``openstack`` CLI's conventions
(``output_options`` and ``emit``), analyze's alert table and JSON lines, its progress bar and
closing summary.

A list command takes ``output_options`` and hands its rows to ``emit``::

    @click.command("sources")
    @output_options
    def sources_command(fmt: str, columns: tuple[str, ...], fit_width: bool) -> None:
        emit(rows, ["Host", "Service", "Events"], fmt=fmt, selected=columns, fit_width=fit_width)

``-f/--format table|json|csv|yaml|value`` (table: a boxed table; value: the bare values, one
row a line, no header, for shell pipes), ``-c/--column NAME`` (repeatable; picks and orders
the columns; an unknown name is a usage error listing the known ones) and ``--fit-width``
(wrap the table's widest cells to fit the terminal, as cliff's ``--fit-width`` does).
"""

from __future__ import annotations

import csv
import shutil
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO, TypeVar

import click
import orjson
import yaml

from stackwatch.core.alert import Alert, alert_to_dict
from stackwatch.pipeline.reader import InputFile, ReadProgress

SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}

FORMATS = ("table", "json", "csv", "yaml", "value")
Command = TypeVar("Command", bound=Callable[..., Any])


def output_options(command: Command) -> Command:
    """Adds ``-f/--format`` (``fmt``), ``-c/--column`` (``columns``) and ``--fit-width``
    (``fit_width``) to a list command; pass them on to ``emit``."""
    command = click.option("--fit-width", "fit_width", is_flag=True,
                           help="Fit the table to the terminal's width (long cells wrap).")(command)
    command = click.option("-c", "--column", "columns", multiple=True, metavar="COLUMN",
                           help="Show only this column (repeat for more; in this order).")(command)
    return click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="table",
                        show_default=True, help="Output format.")(command)


def emit(rows: Sequence[dict[str, object]], columns: Sequence[str], *, fmt: str = "table",
         selected: Sequence[str] = (), fit_width: bool = False, out: TextIO | None = None) -> None:
    """Write ``rows`` (dicts keyed by the names in ``columns``, in that order) as ``fmt``.

    ``selected`` picks and orders columns (``-c``); an unknown name raises click.UsageError.
    Values: datetimes in ISO 8601 UTC (``2026-03-02T08:00:00Z``), None as an empty cell (null
    in json/yaml), lists joined with ', ' in table/csv/value and kept as lists in json/yaml."""
    out = out or sys.stdout
    shown = _columns(columns, selected)
    if fmt == "json":
        out.write(orjson.dumps([{c: _data(row.get(c)) for c in shown} for row in rows],
                               option=orjson.OPT_INDENT_2).decode() + "\n")
    elif fmt == "yaml":
        out.write(yaml.safe_dump([{c: _data(row.get(c)) for c in shown} for row in rows],
                                 sort_keys=False, allow_unicode=True, default_flow_style=False))
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(shown)
        writer.writerows([_cell(row.get(c)) for c in shown] for row in rows)
    elif fmt == "value":
        for row in rows:
            out.write(" ".join(_cell(row.get(c)) for c in shown) + "\n")
    elif fmt == "table":
        width = shutil.get_terminal_size((120, 20)).columns if fit_width else None
        out.write(box_table(shown, [[_cell(row.get(c)) for c in shown] for row in rows], width))
    else:
        raise click.UsageError(f"unknown format {fmt!r} (formats: {', '.join(FORMATS)})")


def _columns(columns: Sequence[str], selected: Sequence[str]) -> list[str]:
    if not selected:
        return list(columns)
    by_name = {c.lower(): c for c in columns}
    unknown = [name for name in selected if name.lower() not in by_name]
    if unknown:
        raise click.UsageError(f"unknown column {unknown[0]!r} (columns: {', '.join(columns)})")
    return [by_name[name.lower()] for name in selected]


def _data(value: object) -> object:
    """A value for json/yaml: times as ISO 8601 text, tuples as lists."""
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, tuple | list):
        return [_data(v) for v in value]
    return value


def _cell(value: object) -> str:
    """A value as table/csv/value text."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, tuple | list):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def box_table(header: Sequence[str], rows: Sequence[Sequence[str]], width: int | None = None) -> str:
    """``+---+`` boxed table (the openstack CLI's look). With ``width``, the widest columns
    are narrowed (their cells wrap) until a line fits, down to 8 characters a column."""
    widths = [max([len(h), *(max(map(len, cell.splitlines() or [""])) for cell in column)])
              for h, column in zip(header, zip(*rows, strict=True) if rows else [[]] * len(header),
                                   strict=True)]
    if width is not None:
        while sum(widths) + 3 * len(widths) + 1 > width and max(widths) > 8:
            widest = widths.index(max(widths))
            widths[widest] -= 1
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+\n"

    def lines_of(cells: Sequence[str]) -> str:
        wrapped = [_wrap(cell, w) for cell, w in zip(cells, widths, strict=True)]
        height = max(map(len, wrapped), default=1)
        return "".join(
            "| " + " | ".join((parts[i] if i < len(parts) else "").ljust(w)
                              for parts, w in zip(wrapped, widths, strict=True)) + " |\n"
            for i in range(height))

    return rule + lines_of(header) + rule + "".join(lines_of(row) for row in rows) + (rule if rows else "")


def _wrap(cell: str, width: int) -> list[str]:
    lines: list[str] = []
    for line in cell.splitlines() or [""]:
        lines += textwrap.wrap(line, width, break_long_words=True, break_on_hyphens=False) or [""]
    return lines


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
        share = min(max(progress.file_bytes, 0) / progress.total_bytes, 1.0)
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
