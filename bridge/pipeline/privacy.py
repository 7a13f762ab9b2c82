"""Personal data: Shopify's privacy topics, the retention purge, and the data export.

Redaction keeps what operations, accounting and Amazon reconciliation need (ids, SKUs,
quantities, prices, states, shipments, the audit trail) and removes what identifies a person:
the address, e-mail, phone, gift message, notes, and the raw delivery bodies that carried them.

What a caller may rely on:

- `purge_expired` forgets by age, whatever the order's state: every delivery body received
  longer than the retention period ago (with or without an order: WooCommerce drafts, ignored
  topics, refused deliveries), and every order not changed for that long -- finished ones and
  idle ones alike (an abandoned unpaid checkout, a parked or never-submitted order). An order at
  Amazon keeps its seller fulfillment order id, lines and shipments, so sync and reconciliation
  go on; the address is Amazon's copy by then.
- A redacted order stays redacted: intake scrubs every later delivery for it (see `intake.py`).
- `customers/data_request` opens an operator alert naming the request; `export_request` writes
  what is stored about the orders it lists (`fba-bridge privacy export CHANNEL REQUEST`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from .. import alerts, jobs
from ..orders import FINAL, CanonicalOrder, OrderState
from ..store import (
    REDACTED_BODY,
    AlertRecord,
    DeliveryRecord,
    FulfillmentUnitRecord,
    OrderEventRecord,
    OrderRecord,
    PackageRecord,
    PushRecord,
    ShipmentRecord,
    read_session,
    write_session,
)
from ..worker import JobContext

log = logging.getLogger("bridge.privacy")

#: Orders nothing more happens to (compaction of their audit trail waits for these).
FINISHED_STATES = tuple(sorted({state.value for state in FINAL} | {OrderState.NOT_FOR_AMAZON.value}))
DATA_REQUEST_TOPIC = "customers/data_request"
BATCH = 500
MAX_BATCHES = 200


def scrub(order: CanonicalOrder) -> CanonicalOrder:
    return order.without_personal_data()


def purge_order(session: Session, row: OrderRecord, now: datetime, reason: str) -> None:
    """Remove the personal data of one order in the caller's transaction (idempotent)."""
    assert row.id is not None
    if row.pii_purged_at is None:
        row.data = scrub(row.canonical()).to_json()
        row.pii_purged_at = now
        session.add(row)
        session.add(
            OrderEventRecord(
                order_id=row.id, at=now, event="privacy:purged", to_state=row.state, reason=reason
            )
        )
    _redact_bodies(session, now, col(DeliveryRecord.order_id) == row.id)


def _redact_bodies(session: Session, now: datetime, *where: Any) -> None:
    session.execute(
        update(DeliveryRecord)
        .where(*where, col(DeliveryRecord.body_purged_at).is_(None))
        .values(body=REDACTED_BODY, body_purged_at=now)
    )


def handle_privacy_job(ctx: JobContext) -> None:
    payload = ctx.job.payload
    channel_id: str = payload["channel_id"]
    scope: str = payload["scope"]
    external_ids: list[str] = list(payload.get("order_external_ids", []))
    now = ctx.bridge.clock.now()
    with ctx.finish() as session:
        if scope == "data_request":
            _record_data_request(session, channel_id, payload.get("delivery_id"), external_ids, now)
            log.info("privacy data request recorded channel=%s orders=%d", channel_id, len(external_ids))
            return
        query = select(OrderRecord).where(col(OrderRecord.channel_id) == channel_id)
        if scope == "customer_redact":
            query = query.where(col(OrderRecord.external_id).in_(external_ids))
        rows = list(session.execute(query).scalars())
        for row in rows:
            purge_order(session, row, now, f"storefront privacy request ({scope})")
        if scope == "shop_redact":
            _redact_bodies(session, now, col(DeliveryRecord.channel_id) == channel_id)
    log.info("privacy request carried out channel=%s scope=%s orders=%d", channel_id, scope, len(rows))


