"""What the bridge did to the simulator: the evidence for idempotency and rate-limit claims.

Counts successful creates per sellerFulfillmentOrderId (exactly one per order proves no double
submission), every call and response status per operation, call rates measured on the rate
clock (the real-time clock Amazon's limits are defined on), and warnings: requests Amazon would
answer but not as the client meant (e.g. `queryStartDate` sent with a `nextToken`).
"""

from __future__ import annotations

import bisect
import math
import threading
from collections import Counter, defaultdict
from typing import Any


class Ledger:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._creates: Counter[str] = Counter()
        self._call_times: defaultdict[str, list[float]] = defaultdict(list)
        self._statuses: defaultdict[str, Counter[int]] = defaultdict(Counter)
        self._warnings: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def record_warning(self, operation: str, text: str) -> None:
        with self._lock:
            self._warnings[operation][text] += 1

    def warnings(self, operation: str | None = None) -> int:
        """How many requests drew a warning (for one operation, or all)."""
        with self._lock:
            ops = [operation] if operation else list(self._warnings)
            return sum(sum(self._warnings[op].values()) for op in ops if op in self._warnings)

    def record_call(self, operation: str, at: float) -> None:
        with self._lock:
            bisect.insort(self._call_times[operation], at)

    def record_status(self, operation: str, status: int) -> None:
        with self._lock:
            self._statuses[operation][status] += 1

    def record_create(self, seller_fulfillment_order_id: str) -> None:
        with self._lock:
            self._creates[seller_fulfillment_order_id] += 1

    def creates(self, seller_fulfillment_order_id: str) -> int:
        with self._lock:
            return self._creates[seller_fulfillment_order_id]

    def calls(self, operation: str) -> int:
        with self._lock:
            return len(self._call_times.get(operation, ()))

    def statuses(self, operation: str) -> dict[int, int]:
        with self._lock:
            return dict(self._statuses.get(operation, {}))

    def throttled(self, operation: str | None = None) -> int:
        """Number of 429 answers (bucket empty or injected), for one operation or all."""
        with self._lock:
            ops = [operation] if operation else list(self._statuses)
            return sum(self._statuses[op][429] for op in ops if op in self._statuses)

    def max_calls_per_second(self, operation: str) -> int:
        """Most calls inside any half-open window [t, t+1s) of the rate clock."""
        with self._lock:
            return _max_in_window(self._call_times.get(operation, []), 1.0)

    def calls_per_second(self, operation: str) -> list[int]:
        """Calls in consecutive whole seconds, from the second of the first call to the last."""
        with self._lock:
            return _per_second(self._call_times.get(operation, []))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            ops = sorted(set(self._call_times) | set(self._statuses))
            return {
                "creates": dict(self._creates),
                "calls": {op: len(self._call_times.get(op, ())) for op in ops},
                "maxCallsPerSecond": {op: _max_in_window(self._call_times.get(op, []), 1.0) for op in ops},
                "callsPerSecond": {op: _per_second(self._call_times.get(op, [])) for op in ops},
                "statuses": {
                    op: {str(s): n for s, n in sorted(self._statuses.get(op, {}).items())} for op in ops
                },
                "throttled": {op: self._statuses[op][429] for op in ops if op in self._statuses},
                "throttledTotal": sum(c[429] for c in self._statuses.values()),
                "warnings": {op: dict(texts) for op, texts in sorted(self._warnings.items())},
            }

    def reset(self) -> None:
        with self._lock:
            self._creates.clear()
            self._call_times.clear()
            self._statuses.clear()
            self._warnings.clear()


def _max_in_window(times: list[float], width: float) -> int:
    best = 0
    start = 0
    for end, t in enumerate(times):
        while t - times[start] >= width:
            start += 1
        best = max(best, end - start + 1)
    return best


def _per_second(times: list[float]) -> list[int]:
    if not times:
        return []
    first = math.floor(times[0])
    counts = [0] * (math.floor(times[-1]) - first + 1)
    for t in times:
        counts[math.floor(t) - first] += 1
    return counts
