"""Records a collector keeps as ``unparsed`` events when the normal path fails on them.

Two failures must not lose records nor stop the collector (which would read the same records
again after its restart, a crash loop on log content):

* a source's ``decode`` raising (a decoder bug): ``sources/undecoded.py`` (serve keeps them
  the same way), published and the source's checkpoint moved past them once confirmed;
* an event the wire format refuses even alone (its parsed fields encode past
  ``wire.MAX_BATCH_BYTES``): it travels as its raw text, truncated to ``MAX_RAW`` characters,
  flagged ``wire_refused`` (and ``truncated`` with the original length when cut).
"""

from __future__ import annotations

from typing import Any, Final

from stackwatch.cluster.wire import MAX_BATCH_BYTES
from stackwatch.core.event import Event
from stackwatch.sources.undecoded import MAX_MESSAGE, MAX_REASON

MAX_RAW: Final = MAX_BATCH_BYTES // 8
"""Characters of raw text kept: at most 4 UTF-8 bytes each, so a salvaged event alone encodes
to half the wire's limit at worst."""


def wire_refused(event: Event, reason: str) -> Event:
    """``event`` reduced to its raw text (truncated to MAX_RAW) and where it came from."""
    raw = event.raw
    attrs: dict[str, Any] = {"reason": reason[:MAX_REASON], "wire_refused": True, "parsed_kind": event.kind}
    if len(raw) > MAX_RAW:
        attrs.update(truncated=True, original_chars=len(raw))
        raw = raw[:MAX_RAW]
    return Event(time=event.time, received=event.received, host=event.host[:255],
                 service=event.service[:255], severity=event.severity, kind="unparsed",
                 message=(raw or event.message)[:MAX_MESSAGE], attrs=attrs, raw=raw,
                 origin=event.origin[:255], ref=event.ref[:255])


def is_salvaged(event: Event) -> bool:
    return event.kind == "unparsed" and bool(event.attrs.get("wire_refused"))
