"""A storefront cancellation reaches Amazon while Amazon still allows it.

The cancel job first lets any in-flight submission settle (so a cancellation racing a create
cannot miss the order it created), then reads the order at Amazon: absent means nothing to
cancel; `New`/`Received`/`Planning` (or held) can be cancelled; later than that the order is
flagged for an operator and the storefront gets a note, and sync keeps pushing its tracking.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlmodel import col

from .. import jobs
from ..amazon import errors as amz
from ..amazon.outbound import FulfillmentOutbound
from ..audit import transition
from ..intake import JOB_SUBMIT
from ..orders import Event, OrderState
from ..store import JobRecord, OrderRecord, lock_order, read_session
from ..worker import JobContext, RetryLater
from .common import amazon_retry, owe_note
from .plan import seller_fulfillment_order_id

log = logging.getLogger("bridge.cancel")

CANCELLABLE_AT_AMAZON = frozenset({"New", "Received", "Planning"})
SETTLE_WAIT_S = 5.0


def handle_cancel(ctx: JobContext) -> None:
    bridge = ctx.bridge
    assert ctx.job.order_id is not None
    with read_session(bridge.engine) as session:
        row = session.get(OrderRecord, ctx.job.order_id)
        submitting = session.execute(
            select(col(JobRecord.id)).where(
                col(JobRecord.kind) == JOB_SUBMIT,
                col(JobRecord.order_id) == ctx.job.order_id,
                col(JobRecord.status).in_((jobs.READY, jobs.RUNNING)),
            )
        ).first()
    if row is None or row.order_state is not OrderState.CANCEL_REQUESTED:
        return
    if submitting is not None:
        raise RetryLater(
            "a submission of this order is still in flight", after_s=SETTLE_WAIT_S, count_attempt=False
        )
    channel = bridge.config.channel(row.channel_id)
    assert channel is not None
    outbound: FulfillmentOutbound = ctx.services["amazon"].for_channel(channel)
    sfo_id = row.seller_fulfillment_order_id or seller_fulfillment_order_id(channel.id, row.external_id)
    try:
        try:
            status = outbound.get(sfo_id).status
        except amz.NotFound:
            status = None
        if status is not None and status in CANCELLABLE_AT_AMAZON:
            outbound.cancel(sfo_id, retry_ambiguous=True)  # cancelling twice is harmless
    except amz.SpApiError as exc:
        if isinstance(exc, amz.InvalidInput):
            status = "too late"
        else:
            raise amazon_retry(exc, channel) from None
    _record(ctx, row.id or 0, status)


def _record(ctx: JobContext, order_id: int, status: str | None) -> None:
    now = ctx.bridge.clock.now()
    with ctx.finish() as session:
        row = lock_order(session, order_id)
        if row.order_state is not OrderState.CANCEL_REQUESTED:
            return
        if status is None:
            transition(
                session,
                row,
                Event.AMAZON_CANCELLED,
                now,
                "storefront cancelled; nothing was created at Amazon",
            )
        elif status in CANCELLABLE_AT_AMAZON or status == "Cancelled":
            row.amazon_status = "Cancelled"
            transition(
                session, row, Event.AMAZON_CANCELLED, now, "cancelled at Amazon on the storefront's request"
            )
        else:
            reason = (
                f"storefront cancelled, but Amazon can no longer cancel (order is {status}); it will ship"
            )
            transition(session, row, Event.CANCEL_REFUSED, now, reason)
            row.attention_reason = reason
            session.add(row)
            owe_note(
                session,
                row,
                "cancel-refused",
                now,
                f"The cancellation could not be passed to Amazon: the order is already {status} and "
                "will be shipped. Arrange a return or refund with the customer.",
            )
