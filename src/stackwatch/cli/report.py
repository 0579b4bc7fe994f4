"""``stackwatch report auth``: keystone access analytics on the terminal (text, JSON, CSV)."""

from __future__ import annotations

import csv
import io
import sys
from typing import TextIO

import click

from stackwatch.cli.analyze import DEFAULT_DATA
from stackwatch.cli.output import FORMATS, emit


@click.group("report")
def report_group() -> None:
    """Reports over the stored events."""


@report_group.command("auth")
@click.option("--data", default=DEFAULT_DATA, show_default=True, help="Data folder of the store.")
@click.option(
    "--since",
    default="24h",
    show_default=True,
    help="ISO 8601, or a span back from the newest stored event (30m, 24h, 7d); 'all' for everything.",
)
@click.option("--until", default=None, help="ISO 8601 or a span back from the newest event.")
@click.option("--accounts", default=None, help="Comma-separated accounts: report only on them.")
@click.option(
    "--privileged",
    default=None,
    help="Comma-separated accounts to mark privileged (default: admin and the OpenStack service users).",
)
@click.option(
    "-f", "--format", "fmt", type=click.Choice(["text", *FORMATS]), default="text", show_default=True,
    help="text: the two tables for reading; json: the whole report; csv, table, yaml, value: one row "
    "per source IP and per account (the openstack CLI's formats, with -c and --fit-width).",
)
@click.option("-c", "--column", "columns", multiple=True, metavar="COLUMN",
              help="Show only this column (repeat for more; not with -f text).")
@click.option("--fit-width", "fit_width", is_flag=True, help="Fit -f table to the terminal's width.")
@click.option("--top", default=20, show_default=True, help="Rows per table (text format).")
def auth_command(
    data: str, since: str, until: str | None, accounts: str | None, privileged: str | None, fmt: str,
    columns: tuple[str, ...], fit_width: bool, top: int
) -> None:
    """Keystone logins: failures by source IP and by account, frequency, first/last seen,
    targeted accounts and the pattern (brute force, spraying, targeted, stale credentials)."""
    if fmt == "text" and columns:
        raise click.UsageError("-c/--column picks columns of a list: use it with -f table, csv, json, "
                               "yaml or value")
    import orjson

    # No web framework here: `report` works on the plain install (pip install -e .)
    from stackwatch.api.analytics import keystone_report, report_csv, report_dict
    from stackwatch.api.settings import DEFAULT_PRIVILEGED
    from stackwatch.api.timespan import parse_time_text, store_now
    from stackwatch.core.errors import StackwatchError
    from stackwatch.store import open_store

    try:
        with open_store(data, read_only=True) as store:
            now = store_now(store)
            start = None if since == "all" else parse_time_text(since, now, name="--since")
            end = parse_time_text(until, now, name="--until")
            wanted = [a.strip() for a in accounts.split(",") if a.strip()] if accounts else None
            marked = [a.strip() for a in privileged.split(",")] if privileged else DEFAULT_PRIVILEGED
            report = keystone_report(store, since=start, until=end, accounts=wanted, privileged=marked)
    except (ValueError, StackwatchError) as exc:
        raise click.ClickException(str(exc)) from exc
    if fmt == "json" and not columns:
        sys.stdout.write(orjson.dumps(report_dict(report), option=orjson.OPT_INDENT_2).decode() + "\n")
    elif fmt == "csv" and not columns:
        sys.stdout.write(report_csv(report))
    elif fmt == "text":
        write_text(report, sys.stdout, top)
    else:
        reader = csv.DictReader(io.StringIO(report_csv(report)))
        rows: list[dict[str, object]] = [{k: _number(k, v) for k, v in row.items()} for row in reader]
        emit(rows, list(reader.fieldnames or []), fmt=fmt, selected=columns, fit_width=fit_width)


_NUMERIC = frozenset({"failures", "successes", "distinct", "per_minute"})


def _number(column: str, text: str) -> object:
    """A numeric column's cell as a number (json/yaml keep the type); others as text."""
    if column not in _NUMERIC or not text:
        return text
    return float(text) if "." in text else int(text)


def _t(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if hasattr(value, "strftime") else "-"


def write_text(report: object, out: TextIO, top: int) -> None:
    from stackwatch.api.analytics import KeystoneReport
    from stackwatch.api.analytics import top as top_keys

    assert isinstance(report, KeystoneReport)
    start = _t(report.since) if report.since else "the beginning"
    span = f"{start} to {_t(report.until) if report.until else 'the end'}"
    out.write(
        f"Keystone logins, {span}: {report.total} attempts, {report.failures} failed, "
        f"{report.successes} succeeded, {len(report.ips)} source IPs, {len(report.accounts)} accounts\n"
    )
    if report.restricted:
        out.write(f"restricted to: {', '.join(report.restricted)}\n")
    out.write("\nFailures by source IP\n")
    out.write(
        f"{'IP':<40} {'FAILED':>6} {'OK':>4} {'ACCTS':>5} {'/MIN':>6}  {'FIRST SEEN':<19}  "
        f"{'LAST SEEN':<19}  PATTERN / ACCOUNTS\n"
    )
    for s in [s for s in report.ips if s.failures][:top]:
        accounts = ", ".join(top_keys(s.accounts, 3))
        out.write(
            f"{s.ip:<40} {s.failures:>6} {s.successes:>4} {len(s.accounts):>5} {s.per_minute:>6}  "
            f"{_t(s.first):<19}  {_t(s.last):<19}  {s.classification or '-'}  {accounts}\n"
        )
    out.write("\nFailures by account (* = privileged)\n")
    out.write(
        f"{'ACCOUNT':<32} {'FAILED':>6} {'OK':>4} {'IPS':>4} {'PWDS':>4} {'/MIN':>6}  {'FIRST SEEN':<19}  "
        f"{'LAST SEEN':<19}  PATTERN\n"
    )
    for a in [a for a in report.accounts if a.failures][:top]:
        name = ("* " if a.privileged else "  ") + a.account
        out.write(
            f"{name:<32} {a.failures:>6} {a.successes:>4} {len(a.ips):>4} {a.password_hashes:>4} "
            f"{a.per_minute:>6}  {_t(a.first):<19}  {_t(a.last):<19}  {a.classification or '-'}\n"
        )
    targeted = [a for a in report.accounts if a.classification in ("targeted", "brute_force")]
    if targeted:
        out.write(
            "\nTargeted accounts: "
            + ", ".join(f"{a.account} ({a.failures} failures from {len(a.ips)} IPs)" for a in targeted)
            + "\n"
        )
