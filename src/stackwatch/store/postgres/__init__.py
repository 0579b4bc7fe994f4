"""The shared store on PostgreSQL (``postgresql://`` URLs): see ``store.PostgresStore``.

``open_store("postgresql://user@host/db", writer="analyzer-1")`` opens it; a process that
appends writes its own log (``ids``), any number of processes read and change alerts.
Modules: ``schema`` (tables), ``ledger_io`` (the integrity layer's LedgerIO), ``writer``
(blocks + COPY, one transaction per batch), ``search`` and ``text`` (queries, full text),
``alerts`` (shared alerts and silences), ``scope`` (tenants), ``verify`` (every writer's log).
"""

from __future__ import annotations

from typing import Any

from stackwatch.store.postgres.store import PostgresStore

__all__ = ["PostgresStore", "open_store"]


def open_store(url: str, **options: Any) -> PostgresStore:
    """Open (creating its tables when missing) the store at ``url``; ``schema`` may be given
    as ``schema`` (or ``schema_name``) option or ``?schema=`` URL parameter."""
    if "schema" in options:
        options["schema_name"] = options.pop("schema")
    return PostgresStore(url, **options)
