"""Where an account's LWA access token and its parked state live between requests.

`LwaAuth` keeps a copy of the token in memory and comes here only when that copy runs out or
Amazon refuses it. Two implementations share the `TokenStore` protocol:

- `MemoryTokenStore`: this process only (unit tests, a client built without a database).
- `DatabaseTokenStore`: the `lwa_tokens` table, so every worker process of the bridge uses one
  access token per account (valid an hour), one process at a time asks LWA for the next one (a
  lease row update), and a rejection parks the account for all of them. Parking raises the
  operator alert `account:<id>:credentials` in the same transaction; the first successful
  refresh clears it and makes the jobs parked on it due at once.

Times are epoch seconds of the injected clock: the five-minute refresh margin dwarfs clock drift
between machines, and a token Amazon calls expired is refreshed anyway.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from bridge import alerts, jobs
from bridge.clock import Clock
from bridge.store import JobRecord, LwaTokenRecord, db_now, read_session, write_session

from .errors import parked_marker

ALERT_KIND = "amazon_credentials"


def credentials_alert_key(account_id: str) -> str:
    return f"account:{account_id}:credentials"


@dataclass(frozen=True)
class Rejection:
    code: str
    message: str
    status: int | None
    #: `credentials_fingerprint` of what LWA refused: other credentials are not parked by it.
    credentials: str = ""


@dataclass(frozen=True)
class TokenState:
    access_token: str | None = None
    expires_at: float | None = None
    refresh_at: float | None = None
    rejection: Rejection | None = None
    failures: int = 0
    retry_at: float | None = None

    def usable(self, now: float, refused: str | None = None) -> bool:
        """A token that may be sent now (and is not the one Amazon just refused)."""
        return (
            self.rejection is None
            and self.access_token is not None
            and self.access_token != refused
            and self.refresh_at is not None
            and now < self.refresh_at
        )


class TokenStore(Protocol):
    def load(self, account_id: str) -> TokenState | None: ...

    def claim_refresh(self, account_id: str, now: float, lease_s: float) -> bool:
        """True when this caller may ask LWA now (nobody else is doing it)."""
        ...

    def store_token(
        self, account_id: str, token: str, expires_at: float, refresh_at: float, now: float
    ) -> None:
        """Keep a new token; ends the lease, the parking and its alert."""
        ...

    def store_rejection(
        self, account_id: str, rejection: Rejection, now: float, failures: int, retry_at: float
    ) -> None:
        """LWA refused the credentials: park the account until `retry_at`; ends the lease."""
        ...

    def release(self, account_id: str) -> None:
        """The refresh ended without an answer from LWA (outage): let the next caller try."""
        ...

    def allow_retry(self, account_id: str) -> None:
        """Forget the cached token and let the next caller ask LWA at once, even while parked."""
        ...


class MemoryTokenStore:
    """One process's tokens; `LwaAuth`'s own lock already serialises its threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, TokenState] = {}

    def load(self, account_id: str) -> TokenState | None:
        with self._lock:
            return self._states.get(account_id)

    def claim_refresh(self, account_id: str, now: float, lease_s: float) -> bool:
        return True

    def store_token(
        self, account_id: str, token: str, expires_at: float, refresh_at: float, now: float
    ) -> None:
        with self._lock:
            self._states[account_id] = TokenState(token, expires_at, refresh_at)

    def store_rejection(
        self, account_id: str, rejection: Rejection, now: float, failures: int, retry_at: float
    ) -> None:
        with self._lock:
            self._states[account_id] = TokenState(rejection=rejection, failures=failures, retry_at=retry_at)

    def release(self, account_id: str) -> None:
        return None

    def allow_retry(self, account_id: str) -> None:
        with self._lock:
            state = self._states.get(account_id)
            if state is not None:
                self._states[account_id] = replace(state, access_token=None, retry_at=None)


