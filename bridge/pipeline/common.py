"""What several pipeline stages share: Amazon error -> retry policy, and owed storefront notes
that are also operator alerts."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from .. import alerts, jobs
from ..amazon import errors as amz
from ..audit import note
from ..channels import Channel
from ..store import OrderRecord, PushRecord
from ..worker import RetryLater

log = logging.getLogger("bridge.pipeline")

JOB_PUSH = "push"
PARKED_ACCOUNT_RETRY_S = 600.0
#: Parked jobs come back just after the authenticator's next LWA try is due.
PARKED_JITTER_S = 1.0


def amazon_retry(exc: amz.SpApiError, channel: Channel) -> RetryLater:
    """Amazon's error -> when to try again, with the text an operator (and Amazon support) needs:
    operation, HTTP status, Amazon's code and message, `x-amzn-RequestId`.

    Account-wide conditions park the work without spending the order's attempts, because an
    outage must never dead-letter orders: rejected credentials (the job comes back when the
    authenticator next asks LWA, and at once when the account recovers or on
    `fba-bridge amazon recheck`), an open circuit breaker, our own rate budget."""
    if isinstance(exc, amz.CredentialsRejected):
        log.warning("Amazon account %s is parked: %s", channel.account_id, exc.code)
        wait = exc.retry_after if exc.retry_after is not None else PARKED_ACCOUNT_RETRY_S
        return RetryLater(
            f"{amz.parked_marker(channel.account_id)} {exc.describe()}",
            after_s=wait + PARKED_JITTER_S,
            count_attempt=False,
        )
    account_wide = isinstance(exc, amz.CircuitOpen | amz.LocalThrottle)
    return RetryLater(exc.describe(), after_s=exc.retry_after, count_attempt=not account_wide)


def owe_note(session: Session, row: OrderRecord, key: str, now: datetime, text: str) -> None:
    """A note to the storefront and an operator alert (key `order:<id>:<key>`), each owed once."""
    assert row.id is not None
    alerts.raise_alert(
        session,
        key=f"order:{row.id}:{key}",
        kind=key.split(":", 1)[0],
        message=f"order {row.display_id or row.external_id} ({row.channel_id}): {text}",
        now=now,
        order_id=row.id,
        channel_id=row.channel_id,
    )
    full_key = f"note:{row.id}:{key}"
    if session.execute(select(col(PushRecord.id)).where(col(PushRecord.key) == full_key)).first() is not None:
        return
    push = PushRecord(
        order_id=row.id, key=full_key, kind="note", note=text[:2000], status="pending", created_at=now
    )
    session.add(push)
    session.flush()
    jobs.enqueue(
        session, JOB_PUSH, order_id=row.id, payload={"push_id": push.id}, dedupe_key=f"push:{push.id}"
    )
    note(session, row, "alert", now, text)
    log.warning("operator alert order_id=%s channel=%s: %s", row.id, row.channel_id, text)
