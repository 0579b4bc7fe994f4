"""A stored row <-> its record's exact bytes (record format 2), apart from any database.

The row is in ``rows.EVENT_COLUMNS`` order; ``host``/``service`` are what the row's source
names. Every backend builds a block's records with ``record_bytes`` and reads events back
with ``record_event``, so a record means the same in the embedded and the shared store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import orjson

from stackwatch.core.event import Event
from stackwatch.store.chain import MAGIC, RECORD_HEAD, record_parts
from stackwatch.store.rows import Row, clean_row, fields_event

NORM_MESSAGE: Final = 18  # index of message in the normalized array (record_ledger.NORMALIZED_FIELDS)


def record_bytes(row: Row, host: str, service: str) -> bytes:
    """The canonical record bytes of a row (EVENT_COLUMNS order) from ``host``/``service``."""
    norm = orjson.dumps((row[1], host, service, *row[4:21], row[23]))
    o = row[22].encode()
    raw = row[21]
    return RECORD_HEAD.pack(MAGIC, row[0], row[2], len(raw), len(norm), len(o)) + raw + norm + o


def stored_record(row: Row, names: Mapping[int, tuple[str, str]]) -> tuple[Row, bytes]:
    """The row as it is stored and its record bytes (``names``: source id -> host, service). A
    row whose record cannot be encoded (lone surrogates, attrs JSON refuses) is cleaned first:
    the stored row and its record then say the same."""
    try:
        return row, record_bytes(row, *names[row[3]])
    except (orjson.JSONEncodeError, UnicodeEncodeError, TypeError):
        row = clean_row(row)
        return row, record_bytes(row, *names[row[3]])


def record_event(record: bytes) -> tuple[int, Event]:
    """(seq, Event) of a record's bytes: what ``row_event`` makes of ``record_row``'s row, built
    straight from the normalized array (no row tuple in between)."""
    seq, raw, normalized, received, origin = record_parts(record)
    return seq, fields_event(orjson.loads(normalized), received, raw, origin)


def record_row(record: bytes) -> tuple[int, Row, str, str]:
    """(seq, row in EVENT_COLUMNS order with no source, host, service) of a record's bytes: the
    row the writer stored it from (a standby rebuilds its narrow rows this way)."""
    seq, raw, normalized, received, origin = record_parts(record)
    norm = orjson.loads(normalized)
    row = (seq, norm[0], received, None, *norm[3:20], raw, origin, norm[20])
    return seq, row, str(norm[1]), str(norm[2])


def record_message(record: bytes) -> tuple[int, str]:
    seq, _, normalized, _, _ = record_parts(record)
    return seq, str(orjson.loads(normalized)[NORM_MESSAGE])
