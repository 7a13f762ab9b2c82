"""Customer returns: `listReturnReasonCodes` to pick or check the reason, then
`createFulfillmentReturn` for the shipped units, and the authorisation in the audit trail.

Each returned unit gets a stable `sellerReturnItemId`, so a retried request is recognised by
Amazon as the same return (it answers `DuplicateRequest` instead of authorising twice).
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlmodel import Session, col

from ..amazon import errors as amz
from ..amazon.models import CreateFulfillmentReturnRequest, CreateReturnItem
from ..amazon.outbound import FulfillmentOutbound
from ..audit import note
from ..store import OrderRecord, PackageRecord, ShipmentRecord, read_session
from ..worker import GiveUp, JobContext
from .common import amazon_retry, owe_note
from .plan import item_id_for

log = logging.getLogger("bridge.returns")

RETURNABLE_STATES = ("shipped", "partially_shipped", "completed_partially")


def _shipment_of_line(session: Session, order_id: int) -> dict[str, str]:
    """Storefront line id -> the Amazon shipment that carried it."""
    rows = session.execute(
        select(col(PackageRecord.lines), col(ShipmentRecord.amazon_shipment_id))
        .join(ShipmentRecord, col(ShipmentRecord.id) == col(PackageRecord.shipment_id))
        .where(col(PackageRecord.order_id) == order_id)
    ).all()
    return {str(line["line_id"]): shipment_id for lines, shipment_id in rows for line in lines}


def handle_return(ctx: JobContext) -> None:
    bridge = ctx.bridge
    assert ctx.job.order_id is not None
    with read_session(bridge.engine) as session:
        row = session.get(OrderRecord, ctx.job.order_id)
        assert row is not None
        shipment_of = _shipment_of_line(session, row.id or 0)
    if row.state not in RETURNABLE_STATES or not row.seller_fulfillment_order_id:
        raise GiveUp(f"order is {row.state}: only shipped orders can be returned")
    channel = bridge.config.channel(row.channel_id)
    assert channel is not None
    outbound: FulfillmentOutbound = ctx.services["amazon"].for_channel(channel)
    sku_of = {line.line_id: line.sku for line in row.canonical().lines}
    sfo_id = row.seller_fulfillment_order_id
    items: list[CreateReturnItem] = []
    try:
        codes: dict[str, list[str]] = {}
        for wanted in ctx.job.payload["items"]:
            line_id = str(wanted["line_id"])
            if line_id not in shipment_of:
                raise GiveUp(
                    f"line {line_id} was not shipped by Amazon, so it cannot be returned through Amazon"
                )
            seller_sku = channel.amazon_sku(sku_of.get(line_id, "")) or ""
            if seller_sku not in codes:
                codes[seller_sku] = [
                    c.return_reason_code
                    for c in outbound.return_reason_codes(
                        seller_sku, marketplace_id=channel.marketplace_id, seller_fulfillment_order_id=sfo_id
                    )
                ]
            reason = wanted.get("reason_code") or (codes[seller_sku][0] if codes[seller_sku] else "")
            if reason not in codes[seller_sku]:
                raise GiveUp(
                    f"return reason {reason!r} is not one of Amazon's codes for {seller_sku}: "
                    f"{', '.join(codes[seller_sku]) or '(none)'}"
                )
            for unit in range(int(wanted["quantity"])):
                items.append(
                    CreateReturnItem(
                        seller_return_item_id=f"{ctx.job.id}-{line_id}-{unit}"[:80],
                        seller_fulfillment_order_item_id=item_id_for(line_id),
                        amazon_shipment_id=shipment_of[line_id],
                        return_reason_code=reason,
                        return_comment=(wanted.get("comment") or None),
                    )
                )
        result = outbound.create_return(
            sfo_id, CreateFulfillmentReturnRequest(items=items), retry_ambiguous=True
        )
    except amz.SpApiError as exc:
        raise amazon_retry(exc, channel) from None
    now = bridge.clock.now()
    with ctx.finish() as session:
        locked = session.get(OrderRecord, row.id)
        assert locked is not None
        rmas = ", ".join(a.return_authorization_id for a in result.return_authorizations) or "none"
        note(
            session,
            locked,
            "return:authorised",
            now,
            f"Amazon authorised {len(result.return_items)} return unit(s); authorisation(s): {rmas}",
        )
        if result.invalid_return_items:
            reasons = "; ".join(
                f"{i.seller_fulfillment_order_item_id}: {i.reason_code}" for i in result.invalid_return_items
            )
            owe_note(
                session,
                locked,
                f"return-refused:{ctx.job.id}",
                now,
                f"Amazon refused part of the return: {reasons}",
            )