def _record_data_request(
    session: Session, channel_id: str, delivery_id: int | None, external_ids: list[str], now: datetime
) -> None:
    request = delivery_id if delivery_id is not None else "?"
    alerts.raise_alert(
        session,
        key=f"privacy:data_request:{channel_id}:{request}",
        kind="privacy",
        severity=alerts.Severity.WARNING,
        message=(
            f"the storefront asks for the data stored about a customer (data request {request}, "
            f"{len(external_ids)} order(s)); run `fba-bridge privacy export {channel_id} {request} "
            "--out FILE` and send the file to the merchant, then acknowledge this alert"
        ),
        now=now,
        channel_id=channel_id,
    )


@dataclass
class Purge:
    orders: int = 0
    bodies: int = 0


def purge_expired(ctx: JobContext, retention: timedelta) -> int:
    """Retention: forget personal data older than `retention`, in short batches (see module doc).
    Returns the number of orders purged; raises `jobs.LostLease` if the claim is lost meanwhile."""
    done = purge_older_than(ctx.bridge.engine, ctx.bridge.clock.now(), retention, job=ctx)
    with ctx.finish():
        pass
    log.info("retention purge: %d order(s), %d delivery bodies", done.orders, done.bodies)
    return done.orders


def purge_older_than(
    engine: Engine, now: datetime, retention: timedelta, *, job: JobContext | None = None
) -> Purge:
    cutoff = now - retention
    reason = f"retention of {retention.days} days elapsed"
    result = Purge()
    for _ in range(MAX_BATCHES):
        with write_session(engine) as session:
            if job is not None:
                jobs.assert_held(session, job.job)
            rows = list(
                session.execute(
                    select(OrderRecord)
                    .where(col(OrderRecord.pii_purged_at).is_(None), col(OrderRecord.updated_at) < cutoff)
                    .order_by(col(OrderRecord.id))
                    .limit(BATCH)
                ).scalars()
            )
            for row in rows:
                purge_order(session, row, now, reason)
        result.orders += len(rows)
        if len(rows) < BATCH:
            break
    for _ in range(MAX_BATCHES):
        with write_session(engine) as session:
            if job is not None:
                jobs.assert_held(session, job.job)
            ids = list(
                session.execute(
                    select(col(DeliveryRecord.id))
                    .where(
                        col(DeliveryRecord.body_purged_at).is_(None), col(DeliveryRecord.received_at) < cutoff
                    )
                    .order_by(col(DeliveryRecord.received_at))
                    .limit(BATCH)
                ).scalars()
            )
            if ids:
                _redact_bodies(session, now, col(DeliveryRecord.id).in_(ids))
        result.bodies += len(ids)
        if len(ids) < BATCH:
            break
    return result


# --------------------------------------------------------------------------------------------
# The data export a `customers/data_request` asks for


class ExportError(Exception):
    """Why a data request cannot be exported, in words for the operator."""


@dataclass
class Export:
    channel_id: str
    request: int
    orders_requested: list[str]
    orders: list[dict[str, Any]] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "channel_id": self.channel_id,
            "data_request": self.request,
            "orders_requested": self.orders_requested,
            "orders": self.orders,
            "orders_not_stored": self.not_found,
        }