class DatabaseTokenStore:
    """Tokens in `lwa_tokens`, shared by every process on the database (see the module docstring)."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def load(self, account_id: str) -> TokenState | None:
        with read_session(self._engine) as session:
            row = session.get(LwaTokenRecord, account_id)
            if row is None:
                return None
            rejection = (
                Rejection(
                    row.rejected_code, row.rejected_message, row.rejected_status, row.rejected_credentials
                )
                if row.rejected_code
                else None
            )
            return TokenState(
                row.access_token, row.expires_at, row.refresh_at, rejection, row.failures, row.retry_at
            )

    def claim_refresh(self, account_id: str, now: float, lease_s: float) -> bool:
        with write_session(self._engine) as session:
            self._ensure_row(session, account_id, now)
            table = LwaTokenRecord
            result = session.execute(
                update(table)
                .where(
                    col(table.account_id) == account_id,
                    col(table.refreshing_until).is_(None) | (col(table.refreshing_until) < now),
                )
                .values(refreshing_until=now + lease_s)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def store_token(
        self, account_id: str, token: str, expires_at: float, refresh_at: float, now: float
    ) -> None:
        with write_session(self._engine) as session:
            row = self._locked(session, account_id, now)
            was_parked = bool(row.rejected_code)
            row.access_token = token
            row.expires_at = expires_at
            row.refresh_at = refresh_at
            row.refreshing_until = None
            row.rejected_code, row.rejected_message, row.rejected_status = "", "", None
            row.rejected_credentials = ""
            row.failures = 0
            row.retry_at = None
            row.updated_at = now
            session.add(row)
            if was_parked:
                alerts.clear_alert(session, credentials_alert_key(account_id), self._clock.now())
                resume_parked_jobs(session, account_id)

    def store_rejection(
        self, account_id: str, rejection: Rejection, now: float, failures: int, retry_at: float
    ) -> None:
        with write_session(self._engine) as session:
            row = self._locked(session, account_id, now)
            row.access_token = None
            row.expires_at = row.refresh_at = row.refreshing_until = None
            row.rejected_code = rejection.code[:64]
            row.rejected_message = rejection.message[:2000]
            row.rejected_status = rejection.status
            row.rejected_credentials = rejection.credentials[:64]
            row.failures = failures
            row.retry_at = retry_at
            row.updated_at = now
            session.add(row)
            next_try = datetime.fromtimestamp(retry_at, UTC)
            alerts.raise_alert(
                session,
                key=credentials_alert_key(account_id),
                kind=ALERT_KIND,
                message=f"Login with Amazon refused the credentials ({rejection.code}): {rejection.message} "
                f"Next automatic try {next_try:%Y-%m-%d %H:%M:%S} UTC.",
                now=self._clock.now(),
                account_id=account_id,
            )

    def release(self, account_id: str) -> None:
        with write_session(self._engine) as session:
            session.execute(
                update(LwaTokenRecord)
                .where(col(LwaTokenRecord.account_id) == account_id)
                .values(refreshing_until=None)
            )

    def allow_retry(self, account_id: str) -> None:
        with write_session(self._engine) as session:
            session.execute(
                update(LwaTokenRecord)
                .where(col(LwaTokenRecord.account_id) == account_id)
                .values(retry_at=None, refreshing_until=None)
            )

    @staticmethod
    def _ensure_row(session: Session, account_id: str, now: float) -> None:
        insert: Any = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(
            insert(LwaTokenRecord)
            .values(
                account_id=account_id,
                rejected_code="",
                rejected_message="",
                rejected_credentials="",
                failures=0,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["account_id"])
        )

    def _locked(self, session: Session, account_id: str, now: float) -> LwaTokenRecord:
        self._ensure_row(session, account_id, now)
        row: LwaTokenRecord = (
            session.execute(
                select(LwaTokenRecord).where(col(LwaTokenRecord.account_id) == account_id).with_for_update()
            )
            .scalars()
            .one()
        )
        return row


def resume_parked_jobs(session: Session, account_id: str) -> int:
    """Jobs postponed because this account was parked may run now (in the caller's transaction)."""
    result = session.execute(
        update(JobRecord)
        .where(
            col(JobRecord.status) == jobs.READY,
            col(JobRecord.last_error).startswith(parked_marker(account_id), autoescape=True),
        )
        .values(run_at=db_now(session))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
