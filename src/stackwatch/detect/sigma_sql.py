"""Sigma over SQL, the way Zircolite does it: events flattened into an SQLite table and each
rule converted to a query by pySigma-backend-sqlite (the `sigma-sql` extra).

stackwatch evaluates Sigma in-process (detect/sigma.py); this is the reference it is checked
against (tests/detect/test_sigma.py: equal hit counts) and measured against
(benchmarks/sigma_bench.py), and a way to hunt retroactively over stored events. The table
and the pipeline are one definition so the two can never drift apart.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from typing import Any, Final

from stackwatch.core.event import Event

COLUMNS: Final = ("kind", "action", "service", "records", "exe", "cmdline", "unit", "fulltext",
                  *(f"a{i}" for i in range(8)))
"""The flat table's columns (TEXT COLLATE NOCASE, as Zircolite declares them)."""
# Fixed statements built once from the constant column list above (no outside input).
_CREATE: Final = f"CREATE TABLE logs ({', '.join(f'{c} TEXT COLLATE NOCASE' for c in COLUMNS)})"
_INSERT: Final = f"INSERT INTO logs VALUES ({', '.join('?' for _ in COLUMNS)})"  # noqa: S608


def sql_pipeline() -> Any:
    """Logsources become column conditions, Sigma fields become columns. Sigma ``type`` (any
    auditd record type) becomes a LIKE on ``'|SYSCALL|EXECVE|'``."""
    from sigma.processing.conditions import IncludeFieldCondition, LogsourceCondition
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import (
        AddConditionTransformation,
        FieldMappingTransformation,
        ReplaceStringTransformation,
    )

    def item(transformation: Any, **conditions: Any) -> ProcessingItem:
        return ProcessingItem(transformation=transformation, **conditions)

    return ProcessingPipeline(name="stackwatch-sql", priority=20, items=[
        item(AddConditionTransformation({"kind": "auditd"}),
             rule_conditions=[LogsourceCondition(product="linux", service="auditd")]),
        item(AddConditionTransformation({"kind": "auditd", "action": "process.exec"}),
             rule_conditions=[LogsourceCondition(product="linux", category="process_creation")]),
        item(AddConditionTransformation({"service": "sshd"}),
             rule_conditions=[LogsourceCondition(product="linux", service="sshd")]),
        item(ReplaceStringTransformation(regex="^(.*)$", replacement="*|\\1|*"),
             field_name_conditions=[IncludeFieldCondition(fields=["type"])]),
        item(FieldMappingTransformation({"type": "records", "Image": "exe", "CommandLine": "cmdline"})),
    ])


def event_row(event: Event) -> tuple[object, ...]:
    """One event as a row of COLUMNS (keywords search ``fulltext``: raw, plus the message when
    raw does not contain it, as the in-process evaluator does)."""
    attrs = event.attrs
    argv = attrs.get("argv")
    raw, message = event.raw, event.message
    text = raw if not message or message in raw else f"{raw}\n{message}"
    values: dict[str, object] = {
        "kind": event.kind, "action": event.action, "service": event.service,
        "records": "|" + "|".join(attrs["records"]) + "|" if "records" in attrs else None,
        "exe": attrs.get("exe"), "cmdline": attrs.get("cmdline"), "unit": attrs.get("unit"), "fulltext": text,
    }
    for i in range(8):
        values[f"a{i}"] = (argv[i] if i < len(argv) else None) if argv is not None else attrs.get(f"a{i}")
    return tuple(values[column] for column in COLUMNS)


def _regexp(pattern: str, value: object) -> bool:
    return value is not None and re.search(pattern, str(value)) is not None


def load_table(events: Iterable[Event]) -> sqlite3.Connection:
    """A fresh in-memory table of ``events`` with the ``regexp`` function SQLite lacks."""
    conn = sqlite3.connect(":memory:")
    conn.create_function("regexp", 2, _regexp, deterministic=True)
    conn.execute(_CREATE)
    conn.executemany(_INSERT, map(event_row, events))
    return conn


def backend() -> Any:
    from sigma.backends.sqlite import sqliteBackend

    return sqliteBackend(sql_pipeline(), fulltext_field="fulltext")


def count_hits(conn: sqlite3.Connection, query: str) -> int:
    return int(conn.execute(query.replace("SELECT *", "SELECT COUNT(*)", 1)).fetchone()[0])
