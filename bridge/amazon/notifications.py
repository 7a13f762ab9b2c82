"""Amazon's FULFILLMENT_ORDER_STATUS notifications, relayed to us from SQS/EventBridge.

A notification is a hint, never the truth: it can arrive late, twice or out of order, so it only
triggers an immediate read of the order (`sync_order`). Return receipts are also recorded in the
order's audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import col

from ..audit import note
from ..clock import Clock
from ..pipeline.sync import enqueue_order_sync
from ..store import DeliveryRecord, order_by_amazon_id, write_session
from ..storefronts.base import Rejection, parse_json, refuse_control_characters, validate_or_reject

CHANNEL = "amazon"
FULFILLMENT_ORDER_STATUS = "FULFILLMENT_ORDER_STATUS"


@dataclass(frozen=True)
class NotificationResult:
    outcome: str


def ingest_notification(engine: Engine, body: bytes, clock: Clock) -> NotificationResult:
    document = parse_json(body)
    validate_or_reject("amazon/fulfillment_order_status_notification", document, "Amazon notification")
    refuse_control_characters(document, "Amazon notification", body)
    if document["NotificationType"] != FULFILLMENT_ORDER_STATUS:
        return NotificationResult("ignored")
    notification_id = document["NotificationMetadata"]["NotificationId"]
    status = document["Payload"].get("FulfillmentOrderStatusNotification")
    if not isinstance(status, dict):
        raise Rejection(422, "schema_violation", "Payload.FulfillmentOrderStatusNotification is missing")
    now = clock.now()
    with write_session(engine) as session:
        seen = session.execute(
            select(col(DeliveryRecord.id)).where(
                col(DeliveryRecord.channel_id) == CHANNEL, col(DeliveryRecord.delivery_key) == notification_id
            )
        ).first()
        if seen is not None:
            return NotificationResult("duplicate")
        row = order_by_amazon_id(session, str(status["SellerFulfillmentOrderId"]))
        event_type = str(status.get("EventType", ""))[:30]
        session.add(
            DeliveryRecord(
                channel_id=CHANNEL,
                delivery_key=notification_id,
                topic=f"amazon/{event_type}",
                received_at=now,
                body=body,
                outcome="queued" if row else "unknown_order",
                order_id=row.id if row else None,
            )
        )
        if row is None or row.id is None:
            return NotificationResult("unknown_order")
        returned = status.get("FulfillmentReturnItem")
        if isinstance(returned, dict) and returned:
            note(
                session,
                row,
                "amazon:return_received",
                now,
                f"Amazon received a return: {returned.get('ReturnedQuantity', '?')} x "
                f"{str(returned.get('SellerSKU', '?'))[:50]}",
            )
        enqueue_order_sync(session, row.id, f"notification {event_type or 'status'}")
    return NotificationResult("queued")
