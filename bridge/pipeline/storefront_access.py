"""A channel whose storefront refused our credentials is parked, for every worker at once.

When a push gets 401/403 (a WooCommerce key revoked, a Shopify app uninstalled or its token
rotated), retrying each job on its own would spend its attempts on a cause only a person can fix.
Instead (the storefront twin of `amazon/tokens.py`):

- the channel is parked in `storefront_credentials` (shared by every worker process) and the
  operator alert `channel:<id>:credentials` is raised, once;
- its push jobs wait without spending attempts (`RetryLater(count_attempt=False)`) and without
  calling the storefront; one of them is let through every `RECHECK_S` as a probe, so a
  credential that starts working again (key restored, token re-issued) takes effect within a
  minute;
- the first success -- the probe, or `fba-bridge channels recheck CHANNEL` -- clears the parking
  and the alert and makes the waiting jobs due at once.

Times are epoch seconds of the injected clock; messages carry the storefront's status and our
advice, never the credential.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from .. import alerts, jobs
from ..clock import Clock
from ..store import JobRecord, StorefrontCredentialRecord, db_now, read_session, write_session

log = logging.getLogger("bridge.storefront_access")

ALERT_KIND = "storefront_credentials"
#: Seconds between two probes of a parked channel (a little jitter is added to each wait).
RECHECK_S = 50.0
RECHECK_JITTER_S = 5.0


def alert_key(channel_id: str) -> str:
    return f"channel:{channel_id}:credentials"


def parked_marker(channel_id: str) -> str:
    """Starts the `last_error` of every job waiting for the channel (see `resume_parked_jobs`)."""
    return f"[channel {channel_id} parked: credentials rejected]"


@dataclass(frozen=True)
class Parked:
    """The channel is parked and this caller is not the probe: wait `wait_s`, then look again."""

    wait_s: float
    reason: str


def _now(clock: Clock) -> float:
    return clock.now().timestamp()


def gate(engine: Engine, clock: Clock, channel_id: str) -> Parked | None:
    """None when the caller may call the storefront: the channel is not parked, or it is and this
    caller is the one probe allowed now (the next is due `RECHECK_S` later)."""
    with read_session(engine) as session:
        row = session.get(StorefrontCredentialRecord, channel_id)
        if row is None or not row.rejected_code:
            return None
    now = _now(clock)
    with write_session(engine) as session:
        row = session.execute(
            select(StorefrontCredentialRecord)
            .where(col(StorefrontCredentialRecord.channel_id) == channel_id)
            .with_for_update()
        ).scalar_one_or_none()
        if row is None or not row.rejected_code:
            return None
        if row.recheck_at is None or row.recheck_at <= now:
            row.recheck_at = now + RECHECK_S
            row.updated_at = now
            session.add(row)
            log.info("channel %s is parked; this job probes its credentials", channel_id)
            return None
        return Parked(row.recheck_at - now + random.uniform(0, RECHECK_JITTER_S), row.rejected_message)


def rejected(engine: Engine, clock: Clock, channel_id: str, code: str, message: str) -> float:
    """The storefront refused the credentials: park the channel (one alert) and return how long
    the refused job should wait before its next try."""
    now = _now(clock)
    with write_session(engine) as session:
        _ensure_row(session, channel_id, now)
        session.execute(
            update(StorefrontCredentialRecord)
            .where(col(StorefrontCredentialRecord.channel_id) == channel_id)
            .values(
                rejected_code=code[:64],
                rejected_message=message[:2000],
                recheck_at=now + RECHECK_S,
                updated_at=now,
            )
        )
        alerts.raise_alert(
            session,
            key=alert_key(channel_id),
            kind=ALERT_KIND,
            message=f"the storefront of channel {channel_id} refused our credentials: {message}. Its "
            "push-backs wait (no attempts are spent) and are retried every minute; fix the credential in "
            f"the channels file or the shop, then run `fba-bridge channels recheck {channel_id}`",
            now=clock.now(),
            channel_id=channel_id,
        )
    log.warning("channel %s parked: the storefront refused our credentials (%s)", channel_id, code)
    return RECHECK_S + random.uniform(0, RECHECK_JITTER_S)


def accepted(engine: Engine, clock: Clock, channel_id: str) -> bool:
    """The storefront took our credentials: end a parking, if any (alert cleared, waiting jobs
    due now). Returns True when the channel was parked. Costs one read when it was not."""
    with read_session(engine) as session:
        row = session.get(StorefrontCredentialRecord, channel_id)
        if row is None or not row.rejected_code:
            return False
    now = _now(clock)
    with write_session(engine) as session:
        session.execute(
            update(StorefrontCredentialRecord)
            .where(col(StorefrontCredentialRecord.channel_id) == channel_id)
            .values(rejected_code="", rejected_message="", recheck_at=None, updated_at=now)
        )
        alerts.clear_alert(session, alert_key(channel_id), clock.now())
        resumed = resume_parked_jobs(session, channel_id)
    log.info(
        "channel %s: the storefront accepts our credentials again; %d job(s) resume", channel_id, resumed
    )
    return True


def probe_now(engine: Engine, clock: Clock, channel_id: str) -> int:
    """Let a parked channel's next job probe at once and make its waiting jobs due now (for a
    platform with no read-only check). Returns how many jobs were resumed."""
    with write_session(engine) as session:
        session.execute(
            update(StorefrontCredentialRecord)
            .where(col(StorefrontCredentialRecord.channel_id) == channel_id)
            .values(recheck_at=None, updated_at=_now(clock))
        )
        return resume_parked_jobs(session, channel_id)


def is_parked(engine: Engine, channel_id: str) -> bool:
    with read_session(engine) as session:
        row = session.get(StorefrontCredentialRecord, channel_id)
        return row is not None and bool(row.rejected_code)


def resume_parked_jobs(session: Session, channel_id: str) -> int:
    """Jobs waiting for the channel's credentials may run now (in the caller's transaction)."""
    result = session.execute(
        update(JobRecord)
        .where(
            col(JobRecord.status) == jobs.READY,
            col(JobRecord.last_error).startswith(parked_marker(channel_id), autoescape=True),
        )
        .values(run_at=db_now(session))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _ensure_row(session: Session, channel_id: str, now: float) -> None:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(StorefrontCredentialRecord)  # type: ignore[operator]
        .values(channel_id=channel_id, rejected_code="", rejected_message="", updated_at=now)
        .on_conflict_do_nothing(index_elements=["channel_id"])
    )
