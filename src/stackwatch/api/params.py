"""Parsing what users type into filters: times (ISO 8601 or "24h" back from the store's
newest event), optional strings, page sizes."""

from __future__ import annotations

from datetime import datetime

from fastapi import HTTPException

from stackwatch.api.timespan import parse_time_text, store_now

__all__ = ["opt", "parse_time", "store_now"]


def parse_time(value: str | None, now: datetime | None = None, *, name: str = "time") -> datetime | None:
    """``timespan.parse_time_text`` for a request: a bad value is a 400."""
    try:
        return parse_time_text(value, now, name=name)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None


def opt(value: str | None) -> str | None:
    """Empty form fields mean "no filter"."""
    if value is None:
        return None
    value = value.strip()
    return value or None
