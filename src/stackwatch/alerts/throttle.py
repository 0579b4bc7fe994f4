"""Throttling notifications: new and resolved alerts always go out; an alert that keeps
firing is re-sent at most every ``update_interval`` per sink; an acknowledged alert's
updates are not sent (someone is on it); and no sink sends more than ``max_per_minute``."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_TRACKED = 100_000


class Throttle:
    def __init__(
        self, update_interval: float, max_per_minute: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.update_interval = update_interval
        self.max_per_minute = max_per_minute
        self.clock = clock
        self._last: OrderedDict[tuple[str, str, str], float] = OrderedDict()
        self._sent: dict[str, deque[float]] = {}

    def allow(self, sink: str, rule: str, key: str, change: str, status: str = "open") -> bool:
        """Whether ``sink`` should get this change now (records it when allowed)."""
        now = self.clock()
        ident = (sink, rule, key)
        if change == "update":
            if status == "acknowledged":
                return False
            last = self._last.get(ident)
            if last is not None and now - last < self.update_interval:
                return False
        window = self._sent.setdefault(sink, deque())
        while window and now - window[0] >= 60.0:
            window.popleft()
        if self.max_per_minute and len(window) >= self.max_per_minute:
            return False
        window.append(now)
        self._last[ident] = now
        self._last.move_to_end(ident)
        if len(self._last) > MAX_TRACKED:
            self._last.popitem(last=False)
        return True
