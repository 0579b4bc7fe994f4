"""Events <-> flat row tuples (the SQLite events table's column order).

The append path is the hot path of the whole pipeline, so ``RowBuilder.rows`` builds plain
tuples in one tight loop and only falls back to a careful per-row path when a row has
something unusual (a naive datetime, odd attrs). Measured here with Python 3.11's sqlite3:
binding ``None`` or ``bytes`` goes through the adapter lookup and costs ~10x a ``str`` or
``bytearray``; so absent fields are ``''`` and raw is a ``bytearray``.

Times are integer microseconds since the Unix epoch, UTC: exact (no float rounding),
compact and ordered. ``raw`` is stored as bytes, exactly what was read. The other text
columns are text: lone surrogates (undecodable input bytes a parser copied out of ``raw``)
cannot be stored as text and become U+FFFD; ``raw`` keeps the original bytes. ``attrs`` is
JSON, so it round-trips JSON's types (tuples come back as lists, datetimes as ISO strings,
non-string keys as strings). An optional field set to ``''`` comes back as ``None``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from typing import Any, Final

import orjson

from stackwatch.core.event import NO_INITIATOR, NO_TARGET, Event, Initiator, Target
from stackwatch.store.chain import LEAF_HEAD, MAGIC

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)

# The events columns in row order (the table's order, without the reserved `chain`).
EVENT_COLUMNS: Final = (
    "seq", "time", "received", "source", "severity", "kind", "action", "outcome",
    "init_name", "init_id", "init_project", "init_domain", "init_ip", "init_agent",
    "target_type", "target_id", "target_name", "observer", "request_id",
    "message", "attrs", "raw", "origin", "ref",
)
_RAW: Final = EVENT_COLUMNS.index("raw")

Row = tuple[Any, ...]


def to_micros(value: datetime) -> int:
    """Microseconds since the epoch (UTC); a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - EPOCH) // _US


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(0, 0, value)  # positional: a third faster than microseconds=


def raw_bytes(raw: str) -> bytes:
    """``Event.raw_bytes()``, also for a str holding surrogates surrogateescape never makes
    (e.g. from a JSON ``\\ud800`` escape): those are kept in their UTF-8-style encoding."""
    try:
        return raw.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return raw.encode("utf-8", "surrogatepass")


def clean_text(value: str) -> str:
    """A string SQLite can store as text: each undecodable byte becomes U+FFFD."""
    return raw_bytes(value).decode("utf-8", "replace") if value else value


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def _clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(k) if isinstance(k, str) else k: _clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_json(v) for v in value]
    return value


def encode_json(value: dict[str, Any]) -> str:
    """A dict as JSON text (``{}`` when empty); never raises."""
    if not value:
        return "{}"
    option = orjson.OPT_NON_STR_KEYS
    try:
        return orjson.dumps(value, default=_json_default, option=option).decode()
    except (TypeError, orjson.JSONEncodeError):
        try:
            return orjson.dumps(_clean_json(value), default=_json_default, option=option).decode()
        except (TypeError, orjson.JSONEncodeError):  # e.g. nested too deep: keep what can be said
            return orjson.dumps({"_unencodable": clean_text(repr(value)[:4096])}).decode()


