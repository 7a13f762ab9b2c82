"""Routing fallback (FBA first): what happens when Amazon cannot fulfil an order, or part of it.

A channel's `fallback` says it:

- `none` (default): the order is parked for an operator (preview), or its Amazon status and an
  operator alert say what happened (after the create), as before;
- `notify`: as `none`, and the storefront is told too (an order note in Shopify/WooCommerce, a
  callback on the generic channel) when the preview finds the order unfulfillable;
- `release`: what Amazon will not ship goes back to the storefront so another warehouse ships
  it. Shopify: the fulfillment orders (or only the units concerned) move to `fallback_location`
  (`fulfillmentOrderMove`); WooCommerce and generic: a note/callback that lists the lines. An order
  Amazon cannot take at all is then not for Amazon (not parked).

Partial cases keep what Amazon ships and release only the rest: a shipment Amazon cancels
(`CANCELLED_BY_FULFILLER`) releases its own units when it is first seen; an order that ends
`Unfulfillable`, `Invalid` or `CompletePartialled` releases every unit neither shipped nor in such a
cancelled shipment. The two never overlap, so no unit is released twice.

The decisions are pure; `handle_fallback` (job `fallback`) performs a Shopify move.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from .. import alerts, jobs
from ..amazon.models import FulfillmentOrder, FulfillmentPreview
from ..audit import note
from ..channels import Channel
from ..store import FulfillmentUnitRecord, OrderRecord, read_session, write_session
from ..storefronts.push import PushError, StorefrontRejected
from ..worker import GiveUp, JobContext, RetryLater
from .common import owe_note
from .plan import Plan, chosen_preview

log = logging.getLogger("bridge.fallback")

JOB_FALLBACK = "fallback"
NONE, NOTIFY, RELEASE = "none", "notify", "release"
#: Amazon order statuses after which nothing more of the order will ship.
FINAL_UNSHIPPED = frozenset({"Unfulfillable", "Invalid", "CompletePartialled"})
CANCELLED_BY_FULFILLER = "CANCELLED_BY_FULFILLER"
RELEASE_RETRY_S = 300.0


@dataclass(frozen=True)
class PreviewFallback:
    """What to do with an order whose preview Amazon cannot fulfil."""

    park: bool  # True: needs an operator; False: not for Amazon (handed back)
    note: str = ""  # owed to the storefront (and an operator alert); empty: none
    release_all: bool = False  # Shopify: move the order's fulfillment orders to the fallback location


def preview_unfulfillable(previews: Sequence[FulfillmentPreview], plan: Plan) -> bool:
    """True when the preview for the plan's speed says Amazon cannot fulfil the order (not a fee
    or currency rule of ours)."""
    chosen = chosen_preview(previews, plan)
    return chosen is not None and not chosen.is_fulfillable


def on_unfulfillable_preview(channel: Channel, reason: str) -> PreviewFallback:
    """The decision table for an unfulfillable preview (nothing was created at Amazon)."""
    action = channel.fallback.action
    if action == NOTIFY:
        return PreviewFallback(
            park=True, note=f"{reason}. Ship this order another way, or fix it and resubmit."
        )
    if action == RELEASE:
        if channel.platform == "shopify":
            return PreviewFallback(
                park=False,
                note=f"{reason}. Released to location {channel.fallback.location} to ship from there.",
                release_all=True,
            )
        return PreviewFallback(park=False, note=f"{reason}. Handed back: ship this order another way.")
    return PreviewFallback(park=True)


def units_not_shipped(amazon: FulfillmentOrder) -> dict[str, int]:
    """Per `sellerFulfillmentOrderItemId`, the units Amazon will not ship once the order is final:
    ordered minus shipped minus those in shipments Amazon cancelled (released on their own)."""
    if amazon.status not in FINAL_UNSHIPPED:
        return {}
    left: dict[str, int] = {}
    for item in amazon.items:  # an item of a split order may appear in several parts
        key = item.seller_fulfillment_order_item_id
        left[key] = left.get(key, 0) + item.quantity
    for shipment in amazon.shipments:
        if shipment.status in ("SHIPPED", CANCELLED_BY_FULFILLER):
            for shipped in shipment.items:
                key = shipped.seller_fulfillment_order_item_id
                left[key] = left.get(key, 0) - shipped.quantity
    return {k: v for k, v in left.items() if v > 0}


def units_of_cancelled_shipment(amazon: FulfillmentOrder, shipment_id: str) -> dict[str, int]:
    units: dict[str, int] = {}
    for shipment in amazon.shipments:
        if shipment.amazon_shipment_id == shipment_id and shipment.status == CANCELLED_BY_FULFILLER:
            for item in shipment.items:
                key = item.seller_fulfillment_order_item_id
                units[key] = units.get(key, 0) + item.quantity
    return units


def to_lines(units: Mapping[str, int], line_of_item: Mapping[str, tuple[str, str]]) -> dict[str, int]:
    """Amazon item units -> storefront line units (unknown items keep their Amazon id)."""
    lines: dict[str, int] = {}
    for item_id, quantity in units.items():
        line_id = line_of_item.get(item_id, (item_id, ""))[0]
        lines[line_id] = lines.get(line_id, 0) + quantity
    return lines


def describe(lines: Mapping[str, int]) -> str:
    return ", ".join(f"line {line_id} x{quantity}" for line_id, quantity in sorted(lines.items()))


# --------------------------------------------------------------------------------------------
# Recording a release (in the caller's transaction)


def release_after_create(
    session: Session,
    channel: Channel,
    row: OrderRecord,
    key: str,
    lines: Mapping[str, int],
    now: datetime,
    why: str,
) -> None:
    """Hand `lines` (storefront line -> units) back to the storefront, once per `key`, under a
    channel with `fallback: release`: a Shopify move job, or a note/callback elsewhere."""
    if channel.fallback.action != RELEASE or not lines:
        return
    text = f"{why}; released to the storefront: {describe(lines)}"
    if channel.platform == "shopify":
        enqueue_release(session, row, key, lines, text)
    else:
        owe_note(session, row, f"fallback:{key}", now, f"{text}. Ship these items another way.")


def enqueue_release(
    session: Session, row: OrderRecord, key: str, lines: Mapping[str, int] | None, reason: str
) -> None:
    jobs.enqueue(
        session,
        JOB_FALLBACK,
        order_id=row.id,
        payload={"lines": dict(lines) if lines is not None else None, "reason": reason[:500], "key": key},
        dedupe_key=f"{JOB_FALLBACK}:{row.id}:{key}"[:200],
    )


# --------------------------------------------------------------------------------------------
# The job: a Shopify move


def handle_fallback(ctx: JobContext) -> None:
    bridge = ctx.bridge
    assert ctx.job.order_id is not None
    with read_session(bridge.engine) as session:
        row = session.get(OrderRecord, ctx.job.order_id)
        recorded = [
            r.unit_id
            for r in session.execute(
                select(FulfillmentUnitRecord).where(col(FulfillmentUnitRecord.order_id) == ctx.job.order_id)
            ).scalars()
        ]
    channel = bridge.config.channel(row.channel_id) if row else None
    if row is None or channel is None:
        return
    if channel.fallback.action != RELEASE or not channel.fallback.location:
        raise GiveUp(f"channel {channel.id} no longer releases to a fallback location")
    source = ctx.services["storefronts"].assignments(channel)
    if source is None:
        raise GiveUp(f"channel {channel.id}'s storefront cannot move fulfillment orders")
    raw = ctx.job.payload.get("lines")
    lines = {str(k): int(v) for k, v in raw.items()} if isinstance(raw, dict) else None
    try:
        moved = source.release(row.external_id, lines, channel.fallback.location, recorded)
    except PushError as exc:
        _alert(ctx, row, channel, exc.message)
        if isinstance(exc, StorefrontRejected) or not exc.retryable:
            raise GiveUp(exc.message) from None
        raise RetryLater(exc.message, exc.retry_after or RELEASE_RETRY_S) from None
    now = bridge.clock.now()
    with ctx.finish() as session:
        locked = session.get(OrderRecord, row.id)
        assert locked is not None
        what = describe(moved) if moved else "nothing left to move"
        note(
            session,
            locked,
            "storefront:released",
            now,
            f"{ctx.job.payload.get('reason', '')}: moved to {channel.fallback.location}: {what}",
        )
    log.info("order %s: released to the fallback location (%d line(s))", row.id, len(moved))


def _alert(ctx: JobContext, row: OrderRecord, channel: Channel, message: str) -> None:
    with write_session(ctx.bridge.engine) as session:
        alerts.raise_alert(
            session,
            key=f"order:{row.id}:fallback",
            kind="fallback",
            message=f"order {row.display_id or row.external_id} ({channel.id}): could not release it to "
            f"{channel.fallback.location}: {message}",
            now=ctx.bridge.clock.now(),
            order_id=row.id,
            channel_id=channel.id,
        )
