"""Submission: plan -> preview -> rules -> exactly one `createFulfillmentOrder`.

Exactly-once rests on three things. The `sellerFulfillmentOrderId` is derived from the order,
so every attempt asks Amazon for the same order. The state `submitting` is committed *before*
the create is sent, so any later attempt knows a create may be out there and reads
(`getFulfillmentOrder`) before creating again. And the result is recorded through the job's
claim (`ctx.finish`), so a worker that lost its lease cannot record anything.

No database transaction is open while Amazon is being called.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlmodel import col

from .. import jobs
from ..amazon import errors as amz
from ..amazon.models import FulfillmentAction, FulfillmentOrder, UpdateFulfillmentOrderRequest
from ..amazon.outbound import FulfillmentOutbound
from ..audit import note, transition
from ..bootstrap import Bridge
from ..channels import Channel
from ..orders import Event, OrderState, can
from ..store import OrderRecord, lock_order, read_session, write_session
from ..worker import JobContext, RetryLater
from .common import amazon_retry
from .plan import Park, Plan, Skip, judge_preview, plan_submission

log = logging.getLogger("bridge.submit")

SUBMITTABLE = (OrderState.RECEIVED, OrderState.AWAITING_PAYMENT, OrderState.SUBMITTING)


def _load(bridge: Bridge, order_id: int) -> OrderRecord | None:
    with read_session(bridge.engine) as session:
        return session.execute(select(OrderRecord).where(col(OrderRecord.id) == order_id)).scalars().first()


def _finish_with(
    ctx: JobContext,
    order_id: int,
    event: Event,
    reason: str,
    *,
    amazon_status: str | None = None,
    sfo_id: str | None = None,
) -> None:
    """Record one lifecycle event for the order, if it still allows it, and complete the job."""
    now = ctx.bridge.clock.now()
    with ctx.finish() as session:
        row = lock_order(session, order_id)
        if sfo_id:
            row.seller_fulfillment_order_id = sfo_id
        if amazon_status:
            row.amazon_status = amazon_status
        state = row.order_state
        if (state, event) == (OrderState.CANCEL_REQUESTED, Event.CREATED):
            note(
                session,
                row,
                "amazon:created",
                now,
                "created while a cancellation was pending; cancel job follows",
            )
        elif can(state, event):
            transition(session, row, event, now, reason)
        else:
            note(session, row, f"ignored:{event.value}", now, f"order is {state.value}: {reason}")


def handle_submit(ctx: JobContext) -> None:
    bridge = ctx.bridge
    assert ctx.job.order_id is not None
    row = _load(bridge, ctx.job.order_id)
    if row is None or row.order_state not in SUBMITTABLE:
        return  # cancelled, parked or already created meanwhile: nothing to do
    channel = bridge.config.channel(row.channel_id)
    if channel is None:
        _finish_with(ctx, ctx.job.order_id, Event.PARK, f"channel {row.channel_id} is no longer configured")
        return
    order = row.canonical()
    hold = order.payment_state not in channel.ship_on
    if hold and channel.unpaid_policy != "hold_at_amazon":
        return  # waits for the payment webhook
    plan = plan_submission(order, channel, hold=hold)
    if isinstance(plan, Skip):
        _finish_with(ctx, row.id or 0, Event.SKIP, plan.reason)
        return
    if isinstance(plan, Park):
        _finish_with(ctx, row.id or 0, Event.PARK, plan.reason)
        return
    outbound: FulfillmentOutbound = ctx.services["amazon"].for_channel(channel)
    try:
        _submit(ctx, row, channel, plan, outbound)
    except amz.SpApiError as exc:
        raise amazon_retry(exc, channel) from None


def _submit(
    ctx: JobContext, row: OrderRecord, channel: Channel, plan: Plan, outbound: FulfillmentOutbound
) -> None:
    assert row.id is not None
    created_event = (
        Event.CREATED_ON_HOLD if plan.create.fulfillment_action is FulfillmentAction.HOLD else Event.CREATED
    )
    if row.order_state is OrderState.SUBMITTING:
        existing = _read_existing(outbound, plan.seller_fulfillment_order_id)
        if existing is not None:
            _finish_with(
                ctx,
                row.id,
                created_event,
                "found at Amazon after an interrupted attempt",
                amazon_status=existing.status,
                sfo_id=plan.seller_fulfillment_order_id,
            )
            return
    else:
        previews = outbound.preview(plan.preview)
        verdict = judge_preview(previews, plan, channel)
        if verdict is not None:
            _finish_with(ctx, row.id, Event.PARK, verdict.reason)
            return
        if not _mark_submitting(ctx, row.id, plan):
            return
    try:
        outbound.create(plan.create)
    except amz.InvalidInput as exc:
        existing = _read_existing(outbound, plan.seller_fulfillment_order_id)
        if existing is not None:  # our earlier create did land (its answer was lost)
            _finish_with(
                ctx,
                row.id,
                created_event,
                "already created at Amazon",
                amazon_status=existing.status,
                sfo_id=plan.seller_fulfillment_order_id,
            )
            return
        _finish_with(ctx, row.id, Event.PARK, f"Amazon rejected the order: {exc.describe()}")
        return
    except amz.SpApiError as exc:
        if not exc.ambiguous:
            raise
        existing = _read_existing(outbound, plan.seller_fulfillment_order_id)
        if existing is None:
            raise RetryLater(
                f"create outcome unknown ({exc.code}) and not found at Amazon; will retry",
                after_s=exc.retry_after,
            ) from None
        _finish_with(
            ctx,
            row.id,
            created_event,
            "created (confirmed by reading after an ambiguous answer)",
            amazon_status=existing.status,
            sfo_id=plan.seller_fulfillment_order_id,
        )
        return
    reason = "created at Amazon" + (
        f"; skipped SKUs not at Amazon: {', '.join(plan.skipped_skus)}" if plan.skipped_skus else ""
    )
    _finish_with(
        ctx, row.id, created_event, reason, amazon_status="Received", sfo_id=plan.seller_fulfillment_order_id
    )


def _read_existing(outbound: FulfillmentOutbound, sfo_id: str) -> FulfillmentOrder | None:
    try:
        return outbound.get(sfo_id)
    except amz.NotFound:
        return None


def _mark_submitting(ctx: JobContext, order_id: int, plan: Plan) -> bool:
    """Commit `submitting` before the create leaves, unless the order changed meanwhile."""
    now = ctx.bridge.clock.now()
    with write_session(ctx.bridge.engine) as session:
        jobs.assert_held(session, ctx.job)
        row = lock_order(session, order_id)
        if row.order_state not in (OrderState.RECEIVED, OrderState.AWAITING_PAYMENT):
            return False
        row.seller_fulfillment_order_id = plan.seller_fulfillment_order_id
        transition(session, row, Event.SUBMIT_STARTED, now, "preview passed; creating at Amazon")
    return True


def handle_release(ctx: JobContext) -> None:
    """Payment arrived for an order created with `fulfillmentAction: Hold`: let Amazon ship it."""
    assert ctx.job.order_id is not None
    row = _load(ctx.bridge, ctx.job.order_id)
    if row is None or row.order_state is not OrderState.HELD_AT_AMAZON or not row.seller_fulfillment_order_id:
        return
    channel = ctx.bridge.config.channel(row.channel_id)
    assert channel is not None
    outbound: FulfillmentOutbound = ctx.services["amazon"].for_channel(channel)
    try:
        outbound.update(
            row.seller_fulfillment_order_id,
            UpdateFulfillmentOrderRequest(fulfillment_action=FulfillmentAction.SHIP),
        )
    except amz.SpApiError as exc:
        raise amazon_retry(exc, channel) from None
    _finish_with(ctx, row.id or 0, Event.RELEASED, "payment received; released the hold at Amazon")
