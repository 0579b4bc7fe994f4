"""Records a source's decoder failed on, kept as ``unparsed`` events rather than lost.

A decoder bug must neither stop the pipeline nor lose what the source took: the source may have
moved its position past the records already (a file's offset, RELP/AMQP acknowledgements
pending), so each record of the failed turn is kept as an unparsed event with its text as raw,
flagged ``malformed`` with the reason, stored (or published) and counted like any record; the
source's checkpoint then moves past it only once it is committed (serve) or confirmed (a
collector)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final

from stackwatch.core.event import Event

MAX_MESSAGE: Final = 4096
MAX_REASON: Final = 300


def malformed_events(records: Iterable[Any], origin: str, host: str, reason: str, first: int,
                     max_raw: int) -> list[Event]:
    """One unparsed event per record a decoder failed on; refs ``<origin>:<n>`` from ``first``
    (a counter of this run: not a stable record identity), raw text cut to ``max_raw``
    characters (flagged ``truncated`` with the original length)."""
    out = []
    for n, record in enumerate(records, first):
        text = record.text if isinstance(record.text, str) else repr(record.text)
        stamp = datetime.fromtimestamp(record.received, UTC)
        attrs: dict[str, Any] = {"reason": reason[:MAX_REASON], "malformed": True}
        if len(text) > max_raw:
            attrs.update(truncated=True, original_chars=len(text))
            text = text[:max_raw]
        out.append(Event(time=stamp, received=stamp, host=record.peer or host, kind="unparsed",
                         message=text[:MAX_MESSAGE], attrs=attrs, raw=text, origin=origin,
                         ref=f"{origin}:{n}"))
    return out
