"""A stored row <-> its record's exact bytes (record format 2), apart from any database.

The row is in ``rows.EVENT_COLUMNS`` order; ``host``/``service`` are what the row's source
names. Every backend builds a block's records with ``record_bytes`` and reads events back
with ``record_event``, so a record means the same in the embedded and the shared store.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Final

import orjson

from stackwatch.core.event import NO_INITIATOR, NO_TARGET, Event, Initiator, Target
from stackwatch.store.chain import MAGIC, RECORD_HEAD, record_parts
from stackwatch.store.rows import EPOCH, Row, clean_row

NORM_MESSAGE: Final = 18  # index of message in the normalized array (ledger.NORMALIZED_FIELDS)


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
    norm = orjson.loads(normalized)
    time, ref = norm[0], norm[20]
    (host, service, severity, kind, action, outcome, i_name, i_id, i_project, i_domain, i_ip, i_agent,
     t_type, t_id, t_name, observer, request_id, message, attrs) = norm[1:20]
    initiator = NO_INITIATOR
    if i_name or i_id or i_project or i_domain or i_ip or i_agent:
        initiator = Initiator(name=i_name or None, id=i_id or None, project=i_project or None,
                              domain=i_domain or None, source_ip=i_ip or None, user_agent=i_agent or None)
    time_dt = EPOCH + timedelta(0, 0, time)
    received_dt = EPOCH + timedelta(0, 0, received)
    attrs = orjson.loads(attrs) if attrs != "{}" else {}
    text = raw.decode("utf-8", "surrogateescape")
    # Two calls: CPython compiles a call with more than 15 keyword arguments to a dict and
    # CALL_FUNCTION_EX (~1 µs more than a vectorcall here). Most events have no target and
    # no observer, and those two fields' defaults are what the row would give them.
    if observer or t_type or t_id or t_name:
        return seq, Event(
            time=time_dt, received=received_dt, host=host, service=service, severity=severity,
            message=message, kind=kind, action=action or None, outcome=outcome or None,
            initiator=initiator, target=Target(type=t_type or None, id=t_id or None, name=t_name or None)
            if t_type or t_id or t_name else NO_TARGET, observer=observer or None,
            request_id=request_id or None, attrs=attrs, raw=text, origin=origin, ref=ref,
        )
    return seq, Event(
        time=time_dt, received=received_dt, host=host, service=service, severity=severity,
        message=message, kind=kind, action=action or None, outcome=outcome or None,
        initiator=initiator, request_id=request_id or None, attrs=attrs, raw=text, origin=origin, ref=ref,
    )


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
