"""Login rate limiting: failed attempts per client address and per account, in a sliding
window. In memory and per process: a restart forgets, which is acceptable for a limiter
whose job is to make online guessing slow (the failures themselves are in the store)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from stackwatch.api.settings import LoginRate

MAX_KEYS = 100_000  # bound memory under a flood of distinct names or addresses


class LoginLimiter:
    def __init__(self, rate: LoginRate, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, ip: str, user: str) -> float:
        """Seconds until a login from ``ip`` for ``user`` may be tried again (0: now)."""
        now = self._clock()
        with self._lock:
            waits = [
                self._wait(f"ip:{ip}", self.rate.per_ip, now),
                self._wait(f"user:{user.lower()}", self.rate.per_user, now),
            ]
        return max(waits)

    def failed(self, ip: str, user: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) > MAX_KEYS:
                self._prune(now)
            for key in (f"ip:{ip}", f"user:{user.lower()}"):
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, ip: str, user: str) -> None:
        """A good password clears the account's count (not the address's: one address may
        hold one valid account and spray the others)."""
        with self._lock:
            self._failures.pop(f"user:{user.lower()}", None)

    def _wait(self, key: str, limit: int, now: float) -> float:
        times = self._failures.get(key)
        if not times:
            return 0.0
        while times and now - times[0] >= self.rate.window:
            times.popleft()
        if len(times) < limit:
            return 0.0
        return self.rate.window - (now - times[-limit])

    def _prune(self, now: float) -> None:
        for key in [k for k, t in self._failures.items() if not t or now - t[-1] >= self.rate.window]:
            del self._failures[key]
