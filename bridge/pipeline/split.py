"""Orders beyond Amazon's limits, split into several MCF orders (`split_large_orders`). Pure.

Amazon's model allows at most 100 items and 250 units in one fulfillment order. A larger order
is parked unless its channel sets `split_large_orders: true`; then `split_plan` packs the planned
items, in the plan's order, into parts within both limits (a line with more than 250 units spans
parts). Part `n` gets the id `<id>-<n>` derived from the order's own `sellerFulfillmentOrderId`,
so every attempt derives the same parts and each create stays idempotent (a resumed submission
reads each part before creating it). Each part is previewed and created like an order of its own.

Sync reads every part and records them as one order: `combine` merges their shipments and items,
and `combined_status` gives the order's status (what has finished, what is still moving).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace

from ..amazon.models import (
    FINAL_ORDER_STATUSES,
    CreateFulfillmentOrderItem,
    FulfillmentOrder,
    GetFulfillmentPreviewItem,
)
from ..channels import Channel
from .plan import MAX_ORDER_ID, Park, Plan

MAX_ITEMS = 100
MAX_UNITS = 250


def over_limits(plan: Plan) -> str | None:
    """Why one Amazon order cannot hold the plan (None: it can)."""
    items = len(plan.create.items)
    units = sum(i.quantity for i in plan.create.items)
    if items <= MAX_ITEMS and units <= MAX_UNITS:
        return None
    return (
        f"the order has {items} item(s) and {units} unit(s); one Amazon order takes at most "
        f"{MAX_ITEMS} items and {MAX_UNITS} units"
    )


def part_id(base: str, part: int) -> str:
    """`<base>-<part>`, within Amazon's 40 characters (a hash of the base when it is too long)."""
    suffix = f"-{part}"
    if len(base) + len(suffix) <= MAX_ORDER_ID:
        return base + suffix
    digest = hashlib.sha256(base.encode()).hexdigest()
    return f"fbb-{digest[: MAX_ORDER_ID - 4 - len(suffix)]}{suffix}"


def plan_parts(plan: Plan, channel: Channel) -> tuple[Plan, ...] | Park:
    """The plan as it is (one part), split into parts, or why it is parked."""
    why = over_limits(plan)
    if why is None:
        return (plan,)
    if not channel.split_large_orders:
        return Park(
            f"{why}; set split_large_orders: true on channel {channel.id} to send it as several Amazon "
            "orders, or split it in the storefront"
        )
    return split_plan(plan)


def split_plan(plan: Plan) -> tuple[Plan, ...]:
    chunks: list[list[CreateFulfillmentOrderItem]] = [[]]
    for item in plan.create.items:
        left = item.quantity
        first = True
        while left > 0:
            current = chunks[-1]
            room = MAX_UNITS - sum(i.quantity for i in current)
            if room <= 0 or len(current) >= MAX_ITEMS:
                chunks.append([])
                continue
            take = min(left, room)
            current.append(replace(item, quantity=take, gift_message=item.gift_message if first else None))
            left -= take
            first = False
    count = len(chunks)
    line_of = dict(plan.line_of_item)
    parts = []
    for n, chunk in enumerate(chunks, start=1):
        sfo_id = part_id(plan.seller_fulfillment_order_id, n)
        comment = f"{plan.create.displayable_order_comment} (part {n} of {count})"[:750]
        create = replace(
            plan.create, seller_fulfillment_order_id=sfo_id, items=chunk, displayable_order_comment=comment
        )
        preview = replace(
            plan.preview,
            items=[
                GetFulfillmentPreviewItem(
                    seller_sku=i.seller_sku,
                    seller_fulfillment_order_item_id=i.seller_fulfillment_order_item_id,
                    quantity=i.quantity,
                )
                for i in chunk
            ],
        )
        item_ids = list(dict.fromkeys(i.seller_fulfillment_order_item_id for i in chunk))
        parts.append(
            replace(
                plan,
                seller_fulfillment_order_id=sfo_id,
                preview=preview,
                create=create,
                skipped_skus=plan.skipped_skus if n == 1 else (),
                skipped=plan.skipped if n == 1 else (),
                notes=(*plan.notes, f"split into {count} Amazon orders (Amazon's limits)") if n == 1 else (),
                line_of_item=tuple((i, line_of.get(i, i)) for i in item_ids),
            )
        )
    return tuple(parts)


def combined_status(statuses: Sequence[str]) -> str:
    """One status for the parts: theirs when they agree; `Processing` while any part still moves
    (some finished); once all are final, `Complete`, `Cancelled`, or `CompletePartialled` when
    some shipped and some did not, else the worst of `Unfulfillable`/`Invalid`."""
    unique = list(dict.fromkeys(statuses))
    if len(unique) == 1:
        return unique[0]
    if any(s not in FINAL_ORDER_STATUSES for s in unique):
        return "Processing"
    if any(s in ("Complete", "CompletePartialled") for s in unique):
        return "CompletePartialled"
    for status in ("Unfulfillable", "Invalid"):
        if status in unique:
            return status
    return "Cancelled"


def combine(parts: Sequence[FulfillmentOrder]) -> FulfillmentOrder:
    """The parts as one order for sync: shipments and items of all, the combined status."""
    first = parts[0]
    dates = [p.status_updated_date for p in parts if p.status_updated_date is not None]
    return replace(
        first,
        status=combined_status([p.status for p in parts]),
        status_updated_date=max(dates) if dates else None,
        items=tuple(i for p in parts for i in p.items),
        shipments=tuple(s for p in parts for s in p.shipments),
    )