class RowBuilder:
    """Turns events into row tuples, naming each (host, service) by a small source id.

    ``source_id(host, service)`` is called for a pair not yet in ``sources`` and must return
    a new id (the store's writer allocates them and records them on the next commit)."""

    def __init__(self, sources: dict[tuple[str, str], int],
                 source_id: Callable[[str, str], int]) -> None:
        self.sources = sources
        self._new_source = source_id

    def rows(self, events: Sequence[Event], first_seq: int) -> list[Row]:
        """Row tuples for ``events``, numbered from ``first_seq``."""
        try:
            return self._fast_rows(events, first_seq)
        except (TypeError, ValueError, AttributeError):  # naive datetime, odd attrs, initiator=None...
            return [self.careful_row(event, seq) for seq, event in enumerate(events, first_seq)]

    def _fast_rows(self, events: Sequence[Event], first_seq: int) -> list[Row]:
        dumps = orjson.dumps
        option = orjson.OPT_NON_STR_KEYS
        epoch = EPOCH
        us = _US
        sources = self.sources
        rows: list[Row] = []
        append = rows.append
        seq = first_seq
        for e in events:
            source = sources.get((e.host, e.service))
            if source is None:
                source = self._new_source(e.host, e.service)
            i = e.initiator
            t = e.target
            a = e.attrs
            append((
                seq, (e.time - epoch) // us, (e.received - epoch) // us, source, e.severity, e.kind,
                e.action or "", e.outcome or "", i.name or "", i.id or "", i.project or "", i.domain or "",
                i.source_ip or "", i.user_agent or "", t.type or "", t.id or "", t.name or "",
                e.observer or "", e.request_id or "", e.message,
                dumps(a, option=option).decode() if a else "{}",
                bytearray(e.raw, "utf-8", "surrogateescape"), e.origin, e.ref,
            ))
            seq += 1
        return rows

    def chained_rows(self, events: Sequence[Event], first_seq: int, head: bytes,
                     names: dict[int, tuple[str, str]]) -> tuple[list[Row], list[bytes], bytes] | None:
        """The append hot path in one pass: what ``rows`` then ``record_ledger.chain_batch`` give
        (rows with their chain hash, leaf hashes, new head), without building each row twice.
        None when any event needs the careful path or cleaning (the caller then takes those
        two steps, which handle everything)."""
        dumps = orjson.dumps
        option = orjson.OPT_NON_STR_KEYS
        epoch, us = EPOCH, _US
        pack, magic = LEAF_HEAD.pack, MAGIC
        sources = self.sources
        rows: list[Row] = []
        append = rows.append
        leaves: list[bytes] = []
        leaf = leaves.append
        h = head
        seq = first_seq
        try:
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
                severity, kind, message, origin, ref = e.severity, e.kind, e.message, e.origin, e.ref
                action, outcome = e.action or "", e.outcome or ""
                i_name, i_id, i_project = i.name or "", i.id or "", i.project or ""
                i_domain, i_ip, i_agent = i.domain or "", i.source_ip or "", i.user_agent or ""
                t_type, t_id, t_name = t.type or "", t.id or "", t.name or ""
                observer, request_id = e.observer or "", e.request_id or ""
                attrs = dumps(a, option=option).decode() if a else "{}"
                raw = bytearray(e.raw, "utf-8", "surrogateescape")
                norm = dumps((time, host, service, severity, kind, action, outcome, i_name, i_id, i_project,
                              i_domain, i_ip, i_agent, t_type, t_id, t_name, observer, request_id, message,
                              attrs, ref))
                o = origin.encode()
                lh = sha256(pack(b"\x00", magic, seq, received, len(raw), len(norm), len(o))
                            + raw + norm + o).digest()
                leaf(lh)
                h = sha256(h + lh).digest()
                append((seq, time, received, source, severity, kind, action, outcome, i_name, i_id, i_project,
                        i_domain, i_ip, i_agent, t_type, t_id, t_name, observer, request_id, message, attrs,
                        raw, origin, ref, bytearray(h)))
                seq += 1
        except (TypeError, ValueError, AttributeError, KeyError, struct.error):
            # naive datetime, odd attrs, initiator=None, text SQLite cannot store (lone surrogates
            # make orjson and str.encode fail), out-of-range numbers...
            return None
        return rows, leaves, h

    def careful_row(self, event: Event, seq: int) -> Row:
        """The slow, never-failing row builder."""
        key = (clean_text(event.host), clean_text(event.service))
        source = self.sources.get(key)
        if source is None:
            source = self._new_source(*key)
        i = event.initiator or NO_INITIATOR
        t = event.target or NO_TARGET
        row = (
            seq, to_micros(event.time), to_micros(event.received), source, event.severity, event.kind,
            event.action, event.outcome, i.name, i.id, i.project, i.domain, i.source_ip, i.user_agent,
            t.type, t.id, t.name, event.observer, event.request_id, event.message,
            encode_json(event.attrs or {}), bytearray(raw_bytes(event.raw)), event.origin, event.ref,
        )
        return clean_row(row)