def export_request(engine: Engine, channel_id: str, request: int) -> Export:
    """Everything stored about the orders a data request lists: each order as stored (with its
    personal data unless it was purged), its audit trail, shipments, packages and the deliveries
    (raw bodies) the storefront sent for it."""
    with read_session(engine) as session:
        delivery = session.get(DeliveryRecord, request)
        if delivery is None or delivery.channel_id != channel_id or delivery.topic != DATA_REQUEST_TOPIC:
            raise ExportError(
                f"no customers/data_request delivery {request} on channel {channel_id}; the number is "
                "the one the privacy alert names (`fba-bridge alerts`)"
            )
        try:
            kept = json.loads(delivery.body)
            requested = [str(x) for x in kept["orders"]]
        except (ValueError, KeyError, TypeError):
            raise ExportError(
                f"data request {request} is older than the retention period, or was stored before "
                "the export existed: the orders it named are no longer known"
            ) from None
        export = Export(channel_id=channel_id, request=request, orders_requested=requested)
        rows = {
            row.external_id: row
            for row in session.execute(
                select(OrderRecord).where(
                    col(OrderRecord.channel_id) == channel_id, col(OrderRecord.external_id).in_(requested)
                )
            ).scalars()
        }
        for external_id in requested:
            row = rows.get(external_id)
            if row is None:
                export.not_found.append(external_id)
            else:
                export.orders.append(_order_export(session, row))
    return export


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _order_export(session: Session, row: OrderRecord) -> dict[str, Any]:
    events = session.execute(
        select(OrderEventRecord)
        .where(col(OrderEventRecord.order_id) == row.id)
        .order_by(col(OrderEventRecord.at), col(OrderEventRecord.id))
    ).scalars()
    shipments = session.execute(
        select(ShipmentRecord).where(col(ShipmentRecord.order_id) == row.id)
    ).scalars()
    packages = session.execute(select(PackageRecord).where(col(PackageRecord.order_id) == row.id)).scalars()
    deliveries = session.execute(
        select(DeliveryRecord).where(col(DeliveryRecord.order_id) == row.id).order_by(col(DeliveryRecord.id))
    ).scalars()
    pushes = session.execute(
        select(PushRecord).where(col(PushRecord.order_id) == row.id).order_by(col(PushRecord.id))
    ).scalars()
    units = session.execute(
        select(FulfillmentUnitRecord).where(col(FulfillmentUnitRecord.order_id) == row.id)
    ).scalars()
    order_alerts = session.execute(
        select(AlertRecord).where(col(AlertRecord.order_id) == row.id).order_by(col(AlertRecord.id))
    ).scalars()
    return {
        "external_id": row.external_id,
        "display_id": row.display_id,
        "state": row.state,
        "created_at": _when(row.created_at),
        "updated_at": _when(row.updated_at),
        "personal_data_purged_at": _when(row.pii_purged_at),
        "seller_fulfillment_order_id": row.seller_fulfillment_order_id,
        "order": row.data,
        "audit_trail": [
            {"at": _when(e.at), "event": e.event, "from": e.from_state, "to": e.to_state, "reason": e.reason}
            for e in events
        ],
        "shipments": [
            {
                "amazon_shipment_id": s.amazon_shipment_id,
                "status": s.status,
                "shipped_at": _when(s.shipped_at),
            }
            for s in shipments
        ],
        "packages": [
            {
                "package_number": p.package_number,
                "carrier": p.carrier_name or p.carrier_code,
                "tracking_number": p.tracking_number,
                "tracking_url": p.tracking_url,
                "delivered_at": _when(p.delivered_at),
            }
            for p in packages
        ],
        "deliveries": [_delivery_export(d) for d in deliveries],
        "storefront_updates": [
            {"kind": p.kind, "note": p.note, "status": p.status, "at": _when(p.done_at or p.created_at)}
            for p in pushes
        ],
        "fulfillment_units": [{"unit_id": u.unit_id, "status": u.status, "lines": u.lines} for u in units],
        "alerts": [{"opened_at": _when(a.opened_at), "message": a.message} for a in order_alerts],
        "submission": row.submission,
    }


def _delivery_export(delivery: DeliveryRecord) -> dict[str, Any]:
    body: Any
    if delivery.body_purged_at is not None or delivery.body == REDACTED_BODY:
        body = None
    else:
        try:
            body = json.loads(delivery.body)
        except ValueError:
            body = delivery.body.decode("utf-8", errors="replace")
    return {
        "received_at": _when(delivery.received_at),
        "topic": delivery.topic,
        "body": body,
        "body_purged": body is None,
    }
