"""Points in time as operators write them: ``2026-12-01``, ``2026-12-01T08:30``, ``now``,
``now-1h``, ``-15m``. Relative points stay relative until ``resolve(now)``, so a saved
query (or a page left open with auto-refresh) keeps meaning "the last hour"."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_SPAN: Final = 100 * 366 * 86400
"""Longest relative span accepted (a century): larger ones overflow datetime arithmetic."""
_RELATIVE: Final = re.compile(r"^(?:now)?(?:-(\d{1,10})([smhdw]))?$")
_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class TimeSpecError(ValueError):
    """The text is not a point in time this module understands."""


@dataclass(frozen=True, slots=True)
class Instant:
    """A point in time: ``absolute`` (timezone-aware) or ``offset`` seconds before now.

    ``date_only`` marks a bare date (``2026-12-01``): as an upper bound it means the end of
    that day. ``text`` is what was written, kept to show the query back as typed."""

    text: str
    absolute: datetime | None = None
    offset: int = 0
    date_only: bool = False

    def resolve(self, now: datetime) -> datetime:
        """The start of this instant (``now - offset`` for a relative one)."""
        return self.absolute if self.absolute is not None else now - timedelta(seconds=self.offset)

    def resolve_end(self, now: datetime) -> datetime:
        """This instant as an inclusive upper bound: the end of the day for a bare date."""
        start = self.resolve(now)
        return start + timedelta(days=1) if self.date_only else start


def parse_instant(text: str) -> Instant:
    """``now``, ``now-<n><unit>``, ``-<n><unit>`` (units s m h d w), an ISO 8601 date or
    date-time (``T`` or a space between; naive means UTC). Raises TimeSpecError."""
    spec = text.strip()
    match = _RELATIVE.match(spec)
    if match and spec:  # the pattern matches only "now", "now-<n><unit>" and "-<n><unit>"
        seconds = int(match.group(1)) * UNITS[match.group(2)] if match.group(1) else 0
        if seconds > MAX_SPAN:
            raise TimeSpecError(f"{spec!r} reaches back more than a century")
        return Instant(text=spec, offset=seconds)
    if _DATE.match(spec):
        try:
            day = date.fromisoformat(spec)
        except ValueError:
            raise TimeSpecError(f"{spec!r} is not a calendar date") from None
        return Instant(text=spec, absolute=datetime(day.year, day.month, day.day, tzinfo=UTC), date_only=True)
    if len(spec) >= 16 and spec[:4].isdigit():
        try:
            moment = datetime.fromisoformat(spec.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            pass
        else:
            return Instant(text=spec, absolute=moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    raise TimeSpecError(f"{spec!r} is not a time: use 2026-12-01, 2026-12-01T08:30, now, now-1h or -15m")


def parse_span(text: str) -> int:
    """``15m``, ``24h``, ``7d`` as seconds (a relative range's length). Raises TimeSpecError."""
    match = re.fullmatch(r"(\d{1,10})([smhdw])", text.strip())
    if not match:
        raise TimeSpecError(f"{text!r} is not a span: use a number and a unit, like 15m, 24h or 7d")
    seconds = int(match.group(1)) * UNITS[match.group(2)]
    if not 0 < seconds <= MAX_SPAN:
        raise TimeSpecError(f"{text!r} must be longer than nothing and at most a century")
    return seconds
