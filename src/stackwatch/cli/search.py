"""``stackwatch search QUERY``: the search language (docs/search.md) over a data folder.

Rows are built by ``event_row`` (one flat dict per event, the same columns for every
format) and written in the openstack CLI's conventions (``-f``, ``-c``, ``--fit-width``:
output.py), or as JSON lines with ``--json``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Final

import click
import orjson

from stackwatch.cli.analyze import DEFAULT_DATA
from stackwatch.cli.output import emit, output_options
from stackwatch.store.base import MAX_LIMIT, StoredEvent

COLUMNS: Final = ("Time", "Host", "Service", "Severity", "Kind", "Action", "Outcome", "User", "Source IP",
                  "Request ID", "Message", "Seq")
"""The columns of every format (``-c`` picks among them); the table shows all but Seq by default."""
TABLE_COLUMNS: Final = COLUMNS[:-1]


def event_row(stored: StoredEvent) -> dict[str, object]:
    """One event as the flat row every output format shows (times in ISO 8601, UTC)."""
    e = stored.event
    return {"Time": e.time, "Host": e.host, "Service": e.service, "Severity": e.severity, "Kind": e.kind,
            "Action": e.action or "", "Outcome": e.outcome or "",
            "User": e.initiator.name or e.initiator.id or "", "Source IP": e.initiator.source_ip or "",
            "Request ID": e.request_id or "", "Message": e.message, "Seq": stored.seq}


def json_line(row: dict[str, object]) -> str:
    """``--json``: one event a line (streams; ``-f json`` writes one array), snake_case keys."""
    flat = {name.lower().replace(" ", "_"): value for name, value in row.items()}
    return orjson.dumps(flat).decode() + "\n"


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
@click.option("--json", "as_json", is_flag=True,
              help="JSON lines (one event per line, for streaming) instead of -f's formats.")
@output_options
def search_command(query: str, data: str, since: str | None, until: str | None, limit: int,
                   oldest_first: bool, as_json: bool, fmt: str, columns: tuple[str, ...],
                   fit_width: bool) -> None:
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
        sys.stdout.writelines(json_line(row) for row in rows)
        return
    emit(rows, list(COLUMNS), fmt=fmt, selected=columns or (TABLE_COLUMNS if fmt == "table" else ()),
         fit_width=fit_width)
    if fmt == "table":
        total = found.total
        count = f"{len(rows)} of {total}" if total is not None and total != len(rows) else str(len(rows))
        click.echo(f"-- {count} events (times UTC)")