def clean_row(row: Row) -> Row:
    """``row`` with every text value made storable (lone surrogates -> U+FFFD, None -> '')."""
    return tuple(
        v if isinstance(v, int | bytearray) else clean_text(v or "") if n != _RAW else v
        for n, v in enumerate(row)
    )


def source_stats(rows: Sequence[Sequence[Any]]) -> dict[int, list[int]]:
    """Per source id of rows in EVENT_COLUMNS order: [first time, last time, count, last
    received], what each backend folds into its sources' statistics with a batch."""
    stats: dict[int, list[int]] = {}
    for row in rows:
        time, received, source = row[1], row[2], row[3]
        seen = stats.get(source)
        if seen is None:
            stats[source] = [time, time, 1, received]
            continue
        if time < seen[0]:
            seen[0] = time
        elif time > seen[1]:
            seen[1] = time
        seen[2] += 1
        if received > seen[3]:
            seen[3] = received
    return stats


def row_event(row: Sequence[Any], host: str, service: str) -> Event:
    """The Event of a row in EVENT_COLUMNS order (``seq`` and ``source`` ignored here)."""
    return fields_event((row[1], host, service, *row[4:21], row[23]), row[2], row[21], row[22])


def fields_event(normalized: Sequence[Any], received: int, raw: bytes, origin: str) -> Event:
    """The Event of a stored event's fields as a row holds them (times in µs, '' for none, attrs
    as JSON, the raw bytes): what a row (``row_event``) and a record
    (``integrity.records.record_event``) both give back. ``normalized``: a record's normalized
    array (time, host, service, the row's columns from severity to attrs, ref)."""
    time, ref = normalized[0], normalized[20]
    (host, service, severity, kind, action, outcome, i_name, i_id, i_project, i_domain, i_ip, i_agent,
     t_type, t_id, t_name, observer, request_id, message, attrs) = normalized[1:20]
    initiator = NO_INITIATOR
    if i_name or i_id or i_project or i_domain or i_ip or i_agent:
        initiator = Initiator(name=i_name or None, id=i_id or None, project=i_project or None,
                              domain=i_domain or None, source_ip=i_ip or None, user_agent=i_agent or None)
    time_dt, received_dt = EPOCH + timedelta(0, 0, time), EPOCH + timedelta(0, 0, received)  # from_micros
    attrs_value = orjson.loads(attrs) if attrs != "{}" else {}
    text = bytes(raw).decode("utf-8", "surrogateescape")
    # Two calls: CPython compiles a call with more than 15 keyword arguments to a dict and
    # CALL_FUNCTION_EX (~1 µs more than a vectorcall here). Most events have no target and
    # no observer, and those two fields' defaults are what the row would give them.
    if observer or t_type or t_id or t_name:
        return Event(
            time=time_dt, received=received_dt, host=host, service=service, severity=severity,
            message=message, kind=kind, action=action or None, outcome=outcome or None, initiator=initiator,
            target=Target(type=t_type or None, id=t_id or None, name=t_name or None)
            if t_type or t_id or t_name else NO_TARGET,
            observer=observer or None, request_id=request_id or None, attrs=attrs_value, raw=text,
            origin=origin, ref=ref,
        )
    return Event(
        time=time_dt, received=received_dt, host=host, service=service, severity=severity,
        message=message, kind=kind, action=action or None, outcome=outcome or None, initiator=initiator,
        request_id=request_id or None, attrs=attrs_value, raw=text, origin=origin, ref=ref,
    )
