"""Parsing what users type into filters: times (ISO 8601 or "24h" back from the store's
newest event), optional strings, page sizes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

from fastapi import HTTPException

from stackwatch.api.stats import newest_event_time
from stackwatch.store.base import Store

_RELATIVE: Final = re.compile(r"^(\d+(?:\.\d+)?)\s*(m|h|d|w)$")
_UNITS: Final = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def store_now(store: Store) -> datetime:
    """The store's "now": its newest event time (an analyzed archive ends in the past), or
    the wall clock for an empty store."""
    return newest_event_time(store.source_stats()) or datetime.now(UTC)


def parse_time(value: str | None, now: datetime | None = None, *, name: str = "time") -> datetime | None:
    """ISO 8601 (naive = UTC) or a span back from ``now`` such as ``30m``, ``24h``, ``7d``."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    match = _RELATIVE.match(text)
    if match:
        base = now or datetime.now(UTC)
        return base - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(400, f"{name}: use ISO 8601 (2026-03-02T08:00) or a span like 24h") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def opt(value: str | None) -> str | None:
    """Empty form fields mean "no filter"."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def parse_span(value: str, *, name: str = "duration") -> timedelta:
    """A span such as ``30m``, ``2h``, ``7d``, ``1w`` (forward, e.g. how long a silence lasts)."""
    match = _RELATIVE.match(value.strip())
    if not match or float(match.group(1)) <= 0:
        raise HTTPException(400, f"{name}: use a span like 30m, 2h, 7d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
