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
from ..store import JobRecord, OrderRecord, lock_order, order_parts, read_session
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
    with read_session(bridge.engine) as session:
        part_ids = [p.seller_fulfillment_order_id for p in order_parts(session, row.id or 0)]
    if len(part_ids) > 1:
        try:
            statuses = [_cancel_one(outbound, part) for part in part_ids]
        except amz.SpApiError as exc:
            raise amazon_retry(exc, channel) from None
        _record(ctx, row.id or 0, parts_outcome(part_ids, statuses))
        return
    try:
        status = _cancel_one(outbound, sfo_id)
    except amz.SpApiError as exc:
        raise amazon_retry(exc, channel) from None
    _record(ctx, row.id or 0, status)


def _cancel_one(outbound: FulfillmentOutbound, sfo_id: str) -> str | None:
    """Cancel one Amazon order if Amazon still allows it: its status before (None: not there),
    or "too late" when Amazon refused the cancellation."""
    try:
        try:
            status = outbound.get(sfo_id).status
        except amz.NotFound:
            status = None
        if status is not None and status in CANCELLABLE_AT_AMAZON:
            outbound.cancel(sfo_id, retry_ambiguous=True)  # cancelling twice is harmless
    except amz.InvalidInput:
        return "too late"
    return status


def parts_outcome(part_ids: list[str], statuses: list[str | None]) -> str | None:
    """A split order's cancellation as one outcome: None when no part exists, "Cancelled" when
    every part is cancelled (or absent), else which parts Amazon can no longer cancel (they ship)."""
    if all(s is None for s in statuses):
        return None
    late = [
        f"{sfo_id} ({status})"
        for sfo_id, status in zip(part_ids, statuses, strict=True)
        if status is not None and status not in CANCELLABLE_AT_AMAZON and status != "Cancelled"
    ]
    return f"part(s) {', '.join(late)}" if late else "Cancelled"


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
