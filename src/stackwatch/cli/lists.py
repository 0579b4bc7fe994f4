"""``stackwatch alerts`` and ``stackwatch sources``: the store's alerts and sources as lists in
the openstack CLI's conventions (``-f``, ``-c``, ``--fit-width``: see output.py)."""

from __future__ import annotations

import click

from stackwatch.cli.analyze import DEFAULT_DATA
from stackwatch.cli.output import emit, output_options

ALERT_COLUMNS = ["ID", "First seen", "Last seen", "Severity", "Status", "Category", "Host", "Service",
                 "Source IP", "User", "Count", "Summary", "Rule"]
SOURCE_COLUMNS = ["Host", "Service", "Events", "First seen", "Last seen", "Last received"]
DATA_OPTION = click.option("--data", default=DEFAULT_DATA, show_default=True, envvar="STACKWATCH_DATA",
                           help="Data folder of the store.")


@click.command("alerts")
@DATA_OPTION
@click.option("--status", type=click.Choice(["open", "acknowledged", "resolved"]), default=None,
              help="Only alerts in this state.")
@click.option("--severity", type=click.Choice(["critical", "high", "medium", "low"]), default=None)
@click.option("--host", default=None, help="Only alerts about this host.")
@click.option("--since", default=None, help="Last seen at or after: ISO 8601 or a span back from the newest "
              "stored event (30m, 24h, 7d).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True,
              help="At most this many, newest first.")
@output_options
def alerts_command(data: str, status: str | None, severity: str | None, host: str | None, since: str | None,
                   limit: int, fmt: str, columns: tuple[str, ...], fit_width: bool) -> None:
    """List the stored alerts, newest first."""
    from stackwatch.api.timespan import parse_time_text, store_now
    from stackwatch.store import open_store
    from stackwatch.store.base import AlertQuery

    with open_store(data, read_only=True) as store:
        try:
            start = parse_time_text(since, store_now(store), name="--since") if since else None
        except ValueError as exc:
            raise click.BadParameter(str(exc).removeprefix("--since: "), param_hint="--since") from None
        stored = store.alerts(AlertQuery(status=status, severity=severity, host=host, since=start,
                                         with_evidence=False, limit=limit))
    rows: list[dict[str, object]] = [{
        "ID": s.id, "First seen": s.alert.time, "Last seen": s.alert.last_seen, "Severity": s.alert.severity,
        "Status": s.alert.status, "Category": s.alert.category, "Host": s.alert.host,
        "Service": s.alert.service, "Source IP": s.alert.source_ip, "User": s.alert.user,
        "Count": s.alert.count, "Summary": s.alert.summary, "Rule": s.alert.rule,
    } for s in stored]
    emit(rows, ALERT_COLUMNS, fmt=fmt, selected=columns, fit_width=fit_width)


@click.command("sources")
@DATA_OPTION
@output_options
def sources_command(data: str, fmt: str, columns: tuple[str, ...], fit_width: bool) -> None:
    """List the sources (host + service) events came from: how many, and when."""
    from stackwatch.store import open_store

    with open_store(data, read_only=True) as store:
        stats = store.source_stats()
    rows = [{
        "Host": s.host, "Service": s.service, "Events": s.count, "First seen": s.first_seen,
        "Last seen": s.last_seen, "Last received": s.last_received,
    } for s in sorted(stats, key=lambda s: (s.host, s.service))]
    emit(rows, SOURCE_COLUMNS, fmt=fmt, selected=columns, fit_width=fit_width)
