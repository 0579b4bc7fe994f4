"""Times as users type them (ISO 8601, or a span such as ``24h`` back from the store's newest
event), read without the web framework: the API and the command line share them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

from stackwatch.api.stats import newest_event_time
from stackwatch.core.types import StoreReads

_RELATIVE: Final = re.compile(r"^(\d+(?:\.\d+)?)\s*(m|h|d|w)$")
_UNITS: Final = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def store_now(store: StoreReads) -> datetime:
    """The store's "now": its newest event time (an analyzed archive ends in the past), or
    the wall clock for an empty store."""
    return newest_event_time(store.source_stats()) or datetime.now(UTC)


def span(text: str) -> timedelta | None:
    """``30m``, ``2h``, ``7d``, ``1w`` as a timedelta; None when ``text`` is no such span."""
    match = _RELATIVE.match(text.strip())
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)]) if match else None


def parse_time_text(value: str | None, now: datetime | None = None, *, name: str = "time") -> datetime | None:
    """ISO 8601 (naive = UTC) or a span back from ``now`` such as ``30m``, ``24h``, ``7d``;
    ValueError (naming ``name``) for anything else."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    back = span(text)
    if back is not None:
        return (now or datetime.now(UTC)) - back
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name}: use ISO 8601 (2026-03-02T08:00) or a span like 24h") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
