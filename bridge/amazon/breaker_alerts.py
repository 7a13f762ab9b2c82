"""Open circuit breakers as operator alerts: one warning per (account, operation) while it is open.

The SP-API client keeps its breakers in memory (one per account and operation, per process) and
tells this listener when one opens or closes. Opening raises the alert
`account:<id>:breaker:<operation>` (warning: the bridge keeps going and probes by itself);
closing clears it. `fba-bridge jobs` and `fba-bridge orders --attention` list the open ones.

Best effort: a database hiccup while recording the alert must not turn Amazon's answer into a
failure, so errors are logged and swallowed.
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from bridge import alerts
from bridge.clock import Clock
from bridge.store import write_session

log = logging.getLogger("bridge.amazon")

ALERT_KIND = "amazon_breaker"


def breaker_alert_key(account_id: str, operation: str) -> str:
    return f"account:{account_id}:breaker:{operation}"


class AlertingBreakerListener:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def opened(self, account_id: str, operation: str, failures: int, retry_in: float) -> None:
        message = (
            f"Amazon account {account_id}: {operation} paused after {failures} consecutive failures "
            f"(Amazon 5xx or network errors); next probe in {retry_in:.0f}s, then backing off up to a "
            "minute. Other operations continue; affected jobs wait without spending attempts."
        )
        try:
            with write_session(self._engine) as session:
                alerts.raise_alert(
                    session,
                    key=breaker_alert_key(account_id, operation),
                    kind=ALERT_KIND,
                    message=message,
                    now=self._clock.now(),
                    account_id=account_id,
                    severity=alerts.Severity.WARNING,
                )
        except Exception as exc:
            log.warning("could not record the open breaker alert: %s", type(exc).__name__)

    def closed(self, account_id: str, operation: str) -> None:
        try:
            with write_session(self._engine) as session:
                alerts.clear_alert(session, breaker_alert_key(account_id, operation), self._clock.now())
        except Exception as exc:
            log.warning("could not clear the breaker alert: %s", type(exc).__name__)
