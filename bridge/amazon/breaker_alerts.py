"""Open circuit breakers as operator alerts: one warning per (account, operation) while it is open.

The SP-API client keeps its breakers in memory (one per account and operation, per process) and
tells this listener when one opens or closes. Opening raises the alert
`account:<id>:breaker:<operation>` (warning: the bridge keeps going and probes by itself);
closing clears it. `fba-bridge jobs` and `fba-bridge orders --attention` list the open ones.

Best effort: a database hiccup while recording the alert must not turn Amazon's answer into a
failure, so errors are logged and swallowed.

A breaker's first success in a process also asks whether an earlier process left its alert open.
One read of every open breaker alert answers that for all breakers at once (refreshed at most
every `SNAPSHOT_S`): asked breaker by breaker, each worker spent a write transaction per account
and operation after every start, 800 of them for 100 accounts, 2 operations and 4 workers.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import col

from bridge import alerts
from bridge.clock import Clock
from bridge.store import AlertRecord, read_session, write_session

log = logging.getLogger("bridge.amazon")

ALERT_KIND = "amazon_breaker"
SNAPSHOT_S = 30.0


def breaker_alert_key(account_id: str, operation: str) -> str:
    return f"account:{account_id}:breaker:{operation}"


class AlertingBreakerListener:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock
        self._lock = threading.Lock()
        self._raised: set[str] = set()  # opened by this process: closing clears without asking
        self._open_keys: frozenset[str] = frozenset()
        self._read_at: float | None = None

    def opened(self, account_id: str, operation: str, failures: int, retry_in: float) -> None:
        message = (
            f"Amazon account {account_id}: {operation} paused after {failures} consecutive failures "
            f"(Amazon 5xx or network errors); next probe in {retry_in:.0f}s, then backing off up to a "
            "minute. Other operations continue; affected jobs wait without spending attempts."
        )
        key = breaker_alert_key(account_id, operation)
        with self._lock:
            self._raised.add(key)
        try:
            with write_session(self._engine) as session:
                alerts.raise_alert(
                    session,
                    key=key,
                    kind=ALERT_KIND,
                    message=message,
                    now=self._clock.now(),
                    account_id=account_id,
                    severity=alerts.Severity.WARNING,
                )
        except Exception as exc:
            log.warning("could not record the open breaker alert: %s", type(exc).__name__)

    def closed(self, account_id: str, operation: str) -> None:
        key = breaker_alert_key(account_id, operation)
        try:
            with self._lock:
                opened_here = key in self._raised
                self._raised.discard(key)
            if not opened_here and key not in self._open_alerts():
                return
            with write_session(self._engine) as session:
                alerts.clear_alert(session, key, self._clock.now())
        except Exception as exc:
            log.warning("could not clear the breaker alert: %s", type(exc).__name__)

    def _open_alerts(self) -> frozenset[str]:
        """The keys of every open breaker alert, as read at most `SNAPSHOT_S` ago."""
        with self._lock:
            now = self._clock.monotonic()
            if self._read_at is None or now - self._read_at >= SNAPSHOT_S:
                query = select(col(AlertRecord.key)).where(
                    col(AlertRecord.kind) == ALERT_KIND, col(AlertRecord.cleared_at).is_(None)
                )
                with read_session(self._engine) as session:
                    self._open_keys = frozenset(session.execute(query).scalars())
                self._read_at = now
            return self._open_keys
