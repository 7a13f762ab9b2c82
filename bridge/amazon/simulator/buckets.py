"""Token buckets, Amazon's usage-plan model: refill at `rate` per second, hold at most `burst`.

Buckets run on the *rate* clock, which is separate from the fulfilment clock on purpose: the
demo speeds fulfilment up, but Amazon's rate limits stay in real seconds, and the bridge's limiter
must be proven against real seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from bridge.clock import Clock

from .config import OperationLimit


class TokenBucket:
    """Not thread-safe by itself; `RateLimiter` serialises access."""

    def __init__(self, limit: OperationLimit, now: float) -> None:
        self.rate = float(limit.rate)
        self.burst = float(limit.burst)
        self.tokens = float(limit.burst)
        self.updated = now

    def try_take(self, now: float) -> bool:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class RateLimiter:
    """One bucket per (selling partner + application, operation), created full on first use."""

    def __init__(self, clock: Clock, limit_for: Callable[[str], OperationLimit]) -> None:
        self._clock = clock
        self._limit_for = limit_for
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def try_acquire(self, key: str, operation: str) -> bool:
        with self._lock:
            now = self._clock.monotonic()
            bucket = self._buckets.get((key, operation))
            if bucket is None:
                bucket = self._buckets[(key, operation)] = TokenBucket(self._limit_for(operation), now)
            return bucket.try_take(now)

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
