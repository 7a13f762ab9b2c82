"""Event counters: counted in memory where they happen, added to the database in batches.

Recording an event is a dictionary update under a lock (a few microseconds), never a database
write: the webhook path and the SP-API client stay as fast as before. A flusher thread per
process adds the accumulated increments to `metric_counters` every `BRIDGE_METRICS_FLUSH_S`
seconds in one short transaction, and once more when the process stops. Increments that could
not be written (database away) are kept for the next flush. A hard kill loses at most one
interval of counts; counters never go backwards, because the totals live in the database.

Histograms are stored as per-bucket counts (an observation increments only the first bucket that
holds it) plus a sum; the collector turns them into Prometheus' cumulative buckets.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from . import counters

log = logging.getLogger("bridge.metrics")

LabelSet = tuple[tuple[str, str], ...]
Key = tuple[str, LabelSet]


def bucket_label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


@dataclass
class Pending:
    """Increments (summed into the stored value) and maxima (the stored value only grows)."""

    sums: dict[Key, float] = field(default_factory=dict)
    maxes: dict[Key, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.sums or self.maxes)

    def merge(self, other: Pending) -> None:
        for key, value in other.sums.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        for key, value in other.maxes.items():
            self.maxes[key] = max(self.maxes.get(key, value), value)


class EventBuffer:
    """This process's not yet written increments. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending = Pending()

    def add(self, name: str, labels: Mapping[str, str], amount: float = 1.0) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            sums = self._pending.sums
            sums[key] = sums.get(key, 0.0) + amount

    def observe(self, name: str, labels: Mapping[str, str], value: float, buckets: tuple[float, ...]) -> None:
        """One histogram observation: its bucket (the first bound >= value, else +Inf) and the sum."""
        bound = next((b for b in buckets if value <= b), float("inf"))
        base = tuple(sorted(labels.items()))
        bucket_key = (f"{name}_bucket", tuple(sorted((*base, ("le", bucket_label(bound))))))
        sum_key = (f"{name}_sum", base)
        with self._lock:
            sums = self._pending.sums
            sums[bucket_key] = sums.get(bucket_key, 0.0) + 1.0
            sums[sum_key] = sums.get(sum_key, 0.0) + value

    def set_max(self, name: str, labels: Mapping[str, str], value: float) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            maxes = self._pending.maxes
            maxes[key] = max(maxes.get(key, value), value)

    def take(self) -> Pending:
        with self._lock:
            pending, self._pending = self._pending, Pending()
        return pending

    def put_back(self, pending: Pending) -> None:
        with self._lock:
            pending.merge(self._pending)
            self._pending = pending

    def reset(self) -> None:
        """Forget everything (a forked child: the parent flushes its own counts)."""
        self._lock = threading.Lock()
        self._pending = Pending()


BUFFER = EventBuffer()
_flush_lock = threading.Lock()
_failing = False


def flush(engine: Engine) -> bool:
    """Write this process's pending counts now. False (counts kept) when the database refused.

    Flushes are serialised, so when this returns every event recorded before the call is in the
    database, including any a concurrent background flush was writing.
    """
    global _failing
    with _flush_lock:
        pending = BUFFER.take()
        if not pending:
            return True
        try:
            counters.add(engine, pending.sums, pending.maxes)
        except Exception as exc:
            BUFFER.put_back(pending)
            if not _failing:
                log.warning(
                    "metrics: could not write event counters (%s); kept for the next flush",
                    type(exc).__name__,
                )
            _failing = True
            return False
        if _failing:
            log.info("metrics: event counters written again")
        _failing = False
        return True


class Flusher:
    """The background thread that flushes this process's counts every `interval_s` seconds."""

    def __init__(self, engine: Engine, interval_s: float) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-flusher", daemon=True)

    def start(self) -> Flusher:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            flush(self.engine)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)


_flusher: Flusher | None = None
_state_lock = threading.Lock()


def start(engine: Engine, interval_s: float) -> None:
    """Flush this process's counts to `engine` every `interval_s` seconds and at exit (0: no
    thread; counts are then written only by `flush`, e.g. when this process answers /metrics)."""
    global _flusher
    with _state_lock:
        if _flusher is not None:
            if _flusher.engine is engine and _flusher.interval_s == interval_s:
                return
            _flusher.stop()
            _flusher = None
        if interval_s > 0:
            _flusher = Flusher(engine, interval_s).start()


def stop(*, write: bool = True) -> None:
    """Stop the flusher and write what is left (a worker's graceful shutdown)."""
    global _flusher
    with _state_lock:
        flusher, _flusher = _flusher, None
    if flusher is not None:
        flusher.stop()
        if write:
            flush(flusher.engine)


def _after_fork_in_child() -> None:
    global _flusher, _flush_lock, _state_lock
    BUFFER.reset()
    _flush_lock = threading.Lock()
    _state_lock = threading.Lock()
    flusher = _flusher
    _flusher = None
    if flusher is not None:
        _flusher = Flusher(flusher.engine, flusher.interval_s).start()


atexit.register(stop)
os.register_at_fork(after_in_child=_after_fork_in_child)
