"""Record format v2's append hot path: events -> (narrow row, record bytes, message) in one pass.

A format 2 record is stored twice over: its exact bytes in a block (``chain`` record bytes:
raw line, the normalized fields as a JSON array, received time, origin) and a narrow row in
``events`` (the columns searches filter, count and facet on). Building the 24-column row
tuple first and encoding the record bytes from it read every field twice and built a tuple
per event that nothing kept (measured 2.1 + 1.1 µs a record of 21 µs for the whole store,
README "Against the targets"). ``encode`` reads each event's fields once and builds only
what is stored. The record bytes are byte for byte those of ``record_bytes(row, host,
service)`` (same JSON array, same header): blocks, digests and every proof are unchanged.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Final

import orjson

from stackwatch.core.event import Event
from stackwatch.store.chain import MAGIC, RECORD_HEAD
from stackwatch.store.integrity.records import record_bytes, stored_record  # noqa: F401 - tests import record_bytes here
from stackwatch.store.rows import EPOCH, EVENT_COLUMNS, Row

_US: Final = timedelta(microseconds=1)
KEPT: Final = (
    "seq", "time", "received", "source", "severity", "kind", "action", "outcome",
    "init_name", "init_id", "init_project",
    "init_domain",  # a tenant's scope matches keystone failures by user name *and* domain
    "init_ip", "target_id", "target_name", "request_id",
)
"""The narrow row's columns, in EVENT_COLUMNS order (so ``time`` and ``source`` keep their
places for the rollup's fold)."""
NARROW_COLUMNS: Final = tuple(c for c in EVENT_COLUMNS if c in KEPT)
_PICK: Final = tuple(EVENT_COLUMNS.index(c) for c in NARROW_COLUMNS)
_MESSAGE: Final = EVENT_COLUMNS.index("message")


def _insert_narrow() -> str:
    # The wide columns get '' (x'' for raw): a byte each in the row header, nothing bound.
    values = ["?" if c in KEPT else ("x''" if c == "raw" else "''") for c in EVENT_COLUMNS]
    return f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join(values)})"  # noqa: S608


INSERT_NARROW: Final = _insert_narrow()

Encoded = tuple[list[Row], list[bytes], list[str]]
"""(narrow rows, record bytes, messages), one of each per event, in seq order."""


def narrow_row(row: Row) -> Row:
    """The narrow row of a full row."""
    return tuple(row[i] for i in _PICK)


def from_rows(rows: Sequence[Row], names: dict[int, tuple[str, str]]) -> Encoded:
    """What ``encode`` gives, from full rows (the careful path, the outbox's admin events):
    a row whose record cannot be encoded is cleaned first (lone surrogates, odd attrs), as
    the stored row is."""
    narrow: list[Row] = []
    records: list[bytes] = []
    messages: list[str] = []
    for row in rows:
        r, rec = stored_record(row, names)
        narrow.append(narrow_row(r))
        records.append(rec)
        messages.append(r[_MESSAGE])
    return narrow, records, messages


class NarrowEncoder:
    """Events -> ``Encoded``, numbering from a seq and naming each (host, service) by its
    source id (``source_id`` allocates a new one, as ``rows.RowBuilder``'s does)."""

    def __init__(self, sources: dict[tuple[str, str], int], names: dict[int, tuple[str, str]],
                 source_id: Callable[[str, str], int],
                 careful: Callable[[Sequence[Event], int], list[Row]]) -> None:
        self._sources = sources
        self._names = names
        self._new_source = source_id
        self._careful = careful

    def encode(self, events: Sequence[Event], first_seq: int) -> Encoded:
        try:
            return self._fast(events, first_seq)
        except (TypeError, ValueError, AttributeError, KeyError, struct.error, orjson.JSONEncodeError):
            # naive datetime, odd attrs, initiator=None, text SQLite or JSON cannot hold (lone
            # surrogates), out-of-range numbers...: the careful row path, which handles them all
            return from_rows(self._careful(events, first_seq), self._names)

    def _fast(self, events: Sequence[Event], first_seq: int) -> Encoded:
        dumps = orjson.dumps
        option = orjson.OPT_NON_STR_KEYS
        epoch, us = EPOCH, _US
        pack, magic = RECORD_HEAD.pack, MAGIC
        sources, names = self._sources, self._names
        narrow: list[Row] = []
        records: list[bytes] = []
        messages: list[str] = []
        add_row, add_record, add_message = narrow.append, records.append, messages.append
        seq = first_seq
        for e in events:
            source = sources.get((e.host, e.service))
            if source is None:
                source = self._new_source(e.host, e.service)
            host, service = names[source]  # as stored, which is what the record bytes hold
            i = e.initiator
            t = e.target
            a = e.attrs
            time = (e.time - epoch) // us
            received = (e.received - epoch) // us
            severity, kind, message = e.severity, e.kind, e.message
            action, outcome = e.action or "", e.outcome or ""
            i_name, i_id, i_project = i.name or "", i.id or "", i.project or ""
            i_domain, i_ip = i.domain or "", i.source_ip or ""
            t_id, t_name = t.id or "", t.name or ""
            request_id = e.request_id or ""
            raw = e.raw.encode("utf-8", "surrogateescape")
            norm = dumps((time, host, service, severity, kind, action, outcome, i_name, i_id, i_project,
                          i_domain, i_ip, i.user_agent or "", t.type or "", t_id, t_name, e.observer or "",
                          request_id, message, dumps(a, option=option).decode() if a else "{}", e.ref))
            o = e.origin.encode()
            add_record(pack(magic, seq, received, len(raw), len(norm), len(o)) + raw + norm + o)
            add_row((seq, time, received, source, severity, kind, action, outcome, i_name, i_id, i_project,
                     i_domain, i_ip, t_id, t_name, request_id))
            add_message(message)
            seq += 1
        return narrow, records, messages

