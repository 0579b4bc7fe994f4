"""``stackwatch search QUERY``: the search language (docs/search.md) over a data folder.

Rows are built by ``event_row`` (one flat dict per event, the same columns for every
format) and written as a simple table or JSON lines."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final, TextIO

import click
import orjson

from stackwatch.cli.analyze import DEFAULT_DATA
from stackwatch.store.base import MAX_LIMIT, StoredEvent

COLUMNS: Final = ("time", "host", "service", "severity", "kind", "action", "outcome", "user", "source_ip",
                  "request_id", "message")
_WIDTHS: Final = {"time": 20, "host": 10, "service": 14, "severity": 8, "kind": 12, "action": 16,
                  "outcome": 8, "user": 14, "source_ip": 15, "request_id": 40}


def event_row(stored: StoredEvent) -> dict[str, str | int]:
    """One event as the flat row every output format shows (times in ISO 8601, UTC)."""
    e = stored.event
    return {"seq": stored.seq, "time": e.time.astimezone(UTC).isoformat(), "host": e.host,
            "service": e.service, "severity": e.severity, "kind": e.kind, "action": e.action or "",
            "outcome": e.outcome or "",
            "user": e.initiator.name or e.initiator.id or "", "source_ip": e.initiator.source_ip or "",
            "request_id": e.request_id or "", "message": e.message}


def write_table(rows: Sequence[dict[str, str | int]], out: TextIO, total: int | None) -> None:
    def cell(name: str, value: object) -> str:
        text = str(value).replace("\n", " ")
        width = _WIDTHS.get(name)
        if width is None or len(text) <= width:
            return text.ljust(width or 0)
        return text[: width - 1] + "…"

    out.write(" ".join(cell(c, c.upper()) for c in COLUMNS) + "\n")
    for row in rows:
        shown = {**row, "time": str(row["time"])[:19].replace("T", " ")}
        out.write(" ".join(cell(c, shown[c]) for c in COLUMNS) + "\n")
    count = f"{len(rows)} of {total}" if total is not None and total != len(rows) else str(len(rows))
    out.write(f"-- {count} events (times UTC)\n")


def _moment(value: str | None, now: datetime, *, end: bool) -> datetime | None:
    from stackwatch.search.times import TimeSpecError, parse_instant, parse_span

    if not value:
        return None
    try:
        if value[-1:] in "smhdw" and value[:1].isdigit():  # a span such as 24h: that long before now
            return now - timedelta(seconds=parse_span(value))
        instant = parse_instant(value)
    except TimeSpecError as exc:
        raise click.BadParameter(str(exc)) from None
    return instant.resolve_end(now) if end else instant.resolve(now)


@click.command("search")
@click.argument("query", default="")
@click.option("--data", default=DEFAULT_DATA, show_default=True, help="Data folder of the store.")
@click.option("--since", default=None,
              help="Start: 2026-12-01, 2026-12-01T08:30, now-1h, -15m, or a span (24h).")
@click.option("--until", default=None, help="End (exclusive; a bare date: the end of that day).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, MAX_LIMIT),
              help="Most events.")
@click.option("--oldest-first", is_flag=True, help="Oldest first (default: newest first).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines (one event per line) instead of a table.")
def search_command(query: str, data: str, since: str | None, until: str | None, limit: int,
                   oldest_first: bool, as_json: bool) -> None:
    """Search stored events: QUERY is in the search language (docs/search.md), e.g.
    'user:adm* AND NOT outcome:success time:-24h' or '"authorization failed" host:ctl1'."""
    from stackwatch.core.errors import StoreError
    from stackwatch.search.query import QuerySyntaxError
    from stackwatch.search.run import run_search
    from stackwatch.store import open_store

    now = datetime.now(UTC)
    start, end = _moment(since, now, end=False), _moment(until, now, end=True)
    try:
        with open_store(data, read_only=True) as store:
            found = run_search(store, query, since=start, until=end, now=now, limit=limit,
                               newest_first=not oldest_first, count=not as_json)
            unindexed = store.counts().unindexed
    except QuerySyntaxError as exc:
        raise click.ClickException(f"{exc}\n  {query}\n  {' ' * (exc.column - 1)}^") from None
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    if unindexed:  # a read-only store cannot index: the process writing it does, every few seconds
        click.echo(f"note: the {unindexed} newest events are not in the search index yet: free text, IP, "
                   "user and request id terms do not see them", err=True)
    rows = [event_row(e) for e in found.events]
    if as_json:
        for row in rows:
            sys.stdout.write(orjson.dumps(row).decode() + "\n")
    else:
        write_table(rows, sys.stdout, found.total)
