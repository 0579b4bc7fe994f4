"""Which failures of a partition's commit are worth retrying.

An analyzer keeps a partition's batches unacknowledged while its commit fails. Retrying is right
while the database is away (a PostgreSQL restart or failover, a lost connection, a lock held a
while): it comes back and the same commit succeeds. Anything else (a batch the store refuses, a
constraint, a bug) fails the same way every time: retried forever it stalls the partition in
silence. Such an error, or a transient one lasting past the analyzer's stall limit, makes the
analyzer give the partition up (cluster/analyzer.py ``_give_up``).

The store wraps database errors in ``StoreError`` (often ``from None``, which keeps the original
as ``__context__``): the whole chain is looked at.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

# SQLSTATE classes and codes of a database that is away or busy, not of a refused statement:
# 08 connection exception, 57P01..57P05 admin/crash shutdown, cannot connect now, idle timeouts,
# 53 insufficient resources (too many connections, disk full: fixed by an operator, then retried),
# 40001/40P01 serialization failure and deadlock, 55P03 lock not available, 58 system errors (I/O).
_TRANSIENT_CLASSES = ("08", "53", "58")
_TRANSIENT_CODES = frozenset({"57P01", "57P02", "57P03", "57P04", "57P05", "40001", "40P01", "55P03"})


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def transient(exc: BaseException) -> bool:
    """Whether a commit failing with ``exc`` may succeed when tried again unchanged."""
    for error in _chain(exc):
        if isinstance(error, ConnectionError | TimeoutError):
            return True
        code = getattr(error, "sqlstate", None)
        if isinstance(code, str):
            return code in _TRANSIENT_CODES or code[:2] in _TRANSIENT_CLASSES
        if _psycopg_connection_error(error):  # no SQLSTATE: the connection itself failed
            return True
        if isinstance(error, sqlite3.OperationalError):
            text = str(error).lower()
            return "locked" in text or "busy" in text or "disk i/o" in text
    return False


def _psycopg_connection_error(error: BaseException) -> bool:
    try:
        import psycopg
    except ImportError:  # the PostgreSQL backend is optional
        return False
    return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)
