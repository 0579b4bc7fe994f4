"""Parsing what users type into filters: times (ISO 8601 or "24h" back from the store's
newest event), optional strings, page sizes."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import HTTPException

from stackwatch.api.timespan import parse_time_text, span, store_now

__all__ = ["opt", "parse_span", "parse_time", "store_now"]


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


def parse_span(value: str, *, name: str = "duration") -> timedelta:
    """A span such as ``30m``, ``2h``, ``7d``, ``1w`` (forward, e.g. how long a silence lasts)."""
    forward = span(value)
    if forward is None or forward <= timedelta(0):
        raise HTTPException(400, f"{name}: use a span like 30m, 2h, 7d")
    return forward
