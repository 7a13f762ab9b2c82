"""Personal data removal: Shopify's redact topics, and the retention purge of finished orders.

Redaction keeps what operations and accounting need (ids, SKUs, quantities, prices, states,
the audit trail) and removes what identifies a person: the address, e-mail, phone, gift
message, notes, and the raw delivery bodies that carried them.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlmodel import Session, col

from ..orders import CanonicalOrder
from ..store import REDACTED_BODY, DeliveryRecord, OrderEventRecord, OrderRecord
from ..worker import JobContext

log = logging.getLogger("bridge.privacy")

FINISHED_STATES = ("shipped", "cancelled", "unfulfillable", "not_for_amazon")


def scrub(order: CanonicalOrder) -> CanonicalOrder:
    return replace(order, destination=None, buyer_email="", buyer_phone="", gift_message="", notes="")


def purge_order(session: Session, row: OrderRecord, now: datetime, reason: str) -> None:
    """Remove the personal data of one order in the caller's transaction (idempotent)."""
    if row.pii_purged_at is not None:
        return
    assert row.id is not None
    row.data = scrub(row.canonical()).to_json()
    row.pii_purged_at = now
    session.add(row)
    session.execute(
        update(DeliveryRecord).where(col(DeliveryRecord.order_id) == row.id).values(body=REDACTED_BODY)
    )
    session.add(
        OrderEventRecord(order_id=row.id, at=now, event="privacy:purged", to_state=row.state, reason=reason)
    )


def handle_privacy_job(ctx: JobContext) -> None:
    payload = ctx.job.payload
    channel_id: str = payload["channel_id"]
    scope: str = payload["scope"]
    now = ctx.bridge.clock.now()
    with ctx.finish() as session:
        query = select(OrderRecord).where(col(OrderRecord.channel_id) == channel_id)
        if scope == "customer_redact":
            query = query.where(col(OrderRecord.external_id).in_(payload.get("order_external_ids", [])))
        elif scope != "shop_redact":
            log.info(
                "privacy data request recorded channel=%s orders=%d",
                channel_id,
                len(payload.get("order_external_ids", [])),
            )
            return
        rows = list(session.execute(query).scalars())
        for row in rows:
            purge_order(session, row, now, f"storefront privacy request ({scope})")
        if scope == "shop_redact":
            session.execute(
                update(DeliveryRecord)
                .where(col(DeliveryRecord.channel_id) == channel_id)
                .values(body=REDACTED_BODY)
            )
        session.execute(
            update(DeliveryRecord)
            .where(col(DeliveryRecord.id) == payload.get("delivery_id"))
            .values(body=REDACTED_BODY)
        )
    log.info("privacy request carried out channel=%s scope=%s orders=%d", channel_id, scope, len(rows))


def purge_expired(ctx: JobContext, retention: timedelta) -> int:
    """Retention: purge orders that finished longer than `retention` ago."""
    cutoff = ctx.bridge.clock.now() - retention
    with ctx.finish() as session:
        rows = list(
            session.execute(
                select(OrderRecord)
                .where(col(OrderRecord.state).in_(FINISHED_STATES))
                .where(col(OrderRecord.pii_purged_at).is_(None))
                .where(col(OrderRecord.updated_at) < cutoff)
                .limit(500)
            ).scalars()
        )
        for row in rows:
            purge_order(session, row, ctx.bridge.clock.now(), f"retention of {retention.days} days elapsed")
    return len(rows)
